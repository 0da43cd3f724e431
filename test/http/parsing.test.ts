/**
 * The Go-compatible parsers and printers the HTTP API is built on: query options (Consul's 400
 * texts and order), Go durations, Go query strings, URL escaping, the lossless JSON reader,
 * Go-style field matching and the JSON writer.
 */
import t from 'tap';
import { QUERY_WAIT_MS_DEFAULT, QUERY_WAIT_MS_MAX } from '../../src/agent/queries.js';
import { AgentError } from '../../src/lib/errors.js';
import { cleanPath } from '../../src/http/canonical-path.js';
import { formatGoDuration, parseGoDuration } from '../../src/http/go-duration.js';
import { GoQuery } from '../../src/http/go-query.js';
import { matchFields, stringArrayField, uint64Field } from '../../src/http/json-fields.js';
import { JsonNumber, JsonObject, readJson } from '../../src/http/json-reader.js';
import { toJson } from '../../src/http/json.js';
import { parseQueryOptions, parseUint64, uint64Param } from '../../src/http/query-options.js';
import { goPathEscape, goQueryEscape, percentDecode } from '../../src/http/url-codec.js';

/** The status and text of what `fn` throws. */
function failure(fn: () => unknown): [number, string] {
  try {
    fn();
  } catch (error) {
    if (error instanceof AgentError) return [error.statusCode, error.message];
    throw error;
  }
  throw new Error('did not throw');
}

t.test('query options fail in Consul\'s order with Consul\'s texts', async (t) => {
  const q = (raw: string) => new GoQuery(raw);
  t.same(failure(() => parseQueryOptions(q('max_stale=x&stale&consistent&wait=x&index=x'))), [400, 'Invalid max_stale value "x"']);
  t.same(failure(() => parseQueryOptions(q('stale&consistent&wait=x&index=x'))),
    [400, 'Cannot specify ?stale with ?consistent, conflicting semantics.']);
  t.same(failure(() => parseQueryOptions(q('consistent&max_stale=5s'))),
    [400, 'Cannot specify ?stale with ?consistent, conflicting semantics.'], 'a positive max_stale implies stale');
  t.same(failure(() => parseQueryOptions(q('wait=x&index=x'))), [400, 'Invalid wait time']);
  for (const index of ['x', '-1', '1e3', '+1', '0x10', '18446744073709551616', ' 1']) {
    t.same(failure(() => parseQueryOptions(q(`index=${encodeURIComponent(index)}`))), [400, 'Invalid index'], index);
  }
  t.equal(parseQueryOptions(q('consistent&max_stale=0s')).consistency, 'consistent');
  t.equal(parseQueryOptions(q('max_stale=5s')).consistency, 'stale');
  t.equal(parseQueryOptions(q('max_stale=5s')).maxStaleMs, 5000);
  t.equal(parseQueryOptions(q('stale=false')).consistency, 'stale', 'presence-based');
  t.equal(parseQueryOptions(q('leader')).consistency, 'default');
  t.equal(parseQueryOptions(q('index=18446744073709551615')).minIndex, Number.MAX_SAFE_INTEGER, 'a future index');
  t.equal(parseQueryOptions(q('index=42')).minIndex, 42);
});

t.test('?wait: Go durations, missing/zero/negative → 5 min, clamped to 10 min', async (t) => {
  const wait = (text: string) => parseQueryOptions(new GoQuery(`index=1&wait=${encodeURIComponent(text)}`)).waitMs;
  t.equal(wait(''), QUERY_WAIT_MS_DEFAULT);
  t.equal(wait('0'), QUERY_WAIT_MS_DEFAULT);
  t.equal(wait('-1s'), QUERY_WAIT_MS_DEFAULT);
  t.equal(wait('15000ms'), 15_000);
  t.equal(wait('30s'), 30_000);
  t.equal(wait('1ms'), 1);
  t.equal(wait('500us'), 1, 'a sub-ms wait stays a wait');
  t.equal(wait('11m'), QUERY_WAIT_MS_MAX);
  t.equal(wait('1h'), QUERY_WAIT_MS_MAX);
});

