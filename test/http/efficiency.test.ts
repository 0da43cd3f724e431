/**
 * A quick self-check of the hot path (GET/PUT of one key), which a benchmark compares with
 * etcd: a single-key read touches only that key (no prefix scan, no listing), its JSON is built
 * once per stored entry and reused, and the throughput through `inject()` is reported.
 */
import t from 'tap';
import { compactKvEntries, compactKvEntry, kvEntryJson, toJson } from '../../src/http/json.js';
import { put, setup } from './helpers.js';

t.test('GET and PUT of one key never list or scan a prefix', async (t) => {
  const f = await setup(t);
  for (let i = 0; i < 2000; i++) await f.agent.write({ type: 'kv-set', nowMs: 0, key: `hot/${i}`, value: null, flags: 0n, verb: { kind: 'set' } });
  const fsm = f.agent.fsm;
  const forbidden = (name: string) => () => {
    throw new Error(`${name} called on the single-key path`);
  };
  const saved = { readPrefix: fsm.readPrefix, readKeys: fsm.readKeys, listSessions: fsm.listSessions };
  Object.assign(fsm, { readPrefix: forbidden('readPrefix'), readKeys: forbidden('readKeys'), listSessions: forbidden('listSessions') });
  t.teardown(() => Object.assign(fsm, saved));
  t.equal((await f.request(put('hot/1000', 'v'))).statusCode, 200);
  t.equal((await f.request('/v1/kv/hot/1000')).statusCode, 200);
  t.equal((await f.request('/v1/kv/hot/missing')).statusCode, 404);
  t.equal((await f.request('/v1/kv/hot/1000?raw')).statusCode, 200);
  const scope = fsm.indexFor({ kind: 'kv-key', key: 'hot/1000' });
  t.equal(scope, Number((await f.request('/v1/kv/hot/1000')).headers['x-consul-index']));
});

t.test('an entry\'s JSON is built once and matches the generic serializer exactly', async (t) => {
  const f = await setup(t);
  await f.request(put('j', 'v"\u2028<>&', '?flags=18446744073709551615'));
  const entry = f.agent.fsm.getKey('j');
  if (entry === undefined) throw new Error('stored');
  t.equal(compactKvEntry(entry), toJson(kvEntryJson(entry), false));
  t.equal(compactKvEntries([entry, entry]), toJson([kvEntryJson(entry), kvEntryJson(entry)], false));
  const rounds = 20_000;
  const started = performance.now();
  for (let i = 0; i < rounds; i++) compactKvEntry(entry);
  const cachedUs = ((performance.now() - started) * 1000) / rounds;
  t.comment(`cached entry JSON: ${cachedUs.toFixed(3)} µs per GET`);
  t.ok(cachedUs < 5, 'a cache hit is a map lookup, not a serialization');
});

t.test('throughput through inject() (reported, for comparison between changes)', async (t) => {
  const f = await setup(t);
  await f.request(put('bench', 'x'.repeat(100)));
  const rounds = 2000;
  let started = performance.now();
  for (let i = 0; i < rounds; i++) await f.request('/v1/kv/bench');
  const getsPerSecond = rounds / ((performance.now() - started) / 1000);
  started = performance.now();
  for (let i = 0; i < rounds; i++) await f.request(put('bench', `value-${i}`));
  const putsPerSecond = rounds / ((performance.now() - started) / 1000);
  t.comment(`inject(): ${getsPerSecond.toFixed(0)} GET/s, ${putsPerSecond.toFixed(0)} PUT/s (LocalAgent behind)`);
  t.ok(getsPerSecond > 500 && putsPerSecond > 500, 'no pathological per-request cost');
});

t.test('a prefix list body is reused only while it holds the very same entries', async (t) => {
  const f = await setup(t);
  for (let i = 0; i < 20; i++) await f.request(put(`list/${String(i).padStart(2, '0')}`, `v${i}`));
  const generic = (prefix: string): string => toJson(f.agent.fsm.readPrefix(prefix).value.map(kvEntryJson), false);
  const body = async (path: string): Promise<string> => (await f.request(path)).body;
  const first = await body('/v1/kv/list/?recurse');
  t.equal(first, generic('list/'), 'the generic serializer agrees');
  t.equal(await body('/v1/kv/list/?recurse'), first, 'the same list again');
  await f.request(put('list/07', 'changed'));
  const afterSet = await body('/v1/kv/list/?recurse');
  t.not(afterSet, first, 'a changed entry is never served from the old body');
  t.equal(afterSet, generic('list/'));
  t.equal(await body('/v1/kv/list/1?recurse'), generic('list/1'), 'a narrower prefix with another head');
  t.equal(await body('/v1/kv/list/0?recurse'), generic('list/0'), 'a narrower prefix with the same head entry');
  await f.request({ method: 'DELETE', url: '/v1/kv/list/19' });
  t.equal(await body('/v1/kv/list/?recurse'), generic('list/'), 'a deleted entry is gone from the body');
  t.equal(JSON.parse(await body('/v1/kv/list/?recurse')).length, 19);
});
