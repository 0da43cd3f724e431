import t from 'tap';
import { AssertionError } from '../../src/lib/assert.js';
import { CorruptionError } from '../../src/lib/errors.js';
import { Prng } from '../../src/lib/prng.js';
import { encodeCommand } from '../../src/state/commands.js';
import type { Command, HealthStatus } from '../../src/state/commands.js';
import { StateMachine } from '../../src/state/fsm.js';
import { TXN_KV_VERBS } from '../../src/state/txn.js';
import {
  Harness, START_MS, acquire, bytes, check, createSessionCommand, del, put, putCas, registerNode, release, txn, txnOp,
} from './helpers.js';
import type { Unstamped } from './helpers.js';

const KEYS = ['a', 'a/1', 'a/2', 'a/x/1', 'ab', 'b/1', 'docker/swarm/nodes/10.0.0.1:2375', '\u{1f600}', '\ufffd'];
const PREFIXES = ['', 'a', 'a/', 'a/x/', 'b', 'docker/', 'z'];
const SESSIONS = ['s0', 's1', 's2', 's3', 's4'];
const NODES = ['n0', 'n1', 'n2'];
const STATUSES: HealthStatus[] = ['passing', 'warning', 'critical', 'maintenance'];
const FLAGS = [0n, 1n, 3304740253564472344n, 16210313421097356768n, 18446744073709551615n];

/** One random command; it may consult `view` (the stream is fixed once generated). */
function randomCommand(prng: Prng, view: StateMachine): Unstamped {
  const key = prng.pick(KEYS);
  const session = prng.pick(SESSIONS);
  const node = prng.pick(NODES);
  const value = prng.chance(0.1) ? null : `v${prng.nextUint32()}`;
  const current = BigInt(view.getKey(key)?.ModifyIndex ?? 0);
  switch (prng.nextInt(16)) {
    case 0: case 1: case 2: return put(key, value, prng.pick(FLAGS));
    case 3: return putCas(key, value, prng.pick([0n, current, current + 1n]));
    case 4: case 5: return acquire(key, prng.chance(0.1) ? 'unknown' : session, value, prng.pick(FLAGS));
    case 6: return release(key, session, value);
    case 7: return del(key, prng.chance(0.5) ? { cas: prng.pick([0n, current]) } : {});
    case 8: return del(prng.pick(PREFIXES), { recurse: true });
    case 9: return randomTxn(prng, view);
    case 10: case 11: return createSessionCommand(session, node, {
      behavior: prng.pick(['release', 'delete'] as const), lockDelayNs: prng.between(0, 20) * 1_000_000_000,
      nodeChecks: prng.chance(0.3) ? [] : ['serfHealth'], ttl: prng.chance(0.5) ? '10s' : '', ttlNs: 0,
    });
    case 12: return { type: 'session-destroy', id: session };
    case 13: return registerNode(node, prng.chance(0.7) ? 'passing' : prng.pick(STATUSES), [check('web', prng.pick(STATUSES))]);
    case 14: return prng.chance(0.5)
      ? { type: 'node-deregister', node }
      : { type: 'check-update', node, checkId: prng.pick(['serfHealth', 'web']), status: prng.pick(STATUSES), output: 'o' };
    default: return prng.chance(0.5)
      ? { type: 'check-deregister', node, checkId: 'web' }
      : { type: 'tombstone-reap', reapIndex: Math.max(0, view.lastAppliedIndex - prng.nextInt(50)) };
  }
}

function randomTxn(prng: Prng, view: StateMachine): Unstamped {
  const count = prng.between(1, 6);
  return txn(Array.from({ length: count }, () => {
    const key = prng.chance(0.05) ? '' : prng.pick(KEYS);
    return {
      verb: prng.chance(0.03) ? 'bogus' : prng.pick(TXN_KV_VERBS),
      key,
      value: bytes(prng.chance(0.5) ? 'tv' : null),
      flags: prng.pick(FLAGS),
      index: prng.chance(0.5) ? BigInt(view.getKey(key)?.ModifyIndex ?? 0) : BigInt(prng.nextInt(100)),
      session: prng.pick([...SESSIONS, '']),
    };
  }));
}

