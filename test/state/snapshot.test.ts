import t from 'tap';
import { AssertionError } from '../../src/lib/assert.js';
import { Prng } from '../../src/lib/prng.js';
import { encodeCommand } from '../../src/state/commands.js';
import type { Command } from '../../src/state/commands.js';
import { StateMachine } from '../../src/state/fsm.js';
import { decodeSnapshot, encodeSnapshot, encodeSnapshotInSteps } from '../../src/state/snapshot.js';
import type { StateToEncode } from '../../src/state/snapshot.js';
import type { KvEntry } from '../../src/state/kv.js';
import { OrderedMap } from '../../src/state/ordered-map.js';
import { statePackr, stateUnpackr } from '../../src/state/wire.js';
import {
  Harness, START_MS, acquire, bytes, check, createSessionCommand, del, put, registerNode, text, txn,
} from './helpers.js';

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

/** Flags Consul clients use beyond 2^53 (JS numbers would round them), and the extremes. */
const LARGE_FLAGS = [2n ** 53n + 1n, 16210313421097356768n, 2n ** 64n - 1n];

/**
 * A state with `keyCount` keys (most of them in transactions of 64, like the scale benchmark),
 * large Flags, held keys, tombstones, a lock-delay, a node and its checks.
 */
function populated(keyCount: number, seed: bigint): Harness {
  const prng = new Prng(seed);
  const h = new Harness();
  h.nodeAndSession('n1', 's1', { lockDelayNs: 5_000_000_000 });
  h.done(registerNode('n2', 'warning', [check('web', 'critical', 'down')]));
  for (let start = 0; start < keyCount; start += 64) {
    const ops = [];
    for (let i = start; i < Math.min(keyCount, start + 64); i++) {
      ops.push({ verb: 'set', key: `bench/key/${String(i).padStart(7, '0')}${prng.pick(['', '/\u00e9', '/\u{1f600}'])}`,
        value: bytes(prng.chance(0.05) ? null : `${i};${'m'.repeat(prng.between(0, 120))}`), flags: prng.chance(0.1) ? prng.pick(LARGE_FLAGS) : 0n });
    }
    h.apply(txn(ops));
  }
  h.bool(acquire('locked/a', 's1'));
  h.bool(put('gone/1'));
  h.bool(put('gone/2'));
  h.apply(del('gone/1'));
  h.apply(del('gone/', { recurse: true }));
  h.apply(createSessionCommand('s2', 'n1', { lockDelayNs: 10_000_000_000 }));
  h.bool(acquire('locked/b', 's2'));
  h.apply({ type: 'session-destroy', id: 's2' }); // leaves a lock-delay on locked/b
  return h;
}

t.test('encodeSnapshot writes exactly msgpackr\'s encoding of the whole state, in pieces', async (t) => {
  // 0, less than a chunk (1024 rows), several chunks, and more than 65535 rows (a 32-bit array header).
  for (const [keyCount, seed] of [[0, 1n], [700, 2n], [5000, 3n], [70_000, 4n]] as const) {
    const h = populated(keyCount, seed);
    const snapshot = h.fsm.snapshot();
    t.equal(snapshot[0], 2, 'format version byte');
    const body = snapshot.subarray(1);
    // msgpackr's encoding is canonical for these types: its own re-encoding gives the same bytes.
    const whole = statePackr.pack(stateUnpackr.unpack(body));
    t.ok(same(whole, body), `${keyCount} keys: the same bytes as one msgpackr pack`);
    const decoded = decodeSnapshot(snapshot);
    t.equal(decoded.kv.entries.length, h.fsm.readPrefix('').value.length);
    t.ok(same(encodeSnapshot(decoded), snapshot), `${keyCount} keys: decode then encode is the identity`);
  }
});

