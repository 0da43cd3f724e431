/**
 * consul-api.md §4: `GET|PUT|DELETE /v1/kv/<key>` — entry JSON, recurse/keys/raw, 404s with
 * meta, the 413, Consul's error order, flags, cas, acquire/release and lock-delay, deletes.
 */
import { Readable } from 'node:stream';
import t from 'tap';
import { KV_VALUE_BYTES_MAX } from '../../src/state/limits.js';
import { createSession, json, put, setup } from './helpers.js';
import type { Fixture } from './helpers.js';

interface Entry {
  LockIndex: number;
  Key: string;
  Flags: number;
  Value: string | null;
  Session?: string;
  CreateIndex: number;
  ModifyIndex: number;
}

async function entry(f: Fixture, key: string): Promise<Entry> {
  const response = await f.request(`/v1/kv/${key}`);
  if (response.statusCode !== 200) throw new Error(`GET ${key}: ${response.statusCode}`);
  const entries = json<Entry[]>(response);
  if (entries.length !== 1 || entries[0] === undefined) throw new Error('one entry expected');
  return entries[0];
}

const TOO_LARGE_DOC = 'See https://www.consul.io/docs/agent/config/config-files#kv_max_value_size.';

t.test('entry JSON: field order, base64 Value, null for an empty body, Session only when held', async (t) => {
  const f = await setup(t);
  await f.request(put('e', 'value'));
  t.equal((await f.request('/v1/kv/e')).body, '[{"LockIndex":0,"Key":"e","Flags":0,"Value":"dmFsdWU=","CreateIndex":2,"ModifyIndex":2}]');
  await f.request(put('empty', ''));
  t.equal((await entry(f, 'empty')).Value, null);
  const session = await createSession(f);
  await f.request(put('held', 'v', `?acquire=${session}`));
  const held = await f.request('/v1/kv/held');
  t.equal(held.body, `[{"LockIndex":1,"Key":"held","Flags":0,"Value":"dg==","Session":"${session}","CreateIndex":5,"ModifyIndex":5}]`);
});

t.test('GET: missing key name, 404 with meta, always an array', async (t) => {
  const f = await setup(t);
  const missingName = await f.request('/v1/kv/');
  t.equal(missingName.statusCode, 400);
  t.equal(missingName.body, 'Missing key name');
  const missing = await f.request('/v1/kv/nope');
  t.equal(missing.statusCode, 404);
  t.equal(missing.body, '');
  t.equal(missing.headers['x-consul-index'], '1', 'never 0, even on an empty KV');
  t.equal((await f.request('/v1/kv/?recurse')).statusCode, 404, 'recurse on the empty root');
  const rootKeys = await f.request('/v1/kv/?keys');
  t.equal(rootKeys.statusCode, 200);
  t.equal(rootKeys.body, '[]');
  t.equal((await f.request('/v1/kv/x?keys')).statusCode, 404, 'keys under a prefix that matched nothing');
  t.equal((await f.request('/v1/kv/x?recurse')).statusCode, 404);
});

t.test('?recurse matches the key as a byte prefix, sorted by key bytes', async (t) => {
  const f = await setup(t);
  for (const key of ['foobar', 'foo/x', 'foo', 'fo', '\u{1F600}', '\uFFFD', 'foo/\u00e9']) {
    await f.request(put(encodeURIComponent(key), key));
  }
  t.same(json<Entry[]>(await f.request('/v1/kv/foo?recurse')).map((e) => e.Key), ['foo', 'foo/x', 'foo/\u00e9', 'foobar']);
  t.same(json<Entry[]>(await f.request('/v1/kv/?recurse')).map((e) => e.Key),
    ['fo', 'foo', 'foo/x', 'foo/\u00e9', 'foobar', '\uFFFD', '\u{1F600}'], 'UTF-8 byte order, not UTF-16');
  t.same(json(await f.request('/v1/kv/?recurse=false&keys')), ['fo', 'foo', 'foo/x', 'foo/\u00e9', 'foobar', '\uFFFD', '\u{1F600}'],
    'keys wins over recurse');
});

