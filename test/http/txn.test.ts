/**
 * consul-api.md §5: `PUT /v1/txn` — every KV verb, results only for ops that produce an entry,
 * 409 with every error and a full rollback, the read-only path (meta, consistency), limits and
 * parse errors with Consul's texts, exact uint64s, Go-style field names.
 */
import { Readable } from 'node:stream';
import t from 'tap';
import { TXN_OPS_COUNT_MAX } from '../../src/state/limits.js';
import { createSession, json, put, setup } from './helpers.js';
import type { Fixture } from './helpers.js';

interface TxnBody {
  Results: { KV: { Key: string; Value: string | null; Flags: number; Session?: string; ModifyIndex: number; LockIndex: number } }[] | null;
  Errors: { OpIndex: number; What: string }[] | null;
  [meta: string]: unknown;
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

function txn(f: Fixture, ops: unknown, query = '') {
  return f.request({ method: 'PUT', url: `/v1/txn${query}`, payload: JSON.stringify(ops) });
}

const DOC = 'See https://www.consul.io/docs/agent/config/config-files#txn_max_req_len.';

t.test('a write txn applies every verb in one index; results only where an op yields an entry', async (t) => {
  const f = await setup(t);
  await f.request(put('cas', 'old'));
  await f.request(put('gone', 'x'));
  await f.request(put('tree/a', 'x'));
  await f.request(put('tree/b', 'x'));
  const casIndex = json<{ ModifyIndex: number }[]>(await f.request('/v1/kv/cas'))[0]?.ModifyIndex;
  const session = await createSession(f);
  const ops = [
    { KV: { Verb: 'set', Key: 'set', Value: b64('v'), Flags: 1 } },
    { KV: { Verb: 'cas', Key: 'cas', Value: b64('new'), Index: casIndex } },
    { KV: { Verb: 'lock', Key: 'lock', Value: b64('l'), Session: session } },
    { KV: { Verb: 'get', Key: 'cas' } },
    { KV: { Verb: 'check-not-exists', Key: 'nope' } },
    { KV: { Verb: 'delete', Key: 'gone' } },
    { KV: { Verb: 'delete-tree', Key: 'tree/' } },
    { KV: { Verb: 'get-tree', Key: 'lock' } },
  ];
  // JSON.stringify cannot write a uint64 above 2^53: splice the exact digits into the text.
  const payload = JSON.stringify(ops).replace('"Flags":1', '"Flags":16210313421097356768');
  const response = await f.request({ method: 'PUT', url: '/v1/txn', payload });
  t.equal(response.statusCode, 200);
  const body = json<TxnBody>(response);
  t.equal(body.Errors, null);
  t.same(body.Results?.map((r) => [r.KV.Key, r.KV.Value]), [
    ['set', null], ['cas', null], ['lock', null], ['cas', b64('new')], ['lock', b64('l')],
  ], 'set/cas/lock blank Value; get and get-tree carry it; check-not-exists and deletes yield nothing');
  t.equal(body.Results?.[2]?.KV.Session, session);
  t.equal(new Set(body.Results?.map((r) => r.KV.ModifyIndex)).size, 1, 'one Raft index for the whole txn');
  t.match((await f.request('/v1/kv/set')).body, /"Flags":16210313421097356768,/, 'Flags above 2^63 stay exact');
  t.equal((await f.request('/v1/kv/gone')).statusCode, 404);
  t.equal((await f.request('/v1/kv/tree/?recurse')).statusCode, 404);
  t.equal(response.headers['x-consul-index'], undefined, 'a write sends no meta headers');
});

t.test('any failure rolls everything back: 409 with every error, in Consul\'s words', async (t) => {
  const f = await setup(t);
  await f.request(put('k', 'v'));
  const index = json<{ ModifyIndex: number }[]>(await f.request('/v1/kv/k'))[0]?.ModifyIndex ?? 0;
  const holder = await createSession(f);
  const other = await createSession(f);
  await f.request(put('held', 'v', `?acquire=${holder}`));
  const response = await f.request({
    method: 'PUT', url: '/v1/txn',
    payload: `[{"KV":{"Verb":"set","Key":"new","Value":"${b64('x')}"}},
      {"KV":{"Verb":"get","Key":"missing"}},
      {"KV":{"Verb":"check-index","Key":"k","Index":18446744073709551615}},
      {"KV":{"Verb":"check-session","Key":"k","Session":"${other}"}},
      {"KV":{"Verb":"cas","Key":"k","Index":${index + 100}}},
      {"KV":{"Verb":"delete-cas","Key":"k","Index":${index + 100}}},
      {"KV":{"Verb":"lock","Key":"held","Session":"${other}"}},
      {"KV":{"Verb":"unlock","Key":"held","Session":"${other}"}},
      {"KV":{"Verb":"check-not-exists","Key":"k"}},
      {"KV":{"Verb":"frobnicate","Key":"k"}}]`,
  });
  t.equal(response.statusCode, 409);
  t.equal(response.headers['content-type'], 'application/json');
  const body = json<TxnBody>(response);
  t.equal(body.Results, null);
  t.same(body.Errors, [
    { OpIndex: 1, What: 'key "missing" doesn\'t exist' },
    { OpIndex: 2, What: `failed index check for key "k", current modify index ${index} != 18446744073709551615` },
    { OpIndex: 3, What: `failed session check for key "k", current session "" != "${other}"` },
    { OpIndex: 4, What: 'failed to set key "k", index is stale' },
    { OpIndex: 5, What: 'failed to delete key "k", index is stale' },
    { OpIndex: 6, What: 'failed to lock key "held", lock is already held' },
    { OpIndex: 7, What: 'failed to unlock key "held", lock isn\'t held, or is held by another session' },
    { OpIndex: 8, What: 'key "k" exists' },
    { OpIndex: 9, What: 'unknown KV verb "frobnicate"' },
  ]);
  t.equal((await f.request('/v1/kv/new')).statusCode, 404, 'the set was rolled back');
  const emptyKey = await txn(f, [{ KV: { Verb: 'set', Key: '' } }, { KV: { Verb: 'delete-tree', Key: '' } }]);
  t.equal(emptyKey.statusCode, 409);
  t.same(json<TxnBody>(emptyKey).Errors, [{ OpIndex: 0, What: 'Must provide key' }]);
  await f.request({ method: 'PUT', url: `/v1/session/destroy/${holder}` });
  const delayed = await txn(f, [{ KV: { Verb: 'lock', Key: 'held', Session: other } }]);
  t.same(json<TxnBody>(delayed).Errors, [{ OpIndex: 0, What: 'failed to lock key "held" due to lock delay' }]);
});

t.test('a read-only txn: read path, KnownLeader/LastContact only, flattened meta, consistency honoured', async (t) => {
  const f = await setup(t);
  await f.request(put('r', 'v'));
  const writesBefore = f.agent.index;
  const response = await txn(f, [{ KV: { Verb: 'get', Key: 'r' } }, { KV: { Verb: 'check-not-exists', Key: 'x' } }]);
  t.equal(response.statusCode, 200);
  t.equal(f.agent.index, writesBefore, 'no write');
  t.equal(response.headers['x-consul-knownleader'], 'true');
  t.equal(response.headers['x-consul-lastcontact'], '0');
  t.equal(response.headers['x-consul-index'], undefined);
  const body = json<TxnBody>(response);
  t.same(body.Results?.map((r) => r.KV.Value), [b64('v')]);
  t.match(body, { Index: 0, LastContact: 0, KnownLeader: true, ConsistencyLevel: '', NotModified: false });
  const failed = await txn(f, [{ KV: { Verb: 'get', Key: 'missing' } }]);
  t.equal(failed.statusCode, 409);
  t.match(json<TxnBody>(failed), { Results: null, Errors: [{ OpIndex: 0, What: 'key "missing" doesn\'t exist' }], KnownLeader: true });
  const conflicting = await txn(f, [{ KV: { Verb: 'get', Key: 'r' } }], '?stale&consistent');
  t.equal(conflicting.statusCode, 400);
  t.equal(conflicting.body, 'Cannot specify ?stale with ?consistent, conflicting semantics.');
  const writeIgnoresOptions = await txn(f, [{ KV: { Verb: 'set', Key: 'w', Value: b64('v') } }], '?stale&consistent');
  t.equal(writeIgnoresOptions.statusCode, 200, 'the write path parses no query options (Consul)');
  t.equal((await txn(f, [{ KV: { Verb: 'get', Key: 'r' } }], '?index=5&wait=10m')).statusCode, 200, 'and never blocks');
});

t.test('limits: op count, body size (declared or streamed), value size', async (t) => {
  const f = await setup(t);
  const op = { KV: { Verb: 'set', Key: 'k', Value: b64('v') } };
  const tooMany = await txn(f, Array.from({ length: TXN_OPS_COUNT_MAX + 1 }, () => op));
  t.equal(tooMany.statusCode, 413);
  t.equal(tooMany.body, 'Transaction contains too many operations (129 > 128)');
  t.equal((await txn(f, Array.from({ length: TXN_OPS_COUNT_MAX }, () => op))).statusCode, 200, '128 ops are fine');
  const declared = await f.request({ method: 'PUT', url: '/v1/txn', payload: Buffer.alloc(524289, 32) });
  t.equal(declared.statusCode, 413);
  t.equal(declared.body, `Request body(524289 bytes) too large, max size: 524288 bytes. ${DOC}`);
  t.equal(declared.headers['connection'], 'close', 'the unread body is not drained');
  const streamed = await f.request({
    method: 'PUT', url: '/v1/txn', headers: { 'transfer-encoding': 'chunked' },
    payload: Readable.from([Buffer.alloc(300_000, 32), Buffer.alloc(300_000, 32)]),
  });
  t.equal(streamed.statusCode, 413);
  t.equal(streamed.body, `Request body too large, max size: 524288 bytes. ${DOC}`);
  const small = await setup(t, { kvMaxValueSize: 4 });
  const big = await txn(small, [{ KV: { Verb: 'set', Key: 'big "one"', Value: b64('12345') } }]);
  t.equal(big.statusCode, 413);
  t.equal(big.body, 'Value for key "big \\"one\\"" is too large (5 > 4 bytes)');
});

t.test('parse errors are 400 `Failed to parse body: ...`', async (t) => {
  const f = await setup(t);
  const cases: [string, string][] = [
    ['', 'Failed to parse body: EOF'],
    ['[{"KV":', 'Failed to parse body: unexpected EOF'],
    ['nope', "Failed to parse body: invalid character 'o' in literal null (expecting 'u')"],
    ['{"KV":{}}', 'Failed to parse body: json: cannot unmarshal object into Go struct field TxnOps of type api.TxnOps'],
    ['[{"KV":{"Verb":"set","Key":"k","Value":"!!!!"}}]', 'Failed to parse body: illegal base64 data at input byte 0'],
    ['[{"KV":{"Verb":"set","Key":"k","Value":"abc"}}]', 'Failed to parse body: illegal base64 data at input byte 0'],
    ['[{"KV":{"Verb":"set","Key":"k","Flags":-1}}]',
      'Failed to parse body: json: cannot unmarshal number -1 into Go struct field TxnOp.KV.Flags of type uint64'],
    ['[{"KV":{"Verb":"set","Key":"k","Flags":18446744073709551616}}]',
      'Failed to parse body: json: cannot unmarshal number 18446744073709551616 into Go struct field TxnOp.KV.Flags of type uint64'],
    ['[{"KV":{"Verb":1}}]', 'Failed to parse body: json: cannot unmarshal number into Go struct field TxnOp.KV.Verb of type string'],
    ['[{"Node":{"Verb":"set"}}]', 'Failed to parse body: Node operations (op 0) are not supported by this agent'],
  ];
  for (const [payload, text] of cases) {
    const response = await f.request({ method: 'PUT', url: '/v1/txn', payload });
    t.equal(response.statusCode, 400, payload);
    t.equal(response.body, text, payload);
  }
  t.equal(f.agent.index, 1, 'nothing was written');
});

t.test('field names match case-insensitively; ops without KV are dropped; [] is an empty success', async (t) => {
  const f = await setup(t);
  const lower = await f.request({
    method: 'PUT', url: '/v1/txn', payload: `[{}, null, {"kv":{"verb":"set","key":"lower","value":"${b64('v')}","flags":7}}]`,
  });
  t.equal(lower.statusCode, 200);
  t.same(json<TxnBody>(lower).Results?.map((r) => [r.KV.Key, r.KV.Flags]), [['lower', 7]]);
  const empty = await txn(f, []);
  t.equal(empty.statusCode, 200);
  t.equal(empty.body, '{"Results":[],"Errors":null}');
  const nothing = await f.request({ method: 'PUT', url: '/v1/txn', payload: 'null' });
  t.equal(nothing.body, '{"Results":[],"Errors":null}');
});
