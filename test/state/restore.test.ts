import t from 'tap';
import { createHash } from 'node:crypto';
import { StateMachine } from '../../src/state/fsm.js';
import type { Command } from '../../src/state/commands.js';

/**
 * A snapshot restore through the log: begin, chunks in order, commit. Deterministic on every
 * server, and a Raft snapshot taken in the middle carries the staging along.
 */
function stateWith(keys: number): Uint8Array {
  const fsm = new StateMachine();
  for (let k = 1; k <= keys; k++) fsm.applyCommand(k, { type: 'kv-set', nowMs: 0, key: `restored/${k}`, value: new Uint8Array([k]), flags: 0n, verb: { kind: 'set' } });
  return fsm.snapshot();
}

function restoreCommands(state: Uint8Array, chunkBytes: number): Command[] {
  const sha256 = createHash('sha256').update(state).digest('hex');
  const commands: Command[] = [{ type: 'restore-begin', nowMs: 0, restoreId: 'r1', totalBytes: state.byteLength, sha256 }];
  for (let offset = 0; offset < state.byteLength; offset += chunkBytes) {
    commands.push({ type: 'restore-chunk', nowMs: 0, restoreId: 'r1', offset, data: state.subarray(offset, offset + chunkBytes) });
  }
  commands.push({ type: 'restore-commit', nowMs: 0, restoreId: 'r1' });
  return commands;
}

t.test('begin, chunks, commit replace the whole state at the commit index', async (t) => {
  const state = stateWith(20);
  const fsm = new StateMachine();
  fsm.applyCommand(1, { type: 'kv-set', nowMs: 0, key: 'old', value: null, flags: 0n, verb: { kind: 'set' } });
  let index = 1;
  let last;
  for (const command of restoreCommands(state, 100)) last = fsm.applyCommand(++index, command);
  t.same(last, { kind: 'restored' });
  t.equal(fsm.getKey('old'), undefined, 'the old state is gone');
  t.equal(fsm.readPrefix('restored/').value.length, 20, 'the restored keys are there');
  t.equal(fsm.lastAppliedIndex, index, 'the applied index is the commit entry\'s');
});

t.test('a Raft snapshot taken mid-restore carries the staging: the restore still completes', async (t) => {
  const commands = restoreCommands(stateWith(30), 64);
  const first = new StateMachine();
  const half = Math.floor(commands.length / 2);
  let index = 0;
  for (const command of commands.slice(0, half)) first.applyCommand(++index, command);
  const second = new StateMachine();
  second.restore(first.snapshot());
  for (const command of commands.slice(half)) {
    ++index;
    first.applyCommand(index, command);
    second.applyCommand(index, command);
  }
  t.equal(second.readPrefix('restored/').value.length, 30);
  t.same(Buffer.from(second.snapshot()), Buffer.from(first.snapshot()), 'both servers end identical');
});

t.test('out-of-order chunks, an unknown restore or a bad checksum change nothing', async (t) => {
  const state = stateWith(5);
  const fsm = new StateMachine();
  fsm.applyCommand(1, { type: 'kv-set', nowMs: 0, key: 'kept', value: null, flags: 0n, verb: { kind: 'set' } });
  t.equal(fsm.applyCommand(2, { type: 'restore-commit', nowMs: 0, restoreId: 'nope' }).kind, 'error');
  fsm.applyCommand(3, { type: 'restore-begin', nowMs: 0, restoreId: 'r2', totalBytes: state.byteLength, sha256: '0'.repeat(64) });
  t.equal(fsm.applyCommand(4, { type: 'restore-chunk', nowMs: 0, restoreId: 'r2', offset: 5, data: state.subarray(5) }).kind, 'error', 'a gap is refused');
  fsm.applyCommand(5, { type: 'restore-chunk', nowMs: 0, restoreId: 'r2', offset: 0, data: state });
  const commit = fsm.applyCommand(6, { type: 'restore-commit', nowMs: 0, restoreId: 'r2' });
  t.same(commit, { kind: 'error', message: 'restore checksum mismatch' });
  t.ok(fsm.getKey('kept') !== undefined, 'the state is untouched');
});