t.test('uint64 parameters: exact, else strconv\'s 500 text', async (t) => {
  t.equal(parseUint64('18446744073709551615'), 18446744073709551615n);
  t.equal(parseUint64('18446744073709551616'), null);
  t.equal(parseUint64('-1'), null);
  t.equal(uint64Param(new GoQuery('flags=3304740253564472344'), 'flags'), 3304740253564472344n);
  t.same(failure(() => uint64Param(new GoQuery('flags=x'), 'flags')), [500, 'strconv.ParseUint: parsing "x": invalid syntax']);
  t.same(failure(() => uint64Param(new GoQuery('cas'), 'cas')), [500, 'strconv.ParseUint: parsing "": invalid syntax']);
  t.same(failure(() => uint64Param(new GoQuery('cas=18446744073709551616'), 'cas')),
    [500, 'strconv.ParseUint: parsing "18446744073709551616": value out of range']);
});

t.test('Go durations: ParseDuration and Duration.String', async (t) => {
  const ns = (text: string) => {
    const parsed = parseGoDuration(text);
    return parsed.ok ? parsed.ns : parsed.error;
  };
  t.equal(ns('15000ms'), 15_000_000_000n);
  t.equal(ns('1m30s'), 90_000_000_000n);
  t.equal(ns('7.5s'), 7_500_000_000n);
  t.equal(ns('1h0m0s'), 3_600_000_000_000n);
  t.equal(ns('1.5h'), 5_400_000_000_000n);
  t.equal(ns('.5s'), 500_000_000n);
  t.equal(ns('1.s'), 1_000_000_000n);
  t.equal(ns('1us'), 1000n);
  t.equal(ns('1\u00b5s'), 1000n);
  t.equal(ns('1\u03bcs'), 1000n);
  t.equal(ns('10ns'), 10n);
  t.equal(ns('0'), 0n);
  t.equal(ns('-1s'), -1_000_000_000n);
  t.equal(ns('+5s'), 5_000_000_000n);
  t.equal(ns('9223372036854775807ns'), 9223372036854775807n);
  t.equal(ns(''), 'time: invalid duration ""');
  t.equal(ns('x'), 'time: invalid duration "x"');
  t.equal(ns('.s'), 'time: invalid duration ".s"');
  t.equal(ns('1'), 'time: missing unit in duration "1"');
  t.equal(ns('1x'), 'time: unknown unit "x" in duration "1x"');
  t.equal(ns('9223372036854775808ns'), 'time: invalid duration "9223372036854775808ns"');
  t.equal(ns('1e3s'), 'time: unknown unit "e" in duration "1e3s"');
  t.equal(formatGoDuration(10_000_000_000n), '10s');
  t.equal(formatGoDuration(1_000_000_000n), '1s');
  t.equal(formatGoDuration(86_400_000_000_000n), '24h0m0s');
  t.equal(formatGoDuration(90_000_000_000n), '1m30s');
  t.equal(formatGoDuration(1_500_000n), '1.5ms');
  t.equal(formatGoDuration(1_000n), '1\u00b5s');
  t.equal(formatGoDuration(500n), '500ns');
  t.equal(formatGoDuration(0n), '0s');
  t.equal(formatGoDuration(-5_000_000_000n), '-5s');
  t.equal(formatGoDuration(3_723_400_000_000n), '1h2m3.4s');
});

t.test('Go query strings: presence, first value, + as space, sorted re-encoding', async (t) => {
  const query = new GoQuery('b=2&a=1&a=0&c=x+y&d=%C3%A9&recurse&e=');
  t.ok(query.has('recurse'));
  t.ok(query.has('e'));
  t.notOk(query.has('f'));
  t.equal(query.get('a'), '1');
  t.equal(query.get('c'), 'x y');
  t.equal(query.get('d'), 'é');
  t.equal(query.get('recurse'), '');
  t.equal(query.encode(), 'a=1&a=0&b=2&c=x+y&d=%C3%A9&e=&recurse=');
  t.notOk(query.malformed);
  t.ok(new GoQuery('a=%zz').malformed);
  t.ok(new GoQuery('a=1;b=2').malformed);
  t.notOk(new GoQuery('&&a=1&').malformed);
});

t.test('URL codec: Go path and query escaping, strict path decoding', async (t) => {
  t.equal(goQueryEscape('a b/c:d?é~'), 'a+b%2Fc%3Ad%3F%C3%A9~');
  t.equal(goPathEscape('/v1/kv/a b/c:d?e@f$'), '/v1/kv/a%20b/c:d%3Fe@f$');
  t.equal(percentDecode('a%2Fb+c', false, true), 'a/b+c');
  t.equal(percentDecode('a%2Fb+c', true, true), 'a/b c');
  t.equal(percentDecode('%FF', false, true), null, 'invalid UTF-8 in a path');
  t.equal(percentDecode('%FF', true, false), '\ufffd', 'replaced in a query');
  t.equal(percentDecode('%4', false, true), null);
  t.equal(cleanPath('/a//b/./c/../d/'), '/a/b/d/');
  t.equal(cleanPath('/../..'), '/');
});

