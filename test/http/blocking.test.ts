/**
 * consul-api.md §3, blocking queries, through HTTP and through `runBlockingQuery` directly: no
 * index answers at once; a waiting GET returns as soon as a change in its scope lands; a missing
 * key wakes only on creation; a delete is a 404 with a larger index; wait defaulting, clamping
 * and the wait × 1.0625 bound; disconnects; `?consistent` checks on every wake-up; query values
 * survive msgpack. Waiting is observed through the watch index (event-loop turns), never sleeps.
 */
import { request as httpRequest } from 'node:http';
import t from 'tap';
import type { QueryOptions } from '../../src/agent/agent-api.js';
import {
  QUERY_WAIT_MS_DEFAULT, QUERY_WAIT_MS_MAX, blockingWaitMs, queryScope, runBlockingQuery, runQuery,
} from '../../src/agent/queries.js';
import type { Query } from '../../src/agent/queries.js';
import { listenHttp } from '../../src/http/serve.js';
import { NoLeaderError } from '../../src/lib/errors.js';
import { statePackr } from '../../src/state/wire.js';
import { toJson } from '../../src/http/json.js';
import { createSession, delegate, json, put, setup, waitForWaiters } from './helpers.js';

/** Lets pending work run (a few event-loop turns), then tells whether `promise` settled. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(() => (settled = true), () => (settled = true));
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

function indexOf(response: { headers: Record<string, unknown> }): number {
  return Number(response.headers['x-consul-index']);
}

t.test('no index, or index 0, answers at once whatever the wait', async (t) => {
  const f = await setup(t);
  await f.request(put('k', 'v'));
  for (const url of ['/v1/kv/k?wait=10m', '/v1/kv/k?index=0&wait=10m', '/v1/kv/missing?index=0']) {
    const pending = f.request(url);
    t.ok(await isSettled(pending), url);
  }
});

t.test('a waiting recurse GET returns as soon as a write under the prefix lands', async (t) => {
  const f = await setup(t);
  await f.request(put('swarm/nodes/a', '1'));
  const first = await f.request('/v1/kv/swarm/nodes/?recurse');
  const index = indexOf(first);
  const waiting = f.request(`/v1/kv/swarm/nodes/?recurse&index=${index}&wait=10m`);
  await waitForWaiters(f.agent, 1);
  await f.request(put('swarm/leader', 'x'));
  await f.request(put('elsewhere', 'x'));
  t.notOk(await isSettled(waiting), 'writes outside the prefix do not wake it');
  await f.request(put('swarm/nodes/b', '2'));
  const woken = await waiting;
  t.equal(woken.statusCode, 200);
  t.ok(indexOf(woken) > index);
  t.same(json<{ Key: string }[]>(woken).map((e) => e.Key), ['swarm/nodes/a', 'swarm/nodes/b']);
  t.equal(f.agent.fsm.waiterCount, 0);
});

t.test('a blocking GET on a missing key wakes only when that key is created', async (t) => {
  const f = await setup(t);
  await f.request(put('other', 'v'));
  const missing = await f.request('/v1/kv/wanted');
  t.equal(missing.statusCode, 404);
  const waiting = f.request(`/v1/kv/wanted?index=${indexOf(missing)}&wait=10m`);
  await waitForWaiters(f.agent, 1);
  await f.request(put('other', 'changed'));
  await f.request(put('wanted2', 'v'));
  await f.request(put('wante', 'v'));
  await f.request({ method: 'DELETE', url: '/v1/kv/wanted' });
  t.notOk(await isSettled(waiting), 'other keys, even neighbours, do not wake it');
  await f.request(put('wanted', 'here'));
  const woken = await waiting;
  t.equal(woken.statusCode, 200);
  t.equal(json<{ Key: string }[]>(woken)[0]?.Key, 'wanted');
});

t.test('a delete wakes the key\'s waiter with a 404 and a larger index', async (t) => {
  const f = await setup(t);
  await f.request(put('d', 'v'));
  const present = await f.request('/v1/kv/d');
  const waiting = f.request(`/v1/kv/d?index=${indexOf(present)}&wait=10m`);
  await waitForWaiters(f.agent, 1);
  await f.request({ method: 'DELETE', url: '/v1/kv/d' });
  const woken = await waiting;
  t.equal(woken.statusCode, 404);
  t.ok(indexOf(woken) > indexOf(present), 'node-consul\'s watch needs the index to move');
  t.equal(woken.headers['x-consul-knownleader'], 'true');
});

t.test('a no-op PUT wakes nobody; a real change does', async (t) => {
  const f = await setup(t);
  await f.request(put('n', 'v'));
  const present = await f.request('/v1/kv/n');
  const waiting = f.request(`/v1/kv/n?index=${indexOf(present)}&wait=10m`);
  await waitForWaiters(f.agent, 1);
  t.equal((await f.request(put('n', 'v'))).body, 'true');
  t.notOk(await isSettled(waiting));
  await f.request(put('n', 'w'));
  t.equal(json<{ Value: string }[]>(await waiting)[0]?.Value, Buffer.from('w').toString('base64'));
});

t.test('at the timeout the current data and index come back (wait=50ms); a future index just waits', async (t) => {
  const f = await setup(t);
  await f.request(put('k', 'v'));
  const current = await f.request('/v1/kv/k');
  const timedOut = await f.request(`/v1/kv/k?index=${indexOf(current)}&wait=50ms`);
  t.equal(timedOut.statusCode, 200);
  t.equal(timedOut.body, current.body);
  t.equal(indexOf(timedOut), indexOf(current));
  const future = await f.request('/v1/kv/k?index=18446744073709551615&wait=50ms');
  t.equal(future.statusCode, 200);
  t.equal(indexOf(future), indexOf(current));
  const missing = await f.request(`/v1/kv/absent?index=${indexOf(current)}&wait=50ms`);
  t.equal(missing.statusCode, 404);
  t.equal(f.agent.fsm.waiterCount, 0, 'timed-out waiters are gone');
});

t.test('wait reaches the agent defaulted and clamped; the hold is at most wait × 1.0625', async (t) => {
  const seen: QueryOptions[] = [];
  const f = await setup(t, {}, {}, (agent) => delegate(agent, {
    query: (query, options) => {
      seen.push(options);
      return agent.query(query, { ...options, waitMs: 1 });
    },
  }));
  for (const wait of ['', '&wait=0s', '&wait=-5s', '&wait=20m', '&wait=15000ms']) await f.request(`/v1/kv/k?index=1${wait}`);
  t.same(seen.map((options) => options.waitMs), [QUERY_WAIT_MS_DEFAULT, QUERY_WAIT_MS_DEFAULT, QUERY_WAIT_MS_DEFAULT, QUERY_WAIT_MS_MAX, 15_000]);
  t.same(seen.map((options) => options.minIndex), [1, 1, 1, 1, 1]);
  for (const waitMs of [1, 50, 15_000, QUERY_WAIT_MS_DEFAULT, QUERY_WAIT_MS_MAX]) {
    t.equal(blockingWaitMs(waitMs, () => 0), waitMs);
    t.ok(blockingWaitMs(waitMs, () => 0.999999999) <= waitMs * 1.0625, `${waitMs}: ≤ wait × 1.0625`);
    t.ok(blockingWaitMs(waitMs, () => 0.999999999) < waitMs + waitMs / 16 || waitMs < 16);
  }
  t.throws(() => blockingWaitMs(50, () => 1), 'random() must be below 1');
});

t.test('a client that disconnects ends its blocking query', async (t) => {
  const f = await setup(t);
  await f.request(put('k', 'v'));
  const index = indexOf(await f.request('/v1/kv/k'));
  const { port } = await listenHttp(f.app, '127.0.0.1', 0);
  const request = httpRequest({ host: '127.0.0.1', port, path: `/v1/kv/k?index=${index}&wait=10m`, agent: false });
  request.on('error', () => undefined);
  request.end();
  await waitForWaiters(f.agent, 1);
  request.destroy();
  for (let turn = 0; turn < 10_000 && f.agent.fsm.waiterCount > 0; turn++) await new Promise((resolve) => setImmediate(resolve));
  t.equal(f.agent.fsm.waiterCount, 0, 'the waiter left with the client');
});

t.test('session reads block on the sessions table', async (t) => {
  const f = await setup(t);
  const list = await f.request('/v1/session/list');
  t.equal(list.body, '[]');
  const waiting = f.request(`/v1/session/list?index=${indexOf(list)}&wait=10m`);
  await waitForWaiters(f.agent, 1);
  await f.request(put('kv-does-not-matter', 'v'));
  t.notOk(await isSettled(waiting));
  const id = await createSession(f);
  const woken = await waiting;
  t.same(json<{ ID: string }[]>(woken).map((s) => s.ID), [id]);
  const info = await f.request(`/v1/session/info/${id}`);
  const infoWait = f.request(`/v1/session/info/${id}?index=${indexOf(info)}&wait=10m`);
  await waitForWaiters(f.agent, 1);
  await f.request({ method: 'PUT', url: `/v1/session/destroy/${id}` });
  t.equal((await infoWait).body, '[]');
});

t.test('too many blocking queries: 429, not an unbounded queue', async (t) => {
  const f = await setup(t, {}, { fsm: { watchWaitersMax: 1 } });
  await f.request(put('k', 'v'));
  const index = indexOf(await f.request('/v1/kv/k'));
  const first = f.request(`/v1/kv/k?index=${index}&wait=10m`);
  await waitForWaiters(f.agent, 1);
  const second = await f.request(`/v1/kv/k?index=${index}&wait=10m`);
  t.equal(second.statusCode, 429);
  t.equal(second.body, 'Too many blocking queries (limit 1)');
  await f.request(put('k', 'w'));
  t.equal((await first).statusCode, 200);
});

t.test('runBlockingQuery: ?consistent is confirmed on every wake-up, default mode once; failure propagates', async (t) => {
  const f = await setup(t);
  await f.request(put('k', 'v'));
  const fsm = f.agent.fsm;
  let checks = 0;
  const ensure = async () => void checks++;
  const signal = new AbortController().signal;
  for (const [confirmEveryRun, expected] of [[true, 2], [false, 1]] as const) {
    checks = 0;
    const minIndex = fsm.readKey('k').index;
    const pending = runBlockingQuery(fsm, { kind: 'kv-get', key: 'k' }, { minIndex, waitMs: 600_000, signal, confirmEveryRun }, ensure, () => 0);
    await waitForWaiters(f.agent, 1);
    t.equal(checks, 1, 'checked before the first read');
    await f.request(put('k', `w${expected}`));
    const read = await pending;
    t.ok(read.index > minIndex);
    t.equal(checks, expected, confirmEveryRun ? 'checked again after waking' : 'not checked again after waking');
  }
  const failing = runBlockingQuery(fsm, { kind: 'kv-get', key: 'k' }, { minIndex: 0, waitMs: 1, signal, confirmEveryRun: false },
    async () => { throw new NoLeaderError(); }, () => 0);
  await t.rejects(failing, { message: 'No cluster leader' });
  const blockingFailing = runBlockingQuery(fsm, { kind: 'kv-get', key: 'k' }, { minIndex: 1, waitMs: 1, signal, confirmEveryRun: false },
    async () => { throw new NoLeaderError(); }, () => 0);
  await t.rejects(blockingFailing, { message: 'No cluster leader' }, 'a blocking query is confirmed before its first read too');
  const current = fsm.readKey('k').index;
  const aborted = new AbortController();
  aborted.abort();
  const early = await runBlockingQuery(fsm, { kind: 'kv-get', key: 'k' },
    { minIndex: current, waitMs: 600_000, signal: aborted.signal, confirmEveryRun: true }, ensure, () => 0);
  t.equal(early.index, current, 'an aborted request answers with the current data');
  const txn = await runBlockingQuery(fsm, { kind: 'txn-read', ops: [] }, { minIndex: 1_000_000, waitMs: 600_000, signal, confirmEveryRun: true }, ensure, () => 0);
  t.same(txn.value, { results: [], errors: null }, 'a read-only txn never blocks');
});

t.test('every query kind answers with the index its scope watches, and survives msgpack', async (t) => {
  const f = await setup(t);
  const id = await createSession(f);
  await f.request(put('a/b', 'v', `?acquire=${id}&flags=16210313421097356768`));
  await f.request(put('a/c', ''));
  const queries: Query[] = [
    { kind: 'kv-get', key: 'a/b' }, { kind: 'kv-get', key: 'zz' }, { kind: 'kv-list', prefix: 'a/' },
    { kind: 'kv-keys', prefix: '', separator: '/' },
    { kind: 'txn-read', ops: [{ verb: 'get', key: 'a/b', value: null, flags: 18446744073709551615n, index: 0n, session: '' }] },
    { kind: 'session-info', id }, { kind: 'session-list' }, { kind: 'session-node', node: 'local-node' },
    { kind: 'catalog-nodes' }, { kind: 'catalog-node', node: 'local-node' }, { kind: 'catalog-node', node: 'nope' },
    { kind: 'health-node', node: 'local-node' }, { kind: 'health-state', state: 'passing' }, { kind: 'health-state', state: 'any' },
    { kind: 'health-state', state: 'bogus' }, { kind: 'health-state', state: 'any', nodeMeta: { rack: 'r1' } },
    { kind: 'catalog-nodes', nodeMeta: { rack: 'r1' } }, { kind: 'catalog-services' }, { kind: 'service-instances', service: 'web' },
    { kind: 'health-service-checks', service: 'web' }, { kind: 'health-service-checks', service: 'web', nodeMeta: { a: '' } },
  ];
  for (const query of queries) {
    const read = runQuery(f.agent.fsm, query);
    if (query.kind !== 'txn-read') t.equal(read.index, f.agent.fsm.indexFor(queryScope(query)), `${query.kind}: index = scope index`);
    const queryCopy = statePackr.unpack(statePackr.pack(query));
    t.equal(toJson(queryCopy, false), toJson(query, false), `${query.kind}: the query survives msgpack`);
    const valueCopy = statePackr.unpack(statePackr.pack(read.value));
    t.equal(toJson(valueCopy, false), toJson(read.value, false), `${query.kind}: the value survives msgpack`);
  }
  t.match(toJson(runQuery(f.agent.fsm, { kind: 'kv-get', key: 'a/b' }).value, false), /"Flags":16210313421097356768/);
  t.equal(runQuery(f.agent.fsm, { kind: 'catalog-node', node: 'nope' }).value, null);
});
