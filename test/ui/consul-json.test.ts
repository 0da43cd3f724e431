/**
 * Consul's JSON in the UI: uint64 flags above 2^53 keep every digit, and pretty-printing a
 * value changes only whitespace.
 */
import t from 'tap';
import { indexOf, parseConsulJson, prettyJson, quoteUnsafeIntegers, u64Text } from '../../src/ui/lib/consul-json.js';

const LOCK_FLAG = '3304740253564472344';
const SEMAPHORE_FLAG = '16210313421097356768';

t.test('large integers outside strings become digit strings; everything else is untouched', async (t) => {
  t.equal(quoteUnsafeIntegers(`[{"Flags":${LOCK_FLAG},"LockIndex":1}]`), `[{"Flags":"${LOCK_FLAG}","LockIndex":1}]`);
  t.equal(quoteUnsafeIntegers(`{"a":${SEMAPHORE_FLAG},"b":-${SEMAPHORE_FLAG}}`), `{"a":"${SEMAPHORE_FLAG}","b":"-${SEMAPHORE_FLAG}"}`);
  const inString = `{"Key":"x\\"Flags\\":${LOCK_FLAG} ${LOCK_FLAG}","Flags":0}`;
  t.equal(quoteUnsafeIntegers(inString), inString, 'digits inside a string (escaped quotes too) stay as they are');
  t.equal(quoteUnsafeIntegers('{"f":1.5e300,"g":9007199254740991}'), '{"f":1.5e300,"g":9007199254740991}', 'floats and safe integers stay numbers');
  t.equal(quoteUnsafeIntegers('{"k":"a\\\\"}'), '{"k":"a\\\\"}', 'a string ending in an escaped backslash ends there');
});

t.test('parseConsulJson keeps the lock and semaphore flags exact', async (t) => {
  const entries = parseConsulJson(`[{"Key":"k","Flags":${LOCK_FLAG}},{"Key":"s","Flags":${SEMAPHORE_FLAG}},{"Key":"z","Flags":0}]`) as { Flags: unknown }[];
  t.same(entries.map((entry) => u64Text(entry.Flags)), [LOCK_FLAG, SEMAPHORE_FLAG, '0']);
  t.equal(JSON.stringify(JSON.parse(`${LOCK_FLAG}`)) === LOCK_FLAG, false, 'plain JSON.parse would have rounded it');
});

t.test('u64Text and indexOf read only what Consul sends', async (t) => {
  t.equal(u64Text(42), '42');
  t.equal(u64Text('0042'), '42');
  t.equal(u64Text(-1), '0');
  t.equal(u64Text('x'), '0');
  t.equal(u64Text(undefined), '0');
  t.equal(indexOf(17), 17);
  t.equal(indexOf('18'), 18);
  t.equal(indexOf(null), 0);
  t.equal(indexOf(1.5), 0);
});

t.test('prettyJson re-indents without touching numbers or strings', async (t) => {
  t.equal(prettyJson(`{"big":${SEMAPHORE_FLAG},"s":"a , b : [c]","n":[1,2.50,{}],"e":[]}`),
    `{\n  "big": ${SEMAPHORE_FLAG},\n  "s": "a , b : [c]",\n  "n": [\n    1,\n    2.50,\n    {}\n  ],\n  "e": []\n}`);
  t.equal(prettyJson('  {  "a" :\n 1 }  '), '{\n  "a": 1\n}', 'existing whitespace is replaced');
  t.equal(prettyJson('{"a":"\\u00e9\\n"}'), '{\n  "a": "\\u00e9\\n"\n}', 'escapes are kept as written');
  t.equal(prettyJson('{"a":1,}'), null, 'invalid JSON is not JSON');
  t.equal(prettyJson('not json'), null);
  t.equal(prettyJson('[1,2]', 4), '[\n    1,\n    2\n]');
});