t.test('?keys with a separator cuts after the first separator past the prefix and de-duplicates', async (t) => {
  const f = await setup(t);
  for (const key of ['a/x/1', 'a/x/2', 'a/y/1', 'a/z', 'b/1']) await f.request(put(key, 'v'));
  t.same(json(await f.request('/v1/kv/a/?keys&separator=/')), ['a/x/', 'a/y/', 'a/z']);
  t.same(json(await f.request('/v1/kv/?keys&separator=/')), ['a/', 'b/']);
  t.same(json(await f.request('/v1/kv/a/?keys&seperator=/')), ['a/x/', 'a/y/', 'a/z'], 'Consul\'s misspelling');
  t.same(json(await f.request('/v1/kv/a/?keys&seperator=x&separator=/')), ['a/x/', 'a/y/', 'a/z'], 'separator wins');
  t.same(json(await f.request('/v1/kv/a/?keys')), ['a/x/1', 'a/x/2', 'a/y/1', 'a/z']);
});

t.test('?raw: the stored bytes with protective headers and meta; recurse ignores raw', async (t) => {
  const f = await setup(t);
  await f.request(put('r', '<script>alert(1)</script>'));
  const raw = await f.request('/v1/kv/r?raw');
  t.equal(raw.body, '<script>alert(1)</script>');
  t.equal(raw.headers['content-type'], 'text/plain');
  t.equal(raw.headers['x-content-type-options'], 'nosniff');
  t.equal(raw.headers['content-security-policy'], 'sandbox');
  t.equal(raw.headers['x-consul-index'], '2');
  await f.request(put('n', ''));
  const empty = await f.request('/v1/kv/n?raw');
  t.equal(empty.statusCode, 200);
  t.equal(empty.body, '');
  t.equal((await f.request('/v1/kv/nope?raw')).statusCode, 404);
  t.equal(json<Entry[]>(await f.request('/v1/kv/r?recurse&raw'))[0]?.Key, 'r');
});

t.test('PUT size: 413 on Content-Length over 524288 with Consul\'s text; nothing stored', async (t) => {
  const f = await setup(t);
  const big = Buffer.alloc(KV_VALUE_BYTES_MAX + 1, 120);
  const refused = await f.request(put('big', big));
  t.equal(refused.statusCode, 413);
  t.equal(refused.body, `Request body(${KV_VALUE_BYTES_MAX + 1} bytes) too large, max size: 524288 bytes. ${TOO_LARGE_DOC}`);
  t.equal((await f.request('/v1/kv/big')).statusCode, 404);
  const exact = await f.request(put('big', Buffer.alloc(KV_VALUE_BYTES_MAX, 120)));
  t.equal(exact.body, 'true', 'exactly the limit is fine');
  const declared = await f.request({
    method: 'PUT', url: '/v1/kv/lying', payload: 'x', headers: { 'content-length': String(KV_VALUE_BYTES_MAX + 10) },
  });
  t.equal(declared.statusCode, 413, 'decided on Content-Length, before reading');
  const streamed = (parts: Buffer[]) => f.request({
    method: 'PUT', url: '/v1/kv/chunked', headers: { 'transfer-encoding': 'chunked' }, payload: Readable.from(parts),
  });
  const chunkedTooLarge = await streamed([Buffer.alloc(300_000, 97), Buffer.alloc(300_000, 97)]);
  t.equal(chunkedTooLarge.statusCode, 413, 'a chunked body is cut off once past the limit');
  t.equal(chunkedTooLarge.body, `Request body too large, max size: 524288 bytes. ${TOO_LARGE_DOC}`);
  t.equal(chunkedTooLarge.headers['connection'], 'close');
  t.equal((await streamed([Buffer.from('chunk'), Buffer.from('ed')])).body, 'true');
  t.equal((await f.request('/v1/kv/chunked?raw')).body, 'chunked');
  const options = await setup(t, { kvMaxValueSize: 4 });
  const small = await options.request(put('k', '12345'));
  t.equal(small.statusCode, 413);
  t.equal(small.body, `Request body(5 bytes) too large, max size: 4 bytes. ${TOO_LARGE_DOC}`);
});