t.test('JSON reader: exact numbers, members in order, Go\'s error texts', async (t) => {
  const value = readJson('{"Flags":16210313421097356768,"flags":1.5e3,"a":[true,false,null,"\\u00e9\\ud800"]} trailing');
  t.ok(value instanceof JsonObject);
  const entries = (value as JsonObject).entries;
  t.same(entries.map(([key]) => key), ['Flags', 'flags', 'a']);
  t.equal((entries[0]?.[1] as JsonNumber).text, '16210313421097356768');
  t.same(entries[2]?.[1], [true, false, null, 'é\ufffd'], 'a lone surrogate becomes U+FFFD, as in Go');
  const error = (text: string) => {
    try {
      readJson(text);
      return 'no error';
    } catch (caught) {
      return (caught as Error).message;
    }
  };
  t.equal(error(''), 'EOF');
  t.equal(error('  \n'), 'EOF');
  t.equal(error('{'), 'unexpected EOF');
  t.equal(error('{"a" 1}'), "invalid character '1' after object key");
  t.equal(error('{"a":1 "b"}'), "invalid character '\"' after object key:value pair");
  t.equal(error('x'), "invalid character 'x' looking for beginning of value");
  t.equal(error('[1,]'), "invalid character ']' looking for beginning of value");
  t.equal(error('{1:2}'), "invalid character '1' looking for beginning of object key string");
  t.equal(error('"a\nb"'), "invalid character '\\n' in string literal");
  t.equal(error('tru'), 'unexpected EOF');
  t.equal(error('trux'), "invalid character 'x' in literal true (expecting 'e')");
  t.equal(error('-x'), "invalid character 'x' in numeric literal");
  t.equal(error('"\\x"'), "invalid character 'x' in string escape code");
  t.equal(error('['.repeat(100_000)), 'exceeded max depth', 'deep nesting is refused, not a stack overflow');
});

t.test('Go field matching: exact or case-insensitive, last wins; typed fields', async (t) => {
  const object = readJson('{"ttl":"1s","Name":"a","TTL":"2s","lockdelay":"1ms","Unknown":1}') as JsonObject;
  const fields = matchFields(object, ['Name', 'TTL', 'LockDelay'] as const);
  t.equal(fields.get('TTL'), '2s');
  t.equal(fields.get('LockDelay'), '1ms');
  t.equal(fields.size, 3);
  t.equal(uint64Field(new JsonNumber('18446744073709551615'), 'X.F'), 18446744073709551615n);
  t.equal(uint64Field(null, 'X.F'), undefined);
  t.throws(() => uint64Field(new JsonNumber('-1'), 'TxnOp.KV.Flags'),
    { message: 'json: cannot unmarshal number -1 into Go struct field TxnOp.KV.Flags of type uint64' });
  t.throws(() => uint64Field('1', 'TxnOp.KV.Index'),
    { message: 'json: cannot unmarshal string into Go struct field TxnOp.KV.Index of type uint64' });
  t.same(stringArrayField(null, 'S.C'), [], 'null empties a slice');
  t.equal(stringArrayField(undefined, 'S.C'), undefined);
});

t.test('JSON writer: lossless uint64, base64 bytes, omitted undefined, Go indentation', async (t) => {
  const value = { a: 16210313421097356768n, b: new Uint8Array([1, 2, 3]), c: undefined, d: [], e: {}, f: [null, 'x'] };
  t.equal(toJson(value, false), '{"a":16210313421097356768,"b":"AQID","d":[],"e":{},"f":[null,"x"]}');
  t.equal(toJson(value, true), '{\n    "a": 16210313421097356768,\n    "b": "AQID",\n    "d": [],\n    "e": {},\n    "f": [\n        null,\n        "x"\n    ]\n}\n');
  t.equal(toJson('a"b', false), '"a\\"b"');
  t.equal(toJson(Buffer.from('hi'), false), '"aGk="', 'a Buffer (msgpack decodes bytes as one) is bytes too');
});
