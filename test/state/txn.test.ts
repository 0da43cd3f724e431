import t from 'tap';
import { AssertionError } from '../../src/lib/assert.js';
import type { ApplyResult } from '../../src/state/fsm.js';
import { decodeSnapshot } from '../../src/state/snapshot.js';
import type { StateMachine } from '../../src/state/fsm.js';
import { TXN_KV_VERBS, txnHasWrites } from '../../src/state/txn.js';
import { Harness, acquire, bytes, put, text, txn, txnOp } from './helpers.js';

/** The whole state except lastAppliedIndex (a rejected txn still consumes its log index). */
function stateOf(fsm: StateMachine): string {
  const { lastAppliedIndex: _applied, ...state } = decodeSnapshot(fsm.snapshot());
  return JSON.stringify(state, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value));
}

function txnOf(result: ApplyResult) {
  if (result.kind !== 'txn') throw new Error(`expected txn, got ${JSON.stringify(result)}`);
  return result;
}

t.test('success: results only for ops that produce one; get keeps Value, others blank it', async (t) => {
  const h = new Harness();
  h.bool(put('existing', 'old')); // 1
  const result = txnOf(h.apply(txn([ // 2
    { verb: 'set', key: 'a', value: bytes('1'), flags: 16210313421097356768n },
    { verb: 'get', key: 'a' }, // sees the set before it
    { verb: 'check-not-exists', key: 'nope' },
    { verb: 'delete', key: 'existing' },
    { verb: 'check-index', key: 'a', index: 2n },
    { verb: 'get-tree', key: 'a' },
    { verb: 'delete-cas', key: 'absent', index: 7n },
  ])));
  t.equal(result.errors, null);
  t.same(result.results?.map((r) => [r.KV.Key, text(r.KV.Value), r.KV.ModifyIndex]), [
    ['a', null, 2], ['a', '1', 2], ['a', null, 2], ['a', '1', 2],
  ]);
  t.equal(result.results?.[0]?.KV.Flags, 16210313421097356768n);
  t.equal(h.fsm.getKey('existing'), undefined);
  t.equal(h.fsm.readPrefix('existing').index, 2, 'txn deletes leave tombstones');
});

t.test('all or nothing, every error reported with its OpIndex and Consul text', async (t) => {
  const h = new Harness();
  h.nodeAndSession('n1', 's1'); // 1, 2
  h.nodeAndSession('n2', 's2'); // 3, 4
  h.bool(put('k', 'v')); // 5
  h.bool(acquire('held', 's2')); // 6
  const before = stateOf(h.fsm);
  const result = txnOf(h.apply(txn([ // 7
    { verb: 'set', key: 'new', value: bytes('x') }, // 0: fine, must be rolled back
    { verb: 'get', key: 'missing' }, // 1
    { verb: 'check-index', key: 'k', index: 3n }, // 2
    { verb: 'check-session', key: 'k', session: 's1' }, // 3
    { verb: 'cas', key: 'k', index: 99n }, // 4
    { verb: 'delete-cas', key: 'k', index: 99n }, // 5
    { verb: 'lock', key: 'held', session: 's1' }, // 6
    { verb: 'unlock', key: 'held', session: 's1' }, // 7
    { verb: 'check-not-exists', key: 'k' }, // 8
    { verb: 'frobnicate', key: 'k' }, // 9
    { verb: 'lock', key: 'x', session: 'bogus' }, // 10
    { verb: 'lock', key: 'x', session: '' }, // 11
    { verb: 'check-index', key: 'missing', index: 1n }, // 12
    { verb: 'check-session', key: 'missing', session: 's1' }, // 13
    { verb: 'delete', key: 'k' }, // 14: fine, rolled back
  ])));
  t.equal(result.results, null);
  t.same(result.errors, [
    { OpIndex: 1, What: 'key "missing" doesn\'t exist' },
    { OpIndex: 2, What: 'failed index check for key "k", current modify index 5 != 3' },
    { OpIndex: 3, What: 'failed session check for key "k", current session "" != "s1"' },
    { OpIndex: 4, What: 'failed to set key "k", index is stale' },
    { OpIndex: 5, What: 'failed to delete key "k", index is stale' },
    { OpIndex: 6, What: 'failed to lock key "held", lock is already held' },
    { OpIndex: 7, What: 'failed to unlock key "held", lock isn\'t held, or is held by another session' },
    { OpIndex: 8, What: 'key "k" exists' },
    { OpIndex: 9, What: 'unknown KV verb "frobnicate"' },
    { OpIndex: 10, What: 'invalid session "bogus"' },
    { OpIndex: 11, What: 'missing session' },
    { OpIndex: 12, What: 'failed to check index, key "missing" doesn\'t exist' },
    { OpIndex: 13, What: 'failed to check session, key "missing" doesn\'t exist' },
  ]);
  t.equal(stateOf(h.fsm), before, 'nothing changed, not even an index');
  t.equal(h.fsm.getKey('new'), undefined);
  t.ok(h.fsm.getKey('k'));
  t.equal(h.fsm.lastAppliedIndex, 7, 'the entry is still applied');
});