t.test('PUT errors come in Consul\'s order', async (t) => {
  const f = await setup(t);
  const cases: [string, number, string][] = [
    ['/v1/kv/?stale&consistent&cas=1&acquire=x&flags=x', 400, 'Cannot specify ?stale with ?consistent, conflicting semantics.'],
    ['/v1/kv/k?wait=x', 400, 'Invalid wait time'],
    ['/v1/kv/k?index=x', 400, 'Invalid index'],
    ['/v1/kv/?cas=1&acquire=x&flags=x', 400, 'Missing key name'],
    ['/v1/kv/k?release=s&cas=1&acquire=x&flags=x', 400, 'Conflicting flags: acquire=x&cas=1&flags=x&release=s\n'],
    ['/v1/kv/k?flags=x&cas=y', 500, 'strconv.ParseUint: parsing "x": invalid syntax'],
    ['/v1/kv/k?flags=18446744073709551616', 500, 'strconv.ParseUint: parsing "18446744073709551616": value out of range'],
    ['/v1/kv/k?cas=-1', 500, 'strconv.ParseUint: parsing "-1": invalid syntax'],
    ['/v1/kv/k?acquire=', 500, 'raft apply failed: missing session'],
    ['/v1/kv/k?acquire=no-such-session', 500, 'raft apply failed: invalid session "no-such-session"'],
    ['/v1/kv/k?release=', 500, 'raft apply failed: missing session'],
  ];
  for (const [url, status, text] of cases) {
    const response = await f.request({ method: 'PUT', url, payload: Buffer.alloc(KV_VALUE_BYTES_MAX + 1) });
    if (status === 500 && text.startsWith('raft')) {
      t.equal(response.statusCode, 413, `${url}: the size is checked before the write`);
      const small = await f.request({ method: 'PUT', url, payload: 'v' });
      t.equal(small.statusCode, status, url);
      t.equal(small.body, text, url);
    } else {
      t.equal(response.statusCode, status, url);
      t.equal(response.body, text, url);
    }
  }
  t.equal((await f.request('/v1/kv/k')).statusCode, 404, 'no failed PUT wrote anything');
});

t.test('PUT flags: exact uint64; a PUT without flags resets them to 0', async (t) => {
  const f = await setup(t);
  await f.request(put('f', 'v', '?flags=16210313421097356768'));
  t.match((await f.request('/v1/kv/f')).body, /"Flags":16210313421097356768,/);
  await f.request(put('f', 'v', '?flags=18446744073709551615'));
  t.match((await f.request('/v1/kv/f')).body, /"Flags":18446744073709551615,/);
  await f.request(put('f', 'v'));
  t.equal((await entry(f, 'f')).Flags, 0);
});

t.test('plain PUT upserts, answers true, and keeps the Session (a lock survives)', async (t) => {
  const f = await setup(t);
  const session = await createSession(f);
  t.equal((await f.request(put('lock', 'a', `?acquire=${session}`))).body, 'true');
  t.equal((await f.request(put('lock', 'b'))).body, 'true');
  const after = await entry(f, 'lock');
  t.equal(after.Session, session);
  t.equal(Buffer.from(after.Value ?? '', 'base64').toString(), 'b');
});

t.test('no-op PUT: same value and flags keep ModifyIndex and the index; still true', async (t) => {
  const f = await setup(t);
  await f.request(put('same', 'v', '?flags=7'));
  const before = await f.request('/v1/kv/same');
  t.equal((await f.request(put('same', 'v', '?flags=7'))).body, 'true');
  const after = await f.request('/v1/kv/same');
  t.equal(after.body, before.body);
  t.equal(after.headers['x-consul-index'], before.headers['x-consul-index']);
});

t.test('cas: 0 creates only; N writes only at ModifyIndex N', async (t) => {
  const f = await setup(t);
  t.equal((await f.request(put('c', 'v1', '?cas=0'))).body, 'true');
  t.equal((await f.request(put('c', 'v2', '?cas=0'))).body, 'false');
  const { ModifyIndex } = await entry(f, 'c');
  t.equal((await f.request(put('c', 'v3', `?cas=${ModifyIndex + 1}`))).body, 'false');
  t.equal((await f.request(put('c', 'v3', `?cas=${ModifyIndex}`))).body, 'true');
  t.equal((await f.request(put('c', 'v4', `?cas=${ModifyIndex}`))).body, 'false', 'the index moved');
  t.equal((await f.request('/v1/kv/c?raw')).body, 'v3');
});

t.test('acquire: holder, LockIndex, refusals; release: only the holder, no lock-delay', async (t) => {
  const f = await setup(t);
  const s1 = await createSession(f);
  const s2 = await createSession(f);
  t.equal((await f.request(put('l', 'v1', `?acquire=${s1}&flags=3`))).body, 'true', 'a missing key is created');
  let current = await entry(f, 'l');
  t.same([current.LockIndex, current.Session, current.Flags], [1, s1, 3]);
  t.equal((await f.request(put('l', 'v2', `?acquire=${s1}`))).body, 'true', 'the holder re-acquires');
  current = await entry(f, 'l');
  t.same([current.LockIndex, current.Flags], [1, 0], 'LockIndex unchanged; flags as sent');
  t.equal((await f.request(put('l', 'v3', `?acquire=${s2}`))).body, 'false', 'held by another session');
  t.equal((await f.request(put('l', 'v3', `?release=${s2}`))).body, 'false', 'only the holder releases');
  t.equal((await f.request(put('l', '', `?release=${s1}&flags=9`))).body, 'true');
  current = await entry(f, 'l');
  t.same([current.LockIndex, current.Session, current.Value, current.Flags], [1, undefined, null, 9],
    'release clears Session, keeps LockIndex, stores the (empty) body and flags');
  t.equal((await f.request(put('l', 'v4', `?acquire=${s2}`))).body, 'true', 'a voluntary release sets no lock-delay');
  t.equal((await entry(f, 'l')).LockIndex, 2, 'a new holder bumps LockIndex');
  t.equal((await f.request(put('free', 'v', `?release=${s1}`))).body, 'false', 'releasing a key nobody holds');
});