t.test('a snapshot in steps: the same bytes, whatever is applied between its steps', async (t) => {
  for (const [keyCount, rowsPerStep] of [[0, 1], [5000, 1], [5000, 777], [70_000, 16_384]] as const) {
    const h = populated(keyCount, 6n);
    const whole = h.fsm.snapshot();
    const steps = h.fsm.snapshotInSteps(rowsPerStep);
    let stepCount = 0;
    let bytes: Uint8Array | null = null;
    for (let k = 0; bytes === null; k++) {
      const step = steps.next();
      if (step.done === true) bytes = step.value;
      else stepCount++;
      // Between steps the state moves on: overwrites, new keys, deletes, a lock taken.
      h.bool(put(`bench/key/${String(k % Math.max(1, keyCount)).padStart(7, '0')}`, `changed ${k}`));
      h.bool(put(`new/${k}`, 'x'));
      if (k % 3 === 0) h.apply(del('bench/', { recurse: k === 6 }));
      if (k === 2) h.bool(acquire('locked/c', 's1'));
    }
    t.ok(same(bytes, whole), `${keyCount} keys, ${rowsPerStep} rows per step: the bytes of the state when the snapshot was taken`);
    // Rows are sized, then written, in slices of rowsPerStep, with a step between any two slices.
    const rows = decodeSnapshot(whole).kv.entries.length;
    const expectedSteps = 2 * Math.max(1, Math.ceil(rows / rowsPerStep)) - 1;
    t.equal(stepCount, expectedSteps, `${stepCount} steps of at most ${rowsPerStep} rows`);
    t.notOk(same(h.fsm.snapshot(), whole), 'the state did change meanwhile');
  }
});

t.test('a captured KV table is released once read, and when the encoding is abandoned', async (t) => {
  const map = new OrderedMap<KvEntry>();
  for (let i = 0; i < 50; i++) {
    const Key = `k/${String(i).padStart(3, '0')}`;
    map.set(Key, Object.freeze({ Key, Value: Buffer.from(`v${i}`), Flags: 0n, LockIndex: 0, Session: '', CreateIndex: i + 1, ModifyIndex: i + 1 }));
  }
  const state = (entries: StateToEncode['kv']['entries']): StateToEncode => ({
    restore: null, lastAppliedIndex: 60, kv: { index: 50, entries, tombstones: [], lockDelays: [], lockDelayIndexes: [] },
    sessions: { index: 0, sessions: [] }, catalog: { nodesIndex: 0, servicesIndex: 0, checksIndex: 0, nodes: [], services: [], checks: [] },
  });
  const expected = encodeSnapshot(state(map.valuesInKeyOrder()));
  const whole = encodeSnapshotInSteps(state(map.capture()), 7);
  let step = whole.next();
  // Between steps, keys go one by one (each delete notes its value for the capture).
  for (let k = 0; step.done !== true; k++, step = whole.next()) map.delete(`k/${String(k).padStart(3, '0')}`);
  t.ok(same(step.value, expected), 'the bytes of the table when captured');
  t.equal(map.liveCaptures, 0, 'released once its rows were read');
  const abandoned = encodeSnapshotInSteps(state(map.capture()), 7);
  abandoned.next();
  t.equal(map.liveCaptures, 1, 'held while the encoding runs');
  abandoned.return(new Uint8Array(0));
  t.equal(map.liveCaptures, 0, 'released when the encoding is abandoned');
});

t.test('restore gives back every entry, large Flags exact, and dumps identically', async (t) => {
  const h = populated(3000, 5n);
  const snapshot = h.fsm.snapshot();
  const restored = new StateMachine();
  restored.restore(snapshot);
  t.ok(same(restored.snapshot(), snapshot));
  const before = h.fsm.readPrefix('').value;
  const after = restored.readPrefix('').value;
  t.same(after, before, 'every entry, field by field');
  const large = after.filter((entry) => entry.Flags > 2n ** 53n);
  t.ok(large.length > 10, 'some entries carry Flags beyond 2^53');
  t.ok(large.every((entry) => LARGE_FLAGS.includes(entry.Flags)), 'and they are exact');
  t.ok(after.every((entry) => Object.isFrozen(entry)), 'restored entries are frozen');
});

t.test('Flags beyond 2^53 round-trip exactly through PUT, txn, snapshot and restore', async (t) => {
  const h = new Harness();
  for (const [i, flags] of LARGE_FLAGS.entries()) {
    h.bool(put(`put/${i}`, 'v', flags));
    h.apply(txn([{ verb: 'set', key: `txn/${i}`, value: bytes('v'), flags }]));
  }
  const restored = new StateMachine();
  restored.restore(h.fsm.snapshot());
  for (const [i, flags] of LARGE_FLAGS.entries()) {
    t.equal(h.fsm.getKey(`put/${i}`)?.Flags, flags, `PUT ${flags}`);
    t.equal(h.fsm.getKey(`txn/${i}`)?.Flags, flags, `txn ${flags}`);
    t.equal(restored.getKey(`put/${i}`)?.Flags, flags, `restored PUT ${flags}`);
    t.equal(restored.getKey(`txn/${i}`)?.Flags, flags, `restored txn ${flags}`);
  }
});

