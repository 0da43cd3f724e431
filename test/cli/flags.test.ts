/**
 * The CLI's pieces in-process: Go-style flag parsing (flags.ts) and Consul's table layouts
 * (columns.ts).
 */
import t from 'tap';
import { alignPairs, columnize } from '../../src/cli/columns.js';
import { exportJson, goJsonString } from '../../src/cli/kv-export-command.js';
import { asksForHelp, parseFlags } from '../../src/cli/flags.js';
import type { FlagSpecs } from '../../src/cli/flags.js';

const SPECS = {
  recurse: { kind: 'bool', usage: 'r' },
  separator: { kind: 'string', usage: 's', default: '/' },
  flags: { kind: 'uint64', usage: 'f' },
  'node-meta': { kind: 'list', usage: 'm' },
} as const satisfies FlagSpecs;

t.test('Go flag syntax: -x, --x, -x=v, -x v; bools; stop at the first argument and at --', async (t) => {
  const parsed = parseFlags(['-recurse', '--separator', ':', '-flags=18446744073709551615', '-node-meta=a=1', '-node-meta', 'b=2', 'key', '-recurse'], SPECS);
  t.same(parsed, {
    kind: 'ok',
    values: { recurse: true, separator: ':', flags: 18446744073709551615n, 'node-meta': ['a=1', 'b=2'] },
    args: ['key', '-recurse'],
    given: new Set(['recurse', 'separator', 'flags', 'node-meta']),
  });
  t.same(parseFlags([], SPECS), { kind: 'ok', values: { recurse: false, separator: '/', flags: 0n, 'node-meta': [] }, args: [], given: new Set() });
  t.match(parseFlags(['-recurse=false', 'x'], SPECS), { kind: 'ok', values: { recurse: false }, args: ['x'] });
  t.match(parseFlags(['-recurse', 'false'], SPECS), { kind: 'ok', values: { recurse: true }, args: ['false'] }, 'a bool never takes the next argument');
  t.match(parseFlags(['--', '-recurse'], SPECS), { kind: 'ok', values: { recurse: false }, args: ['-recurse'] });
  t.match(parseFlags(['-', 'x'], SPECS), { kind: 'ok', args: ['-', 'x'] }, 'a lone "-" is an argument (stdin)');
  t.match(parseFlags(['-flags=0x10'], SPECS), { kind: 'ok', values: { flags: 16n } }, 'base prefixes, as ParseUint(s, 0, 64)');
  t.match(parseFlags(['-flags=010'], SPECS), { kind: 'ok', values: { flags: 8n } });
  t.match(parseFlags(['-separator='], SPECS), { kind: 'ok', values: { separator: '' } });
});

t.test('Go flag errors', async (t) => {
  t.same(parseFlags(['-nope'], SPECS), { kind: 'error', message: 'flag provided but not defined: -nope' });
  t.same(parseFlags(['-separator'], SPECS), { kind: 'error', message: 'flag needs an argument: -separator' });
  t.same(parseFlags(['-flags=x'], SPECS), { kind: 'error', message: 'invalid value "x" for flag -flags: parse error' });
  t.same(parseFlags(['-flags=-1'], SPECS), { kind: 'error', message: 'invalid value "-1" for flag -flags: parse error' });
  t.same(parseFlags(['-flags=18446744073709551616'], SPECS), { kind: 'error', message: 'invalid value "18446744073709551616" for flag -flags: value out of range' });
  t.same(parseFlags(['-recurse=yes'], SPECS), { kind: 'error', message: 'invalid boolean value "yes" for -recurse: parse error' });
  t.same(parseFlags(['---recurse'], SPECS), { kind: 'error', message: 'bad flag syntax: ---recurse' });
  t.same(parseFlags(['-=x'], SPECS), { kind: 'error', message: 'bad flag syntax: -=x' });
  t.same(parseFlags(['-constructor'], SPECS), { kind: 'error', message: 'flag provided but not defined: -constructor' }, 'no prototype lookups');
});

t.test('help is asked anywhere before --', async (t) => {
  t.equal(asksForHelp(['key', '-h']), true);
  t.equal(asksForHelp(['-help']), true);
  t.equal(asksForHelp(['--help']), true);
  t.equal(asksForHelp(['--', '-h']), false);
  t.same(parseFlags(['x', '--help'], SPECS), { kind: 'help' });
});

t.test('columnize: trimmed cells, padded columns, two-space glue, no trailing newline', async (t) => {
  t.equal(columnize([['Node', 'Address', 'Status'], ['a-long-name', '10.0.0.1:8301', 'alive'], [' b ', 'x', '']]),
    'Node         Address        Status\na-long-name  10.0.0.1:8301  alive\nb            x              ');
  t.equal(columnize([['ü', 'x'], ['ab', 'y']]), 'ü   x\nab  y', 'widths count code points');
  t.equal(alignPairs([['CreateIndex', '5'], ['Key', 'k']]), 'CreateIndex      5\nKey              k');
});

t.test('export JSON: Go\'s MarshalIndent with tabs and HTML escaping', async (t) => {
  t.equal(goJsonString('<a&b>\u2028'), '"\\u003ca\\u0026b\\u003e\\u2028"');
  t.equal(exportJson([]), '[]');
  t.equal(exportJson([{ key: 'k', flags: 1n, value: Buffer.from('v'), session: '', lockIndex: 0n, createIndex: 1n, modifyIndex: 1n }]),
    '[\n\t{\n\t\t"key": "k",\n\t\t"flags": 1,\n\t\t"value": "dg=="\n\t}\n]');
});