t.test('rollback restores overwritten entries, session ownership and tombstones', async (t) => {
  const h = new Harness();
  h.nodeAndSession('n1', 's1');
  h.bool(acquire('a', 's1', 'locked'));
  h.bool(put('b', 'b0'));
  const before = stateOf(h.fsm);
  txnOf(h.apply(txn([
    { verb: 'unlock', key: 'a', session: 's1' },
    { verb: 'delete-tree', key: '' },
    { verb: 'set', key: 'b', value: bytes('b1') },
    { verb: 'get', key: 'zzz' }, // fails
  ])));
  t.equal(stateOf(h.fsm), before);
  h.done({ type: 'session-destroy', id: 's1' });
  t.match(h.entry('a'), { Session: '' }, 'the session still owned its key after the rollback');
});

t.test('pre-check: Must provide key and lock-delay, reported alone', async (t) => {
  const h = new Harness();
  h.nodeAndSession('n1', 's1');
  h.apply({ type: 'session-create', id: 's2', name: '', node: 'n1', lockDelayNs: 10_000_000_000, behavior: 'release', ttl: '', ttlNs: 0, nodeChecks: [], serviceChecks: [] });
  h.bool(acquire('delayed', 's2'));
  h.done({ type: 'session-destroy', id: 's2' });
  const result = txnOf(h.apply(txn([
    { verb: 'get', key: 'missing' }, // would fail in evaluation, but pre-check errors come alone
    { verb: 'set', key: '' },
    { verb: 'lock', key: 'delayed', session: 's1' },
    { verb: 'delete-tree', key: '' }, // an empty key is allowed here
  ])));
  t.same(result.errors, [
    { OpIndex: 1, What: 'Must provide key' },
    { OpIndex: 2, What: 'failed to lock key "delayed" due to lock delay' },
  ]);
  h.nowMs += 10_000;
  const later = txnOf(h.apply(txn([{ verb: 'lock', key: 'delayed', session: 's1' }])));
  t.equal(later.errors, null);
  t.match(later.results?.[0]?.KV, { Key: 'delayed', Session: 's1', LockIndex: 2, Value: null });
});

t.test('read-only txns: txnHasWrites and readTxn', async (t) => {
  const h = new Harness();
  h.bool(put('a/1', 'x'));
  h.bool(put('a/2', 'y'));
  const reads = [txnOp({ verb: 'get-tree', key: 'a/' }), txnOp({ verb: 'check-index', key: 'a/1', index: 1n })];
  t.notOk(txnHasWrites(reads));
  t.ok(txnHasWrites([...reads, txnOp({ verb: 'delete', key: 'a' })]));
  t.notOk(txnHasWrites([txnOp({ verb: 'nonsense', key: 'a' })]), 'unknown verbs are reads, as in Consul');
  const outcome = h.fsm.readTxn(reads);
  t.same(outcome.results?.map((r) => [r.KV.Key, text(r.KV.Value)]), [['a/1', 'x'], ['a/2', 'y'], ['a/1', null]]);
  t.same(h.fsm.readTxn([txnOp({ verb: 'get', key: '' })]).errors, [{ OpIndex: 0, What: 'Must provide key' }]);
  t.throws(() => h.fsm.readTxn([txnOp({ verb: 'set', key: 'a' })]), AssertionError);
  t.equal(TXN_KV_VERBS.length, 12);
});

t.test('an empty successful txn has [] results', async (t) => {
  const h = new Harness();
  const result = txnOf(h.apply(txn([{ verb: 'delete', key: 'nothing' }])));
  t.same(result, { kind: 'txn', results: [], errors: null });
});