/** A seeded stream of encoded commands with their indexes (gaps included), generated against one FSM. */
function commandStream(seed: bigint, length: number): { index: number; bytes: Uint8Array }[] {
  const prng = new Prng(seed);
  const view = new StateMachine();
  const stream: { index: number; bytes: Uint8Array }[] = [];
  let index = 0;
  let nowMs = START_MS;
  for (let i = 0; i < length; i++) {
    index += prng.chance(0.1) ? prng.between(2, 4) : 1;
    nowMs += prng.chance(0.05) ? -prng.nextInt(2000) : prng.nextInt(3000); // leaders' clocks may disagree
    const bytesOut = encodeCommand({ ...randomCommand(prng, view), nowMs } as Command);
    view.apply(index, bytesOut);
    stream.push({ index, bytes: bytesOut });
  }
  return stream;
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

t.test('determinism: two FSMs fed the same seeded stream end identical, result by result', async (t) => {
  for (const seed of [1n, 2n, 3n, 0xc0ffeen]) {
    const stream = commandStream(seed, 3000);
    const a = new StateMachine();
    const b = new StateMachine();
    let mismatches = 0;
    const histogram = new Map<string, number>();
    for (const { index, bytes: entry } of stream) {
      const resultA = a.apply(index, entry);
      const resultB = b.apply(index, entry);
      if (JSON.stringify(resultA, bigintJson) !== JSON.stringify(resultB, bigintJson)) mismatches++;
      const label = resultA.kind === 'bool' ? `bool:${resultA.value}` : resultA.kind === 'txn' ? `txn:${resultA.errors === null ? 'ok' : '409'}` : resultA.kind;
      histogram.set(label, (histogram.get(label) ?? 0) + 1);
    }
    t.equal(mismatches, 0, `seed ${seed}: same results`);
    t.comment(`seed ${seed}: ${[...histogram].sort().map(([k, v]) => `${k}=${v}`).join(' ')}`);
    for (const label of ['bool:true', 'bool:false', 'txn:ok', 'txn:409', 'session', 'error']) {
      t.ok((histogram.get(label) ?? 0) > 0, `the stream exercises ${label}`);
    }
    t.ok(same(a.snapshot(), b.snapshot()), `seed ${seed}: same snapshot`);
    t.ok(a.listSessions().length + a.readPrefix('').value.length > 0, 'the stream built some state');
  }
});

t.test('snapshot → restore mid-stream, then the rest: identical to never restoring', async (t) => {
  for (const seed of [7n, 8n]) {
    const stream = commandStream(seed, 3000);
    const original = new StateMachine();
    const restored = new StateMachine();
    const cut = 1500;
    for (const { index, bytes: entry } of stream.slice(0, cut)) original.apply(index, entry);
    const snapshot = original.snapshot();
    restored.restore(snapshot);
    t.ok(same(restored.snapshot(), snapshot), 'the restored state dumps identically');
    t.equal(restored.lastAppliedIndex, original.lastAppliedIndex);
    t.same(dumpReads(restored), dumpReads(original), 'every read agrees');
    let mismatches = 0;
    for (const { index, bytes: entry } of stream.slice(cut)) {
      const x = JSON.stringify(original.apply(index, entry), bigintJson);
      const y = JSON.stringify(restored.apply(index, entry), bigintJson);
      if (x !== y) mismatches++;
    }
    t.equal(mismatches, 0, `seed ${seed}: same results after restore`);
    t.ok(same(restored.snapshot(), original.snapshot()), `seed ${seed}: same final snapshot`);
  }
});

t.test('restore keeps sessions, lock-delays, tombstones and catalog', async (t) => {
  const h = new Harness();
  h.done(registerNode('n1', 'passing', [check('web', 'warning', 'slow')]));
  h.apply(createSessionCommand('s1', 'n1', { ttl: '15s', ttlNs: 15e9, behavior: 'delete' }));
  h.apply(createSessionCommand('s2', 'n1'));
  h.bool(acquire('held', 's1'));
  h.bool(acquire('gone', 's2'));
  h.done({ type: 'session-destroy', id: 's2' });
  h.bool(put('x', 'y', 16210313421097356768n));
  h.bool(del('x'));
  const copy = new Harness();
  copy.fsm.restore(h.fsm.snapshot());
  copy.index = h.index;
  copy.nowMs = h.nowMs;
  t.same(dumpReads(copy.fsm), dumpReads(h.fsm));
  t.equal(copy.fsm.lockDelayUntil('gone'), h.nowMs + 15_000);
  t.equal(copy.fsm.readPrefix('x').index, h.index);
  t.same(copy.fsm.sessionsWithTtl(), [{ id: 's1', ttlNs: 15e9 }]);
  t.equal(copy.bool(acquire('gone', 's1')), false, 'lock-delay survives a restore');
  copy.done({ type: 'node-deregister', node: 'n1' });
  t.equal(copy.fsm.getKey('held'), undefined, 'session → key ownership survives a restore');
});

/** An acquire as a leader proposes it: with the applied index it checked lock-delay at. */
const checked = (command: Unstamped, index: number): Unstamped => ({ ...command, checkedIndex: index }) as Unstamped;

t.test('an acquire checked at an applied index is refused only for a lock-delay set after it, whatever the stamped clocks', async (t) => {
  const h = new Harness();
  h.done(registerNode('n1'));
  h.apply(createSessionCommand('holder', 'n1'));
  h.apply(createSessionCommand('waiter', 'n1', { lockDelayNs: 0 }));
  t.equal(h.bool(acquire('k', 'holder')), true);
  h.done({ type: 'session-destroy', id: 'holder' });
  const invalidatedAt = h.index;
  // The leader checked before the invalidation was applied (it raced through the log): refused,
  // even with a leader clock far past the 15 s deadline.
  h.nowMs += 3_600_000;
  t.equal(h.bool(checked(acquire('k', 'waiter'), invalidatedAt - 1)), false, 'a lock-delay the check could not see refuses');
  // The leader saw the invalidation and its monotonic clock said the delay is over: granted,
  // even with a leader clock stepped an hour back (before the deadline by the wall clock).
  h.nowMs -= 2 * 3_600_000;
  t.equal(h.bool(checked(acquire('k', 'waiter'), invalidatedAt)), true, 'a lock-delay the check saw is the leader\'s to judge');
  // Transactions likewise.
  h.apply(createSessionCommand('holder2', 'n1'));
  t.equal(h.bool(acquire('t', 'holder2')), true);
  h.done({ type: 'session-destroy', id: 'holder2' });
  const txnAt = h.index;
  const refused = h.apply(checked(txn([{ verb: 'lock', key: 't', session: 'waiter' }]), txnAt - 1));
  t.match(refused, { kind: 'txn', results: null, errors: [{ OpIndex: 0, What: 'failed to lock key "t" due to lock delay' }] });
  // The index survives a snapshot: a restored server decides the same.
  const copy = new Harness();
  copy.fsm.restore(h.fsm.snapshot());
  copy.index = h.index;
  copy.nowMs = h.nowMs;
  const again = copy.apply(checked(txn([{ verb: 'lock', key: 't', session: 'waiter' }]), txnAt - 1));
  t.same(again, refused, 'the restored state machine refuses it too');
  t.match(copy.apply(checked(txn([{ verb: 'lock', key: 't', session: 'waiter' }]), txnAt)), { kind: 'txn', errors: null });
});

t.test('restore refuses a foreign version and leaves the state alone on bad input', async (t) => {
  const h = new Harness();
  h.bool(put('k'));
  const snapshot = h.fsm.snapshot();
  const foreign = Uint8Array.from(snapshot);
  foreign[0] = 99;
  t.throws(() => h.fsm.restore(foreign), CorruptionError);
  t.throws(() => h.fsm.restore(Uint8Array.from([1, 0x93, 1, 2, 3])), AssertionError);
  t.ok(same(h.fsm.snapshot(), snapshot), 'the state is unchanged');
});

t.test('apply indexes must increase; gaps are fine', async (t) => {
  const fsm = new StateMachine();
  const entry = encodeCommand({ ...put('k'), nowMs: START_MS } as Command);
  fsm.apply(5, entry);
  t.equal(fsm.lastAppliedIndex, 5);
  t.throws(() => fsm.apply(5, entry), AssertionError);
  t.throws(() => fsm.apply(4, entry), AssertionError);
  fsm.apply(9, entry);
  t.equal(fsm.lastAppliedIndex, 9);
  fsm.applyNoop(10);
  t.equal(fsm.lastAppliedIndex, 10, 'a no-op entry advances lastAppliedIndex');
  t.throws(() => fsm.applyNoop(10), AssertionError);
});

t.test('applyCommand validates like decode', async (t) => {
  const fsm = new StateMachine();
  t.same(fsm.applyCommand(1, { ...put('k'), nowMs: START_MS } as Command), { kind: 'bool', value: true });
  t.throws(() => fsm.applyCommand(2, { ...put(''), nowMs: START_MS } as Command), AssertionError);
  t.same(fsm.readTxn([txnOp({ verb: 'get', key: 'k' })]).errors, null);
});

function bigintJson(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return value;
}

/** Every read the HTTP layer can make, as JSON. */
function dumpReads(fsm: StateMachine): string {
  return JSON.stringify({
    kv: fsm.readPrefix(''),
    keys: PREFIXES.map((p) => [fsm.readKeys(p, '/'), fsm.readPrefix(p).index]),
    single: KEYS.map((k) => fsm.readKey(k)),
    sessions: fsm.listSessions(),
    perNode: NODES.map((n) => [fsm.nodeSessions(n), fsm.getNode(n), fsm.nodeChecks(n)]),
    ttl: fsm.sessionsWithTtl(),
    checks: fsm.checksInState('any'),
    indexes: [fsm.tableIndex('sessions'), fsm.tableIndex('nodes'), fsm.tableIndex('checks'), fsm.kvIndex, fsm.lastAppliedIndex],
    delays: KEYS.map((k) => fsm.lockDelayUntil(k) ?? null),
  }, bigintJson);
}
