import t from 'tap';
import { OverloadedError } from '../../src/lib/errors.js';
import { TABLE_SCOPES, kvReadScope } from '../../src/state/watch.js';
import type { WakeReason } from '../../src/state/watch.js';
import { Harness, bytes, del, put, putCas, registerNode, txn } from './helpers.js';

/** Resolves to the wait's outcome, or 'pending' if it has not settled after a macrotask. */
async function settled(promise: Promise<WakeReason>): Promise<WakeReason | 'pending'> {
  return Promise.race([promise, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);
}

t.test('a prefix waiter wakes for a change under it, not elsewhere', async (t) => {
  const h = new Harness();
  h.bool(put('docker/swarm/nodes/10.0.0.1:2375'));
  const index = h.fsm.readPrefix('docker/swarm/nodes/').index;
  const wait = h.fsm.waitForChange({ kind: 'kv-prefix', prefix: 'docker/swarm/nodes/' }, index);
  h.bool(put('docker/swarm/leader'));
  h.bool(put('elsewhere'));
  t.equal(await settled(wait), 'pending');
  h.bool(put('docker/swarm/nodes/10.0.0.2:2375'));
  t.equal(await settled(wait), 'changed');
  t.equal(h.fsm.readPrefix('docker/swarm/nodes/').index, h.index, 'the woken reader sees a larger index');
  t.equal(h.fsm.waiterCount, 0);
});

t.test('a waiter on a missing key wakes only when it is created', async (t) => {
  const h = new Harness();
  h.bool(put('other'));
  const { index } = h.fsm.readKey('k');
  const wait = h.fsm.waitForChange({ kind: 'kv-key', key: 'k' }, index);
  h.bool(put('other', 'changed'));
  h.bool(put('k2'));
  h.bool(put('kk'));
  h.bool(del('k'));
  t.equal(await settled(wait), 'pending');
  h.bool(put('k'));
  t.equal(await settled(wait), 'changed');
});

t.test('deletes wake key and prefix waiters', async (t) => {
  const h = new Harness();
  h.bool(put('a/b/c'));
  const keyWait = h.fsm.waitForChange({ kind: 'kv-key', key: 'a/b/c' }, h.fsm.readKey('a/b/c').index);
  const prefixWait = h.fsm.waitForChange({ kind: 'kv-prefix', prefix: 'a/b' }, h.fsm.readPrefix('a/b').index);
  h.bool(del('a/', { recurse: true }));
  t.equal(await settled(keyWait), 'changed');
  t.equal(await settled(prefixWait), 'changed');
});

t.test('no-op PUTs, failed CAS and failed txns wake nobody', async (t) => {
  const h = new Harness();
  h.bool(put('k', 'v'));
  const wait = h.fsm.waitForChange({ kind: 'kv-prefix', prefix: '' }, h.fsm.kvIndex);
  h.bool(put('k', 'v'));
  h.bool(putCas('k', 'w', 99n));
  h.apply(txn([{ verb: 'set', key: 'k', value: bytes('x') }, { verb: 'get', key: 'missing' }]));
  t.equal(await settled(wait), 'pending');
  h.bool(put('k', 'w'));
  t.equal(await settled(wait), 'changed');
});

t.test('resolves at once when the index already moved; waits past a future index', async (t) => {
  const h = new Harness();
  h.bool(put('k'));
  t.equal(await h.fsm.waitForChange({ kind: 'kv-key', key: 'k' }, 0), 'changed');
  const future = h.fsm.waitForChange({ kind: 'kv-key', key: 'k' }, 5);
  h.bool(put('k', 'a')); // index 2 ≤ 5
  t.equal(await settled(future), 'pending');
  h.apply(put('k', 'b'), 4); // index 6 > 5
  t.equal(await settled(future), 'changed');
});

t.test('table waiters: sessions and catalog', async (t) => {
  const h = new Harness();
  const sessions = h.fsm.waitForChange({ kind: 'tables', tables: ['sessions'] }, 0);
  const nodes = h.fsm.waitForChange({ kind: 'tables', tables: ['nodes', 'checks'] }, 0);
  h.done(registerNode('n1'));
  t.equal(await settled(nodes), 'changed');
  t.equal(await settled(sessions), 'pending');
  h.nodeAndSession('n2', 's1');
  t.equal(await settled(sessions), 'changed');
  t.equal(h.fsm.waiterCount, 0);
});

t.test('abort resolves, and an aborted signal resolves at once', async (t) => {
  const h = new Harness();
  const controller = new AbortController();
  const wait = h.fsm.waitForChange({ kind: 'kv-prefix', prefix: 'x/' }, 0, controller.signal);
  t.equal(h.fsm.waiterCount, 1);
  controller.abort();
  t.equal(await wait, 'aborted');
  t.equal(h.fsm.waiterCount, 0);
  t.equal(await h.fsm.waitForChange({ kind: 'kv-prefix', prefix: 'x/' }, 0, controller.signal), 'aborted');
  h.bool(put('x/1'));
});

t.test('the waiter limit holds', async (t) => {
  const h = new Harness({ watchWaitersMax: 3 });
  const controller = new AbortController();
  const waits = [0, 1, 2].map((i) => h.fsm.waitForChange({ kind: 'kv-key', key: `k${i}` }, 0, controller.signal));
  const refused = await h.fsm.waitForChange({ kind: 'kv-key', key: 'k9' }, 0).then(() => null, (error: unknown) => error);
  t.ok(refused instanceof OverloadedError, 'past the limit: OverloadedError');
  t.equal((refused as OverloadedError).statusCode, 429);
  controller.abort();
  t.same(await Promise.all(waits), ['aborted', 'aborted', 'aborted']);
  const again = h.fsm.waitForChange({ kind: 'kv-key', key: 'k9' }, 0);
  h.bool(put('k9'));
  t.equal(await again, 'changed', 'slots are freed');
});

t.test('restore wakes every waiter', async (t) => {
  const h = new Harness();
  const source = new Harness();
  source.bool(put('a'));
  const wait = h.fsm.waitForChange({ kind: 'kv-key', key: 'zzz' }, 0);
  h.fsm.restore(source.fsm.snapshot());
  t.equal(await wait, 'changed');
});

t.test('many waiters on many prefixes: a change finds only its own', async (t) => {
  const h = new Harness();
  const controller = new AbortController();
  const waits = new Map<string, Promise<WakeReason>>();
  for (let i = 0; i < 2000; i++) {
    waits.set(`p${i}/`, h.fsm.waitForChange({ kind: 'kv-prefix', prefix: `p${i}/` }, 0, controller.signal));
  }
  h.bool(put('p7/x'));
  t.equal(await settled(waits.get('p7/') as Promise<WakeReason>), 'changed');
  t.equal(await settled(waits.get('p70/') as Promise<WakeReason>), 'pending');
  t.equal(h.fsm.waiterCount, 1999);
  controller.abort();
  await Promise.all(waits.values());
  t.equal(h.fsm.waiterCount, 0);
});

t.test('kvReadScope and TABLE_SCOPES', async (t) => {
  t.same(kvReadScope('a/', { recurse: false, keys: false }), { kind: 'kv-key', key: 'a/' });
  t.same(kvReadScope('a/', { recurse: true, keys: false }), { kind: 'kv-prefix', prefix: 'a/' });
  t.same(kvReadScope('a/', { recurse: true, keys: true }), { kind: 'kv-prefix', prefix: 'a/' });
  const h = new Harness();
  h.nodeAndSession('n1', 's1');
  t.equal(h.fsm.indexFor(TABLE_SCOPES.sessions), 2);
  t.equal(h.fsm.indexFor(TABLE_SCOPES.catalogNodes), 1);
  t.equal(h.fsm.indexFor(TABLE_SCOPES.healthChecks), 1);
});

t.test('a uint64 ?index= beyond 2^53 is a future index', async (t) => {
  const h = new Harness();
  h.bool(put('k'));
  const controller = new AbortController();
  const wait = h.fsm.waitForChange({ kind: 'kv-key', key: 'k' }, 18446744073709551615n, controller.signal);
  h.bool(put('k', 'changed'));
  t.equal(await settled(wait), 'pending');
  controller.abort();
  t.equal(await wait, 'aborted');
  t.equal(await h.fsm.waitForChange({ kind: 'kv-key', key: 'k' }, 1n), 'changed');
});