t.test('restored keys and values do not depend on the snapshot bytes afterwards', async (t) => {
  const h = populated(2000, 6n);
  const snapshot = h.fsm.snapshot();
  const expected = h.fsm.readPrefix('').value.map((entry) => [entry.Key, text(entry.Value)]);
  const restored = new StateMachine();
  restored.restore(snapshot);
  snapshot.fill(0xff); // a transport or file buffer reused for something else
  t.same(restored.readPrefix('').value.map((entry) => [entry.Key, text(entry.Value)]), expected);
});

t.test('restored values share a few slabs; a txn\'s values share one buffer of their exact size', async (t) => {
  const h = populated(2000, 7n);
  const restored = new StateMachine();
  restored.restore(h.fsm.snapshot());
  const values = restored.readPrefix('bench/').value.flatMap((entry) => (entry.Value === null ? [] : [entry.Value]));
  const buffers = new Set(values.map((value) => value.buffer));
  const valueBytes = values.reduce((sum, value) => sum + value.byteLength, 0);
  t.ok(buffers.size <= Math.ceil(valueBytes / (64 * 1024)) + 1, `${values.length} values in ${buffers.size} buffers`);

  const fresh = new Harness();
  fresh.apply(txn([0, 1, 2, 3].map((i) => ({ verb: 'set', key: `t/${i}`, value: bytes(`value ${i}`) }))));
  const txnValues = [0, 1, 2, 3].map((i) => fresh.entry(`t/${i}`).Value as Uint8Array);
  t.equal(new Set(txnValues.map((value) => value.buffer)).size, 1, 'one buffer for the txn');
  t.equal(txnValues[0]?.buffer.byteLength, txnValues.reduce((sum, value) => sum + value.byteLength, 0), 'exactly their size');
});

t.test('applied keys and values do not depend on the entry bytes afterwards', async (t) => {
  const fsm = new StateMachine();
  const commands: Command[] = [
    { type: 'kv-set', nowMs: START_MS, key: 'kv/set/key-longer-than-13', value: bytes('a value'), flags: 5n, verb: { kind: 'set' } },
    { type: 'txn', nowMs: START_MS, ops: [
      { verb: 'set', key: 'kv/txn/key-longer-than-13/a', value: bytes('first'), flags: 0n, index: 0n, session: '' },
      { verb: 'set', key: 'kv/txn/key-longer-than-13/b', value: bytes('second'), flags: 0n, index: 0n, session: '' },
    ] },
  ];
  commands.forEach((command, i) => {
    const entryBytes = encodeCommand(command);
    fsm.apply(i + 1, entryBytes);
    entryBytes.fill(0x20);
  });
  t.same(fsm.readPrefix('kv/').value.map((entry) => [entry.Key, text(entry.Value), entry.Flags]), [
    ['kv/set/key-longer-than-13', 'a value', 5n],
    ['kv/txn/key-longer-than-13/a', 'first', 0n],
    ['kv/txn/key-longer-than-13/b', 'second', 0n],
  ]);
});

t.test('every truncation of a snapshot asserts and leaves the state alone', async (t) => {
  const h = populated(40, 8n);
  const snapshot = h.fsm.snapshot();
  let refused = 0;
  for (let length = 1; length < snapshot.byteLength; length++) {
    try {
      h.fsm.restore(snapshot.subarray(0, length));
    } catch (error) {
      if (error instanceof AssertionError || (error instanceof Error && /MessagePack/.test(error.message))) refused++;
      else throw error;
    }
  }
  t.equal(refused, snapshot.byteLength - 1, 'every prefix refused');
  t.ok(same(h.fsm.snapshot(), snapshot), 'the state is unchanged');
  t.throws(() => h.fsm.restore(Uint8Array.from([...snapshot, 0xc0])), AssertionError, 'a byte after the end');
});