t.test('invalidation: release behavior clears Session and puts the key under lock-delay', async (t) => {
  const f = await setup(t);
  const holder = await createSession(f, { LockDelay: '15s' });
  const other = await createSession(f);
  await f.request(put('ld', 'v', `?acquire=${holder}`));
  const before = await entry(f, 'ld');
  t.equal((await f.request({ method: 'PUT', url: `/v1/session/destroy/${holder}` })).body, 'true');
  const after = await entry(f, 'ld');
  t.equal(after.Session, undefined);
  t.ok(after.ModifyIndex > before.ModifyIndex, 'ModifyIndex moves');
  t.equal((await f.request(put('ld', 'v', `?acquire=${other}`))).body, 'false', 'under lock-delay');
  const deleting = await createSession(f, { Behavior: 'delete', LockDelay: 0 });
  await f.request(put('gone', 'v', `?acquire=${deleting}`));
  await f.request({ method: 'PUT', url: `/v1/session/destroy/${deleting}` });
  t.equal((await f.request('/v1/kv/gone')).statusCode, 404, 'behavior delete deletes held keys');
  t.equal((await f.request(put('gone', 'v', `?acquire=${other}`))).body, 'true', 'a zero lock-delay sets none');
});

t.test('DELETE: missing key, conflicting flags (checked first), plain, recurse, cas', async (t) => {
  const f = await setup(t);
  const conflict = await f.request({ method: 'DELETE', url: '/v1/kv/?recurse&cas=1' });
  t.equal(conflict.statusCode, 400);
  t.equal(conflict.body, 'Conflicting flags: cas=1&recurse=\n');
  const missing = await f.request({ method: 'DELETE', url: '/v1/kv/' });
  t.equal(missing.statusCode, 400);
  t.equal(missing.body, 'Missing key name');
  t.equal((await f.request({ method: 'DELETE', url: '/v1/kv/k?wait=x' })).body, 'Invalid wait time');
  t.equal((await f.request({ method: 'DELETE', url: '/v1/kv/k?cas=x' })).body, 'strconv.ParseUint: parsing "x": invalid syntax');
  t.equal((await f.request({ method: 'DELETE', url: '/v1/kv/absent' })).body, 'true');
  t.equal((await f.request({ method: 'DELETE', url: '/v1/kv/absent?cas=5' })).body, 'true', 'cas on an absent key');
  for (const key of ['foo', 'foo/x', 'foobar', 'other']) await f.request(put(key, 'v'));
  const { ModifyIndex } = await entry(f, 'other');
  t.equal((await f.request({ method: 'DELETE', url: '/v1/kv/other?cas=0' })).body, 'false', 'cas=0 against an existing key');
  t.equal((await f.request({ method: 'DELETE', url: `/v1/kv/other?cas=${ModifyIndex + 1}` })).body, 'false');
  t.equal((await f.request({ method: 'DELETE', url: `/v1/kv/other?cas=${ModifyIndex}` })).body, 'true');
  t.equal((await f.request('/v1/kv/other')).statusCode, 404);
  const treeIndex = Number((await f.request('/v1/kv/foo?recurse')).headers['x-consul-index']);
  t.equal((await f.request({ method: 'DELETE', url: '/v1/kv/foo?recurse' })).body, 'true');
  const afterTree = await f.request('/v1/kv/foo?recurse');
  t.equal(afterTree.statusCode, 404, 'foo also deleted foobar');
  t.ok(Number(afterTree.headers['x-consul-index']) > treeIndex, 'the tombstone moves the prefix index forward');
  await f.request(put('z', 'v'));
  t.equal((await f.request({ method: 'DELETE', url: '/v1/kv/?recurse' })).body, 'true');
  t.same(json(await f.request('/v1/kv/?keys')), [], 'an empty key with recurse deletes everything');
});
