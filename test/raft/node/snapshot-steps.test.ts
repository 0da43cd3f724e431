import t from 'tap';
import type { Test } from 'tap';
import { makeRaftConfig } from '../../../src/raft/core/config.js';
import type { Entry, Snapshot } from '../../../src/raft/core/types.js';
import { RaftNode } from '../../../src/raft/node.js';
import type { ApplyTarget } from '../../../src/raft/node.js';
import { MemoryStorage } from '../../../src/raft/storage/memory-storage.js';
import { MemoryNetwork } from '../../../src/transport/memory-transport.js';
import { Prng } from '../../../src/lib/prng.js';
import { silentLogger } from '../../../src/lib/logger.js';

/**
 * A snapshot is serialized between turns, not in one (found by `npm run bench:scale`: at 1M keys
 * the serialization held the event loop ~1.1 s, and a leader that snapshotted alone lost its
 * followers). The target below serializes only when the test lets it: until then, writes must
 * still commit and apply, the log must not be compacted, and the snapshot that is finally saved
 * must hold the state as of the moment it was taken, not the state when serializing finished.
 */

/** Applied entries are counted; a snapshot's bytes are the count when it was taken (4 bytes). */
class GatedTarget implements ApplyTarget {
  appliedIndex = 0;
  applied = 0;
  gateOpen = false;
  stepsTaken = 0;
  failWith: Error | null = null;

  applyEntry(entry: Entry): unknown {
    this.appliedIndex = entry.index;
    this.applied++;
    return null;
  }

  restore(snapshot: Snapshot): void {
    this.appliedIndex = snapshot.meta.index;
  }

  snapshot(): Generator<void, Uint8Array, void> {
    const capturedIndex = this.appliedIndex;
    const self = this;
    return (function* steps() {
      while (!self.gateOpen) {
        self.stepsTaken++;
        yield;
      }
      if (self.failWith !== null) throw self.failWith;
      const bytes = new Uint8Array(4);
      new DataView(bytes.buffer).setUint32(0, capturedIndex);
      return bytes;
    })();
  }
}

async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function singleServer(t: Test, target: GatedTarget, onFatal: (error: unknown) => void = () => undefined, storage = new MemoryStorage()) {
  const network = new MemoryNetwork(7n);
  const transport = network.createTransport({ address: 'n1', serverId: 'n1' });
  const node = new RaftNode({
    raft: makeRaftConfig({ id: 'n1', electionTimeoutTicks: 10, heartbeatIntervalTicks: 1 }),
    storage, transport, target, prng: new Prng(1n), logger: silentLogger, tickMs: 10,
    snapshotIntervalEntries: 8, snapshotTrailingEntries: 2, proposalTimeoutMs: 10_000, onFatal,
  }, await storage.load());
  node.start();
  t.teardown(() => node.close());
  await node.bootstrap({ servers: [{ id: 'n1', address: 'n1', voter: true }] });
  await until('n1 to lead', () => node.role === 'leader');
  return { node, storage };
}

const write = (node: RaftNode, n: number) => Promise.all(Array.from({ length: n }, (_, k) => node.propose(Uint8Array.of(k))));

t.test('writes commit and apply while a snapshot is being serialized; the saved one is of its moment', async (t) => {
  const target = new GatedTarget();
  const { node, storage } = await singleServer(t, target);
  await write(node, 10);
  await until('a snapshot to start', () => target.stepsTaken > 0);
  const takenAt = Number((node.status() as { appliedIndex: number }).appliedIndex);
  const stepsBefore = target.stepsTaken;
  await write(node, 25);
  t.ok(target.applied >= 35, `35 writes applied while serializing (applied ${target.applied})`);
  t.ok(target.stepsTaken > stepsBefore, 'serialization went on in steps meanwhile');
  t.equal((node.status() as { snapshotIndex: number }).snapshotIndex, 0, 'no snapshot saved before serialization finished');
  t.equal((node.status() as { firstIndex: number }).firstIndex, 1, 'nothing compacted yet');

  target.gateOpen = true;
  await until('the snapshot to be saved', () => (node.status() as { snapshotIndex: number }).snapshotIndex > 0);
  const status = node.status() as { snapshotIndex: number; firstIndex: number; appliedIndex: number };
  t.ok(status.snapshotIndex <= takenAt, `the snapshot is at the index it was taken at (${status.snapshotIndex}), not the applied index when it was saved (${status.appliedIndex})`);
  t.ok(status.firstIndex > 1, 'the log was compacted behind it');
  await node.close();
  const stored = (await storage.crash().load()).snapshot;
  t.ok(stored !== null, 'the snapshot is in storage');
  t.equal(new DataView((stored as Snapshot).data.buffer, (stored as Snapshot).data.byteOffset).getUint32(0), (stored as Snapshot).meta.index,
    'its bytes are the state as of its index (serialized from the state captured then)');
});

t.test('a snapshot that fails to serialize stops the server (onFatal), like a storage failure', async (t) => {
  const target = new GatedTarget();
  let fatal: unknown = null;
  const { node } = await singleServer(t, target, (error) => {
    fatal = error;
  });
  await write(node, 10);
  await until('a snapshot to start', () => target.stepsTaken > 0);
  target.failWith = new Error('serializer bug');
  target.gateOpen = true;
  await until('onFatal', () => fatal !== null);
  t.match((fatal as Error).message, /^serializing a snapshot failed: serializer bug$/, 'the error names the serializer and keeps its cause');
  t.equal((fatal as Error).cause, target.failWith);
  await t.rejects(node.propose(Uint8Array.of(1)), { name: 'RaftRequestError' }, 'the stopped node refuses proposals');
});

/** Storage whose snapshot files are written ahead of the turn (stageSnapshot), when the test lets it. */
class StagingStorage extends MemoryStorage {
  readonly staged: number[] = [];
  stagingStarted = 0;
  failWith: Error | null = null;
  #release: () => void = () => undefined;
  readonly #gate = new Promise<void>((resolve) => {
    this.#release = resolve;
  });

  release(): void {
    this.#release();
  }

  async stageSnapshot(snapshot: Snapshot): Promise<void> {
    this.stagingStarted++;
    await this.#gate;
    if (this.failWith !== null) throw this.failWith;
    this.staged.push(snapshot.meta.index);
  }
}

t.test('the snapshot file is written between turns too: writes commit while it is being written', async (t) => {
  const target = new GatedTarget();
  target.gateOpen = true;
  const storage = new StagingStorage();
  const { node } = await singleServer(t, target, undefined, storage);
  await write(node, 10);
  await until('the snapshot file to be written', () => storage.stagingStarted > 0);
  await write(node, 25);
  t.ok(target.applied >= 35, `35 writes applied while its file was being written (applied ${target.applied})`);
  t.equal((node.status() as { snapshotIndex: number }).snapshotIndex, 0, 'not saved before its file is durable');
  t.equal((node.status() as { firstIndex: number }).firstIndex, 1, 'nothing compacted yet');
  storage.release();
  await until('the snapshot to be saved', () => (node.status() as { snapshotIndex: number }).snapshotIndex > 0);
  const saved = (node.status() as { snapshotIndex: number }).snapshotIndex;
  t.same(storage.staged.slice(0, 1), [saved], 'the saved snapshot is the staged one');
});

t.test('a snapshot file that fails to be written stops the server (onFatal), as a storage failure', async (t) => {
  const target = new GatedTarget();
  target.gateOpen = true;
  const storage = new StagingStorage();
  storage.failWith = new Error('disk full');
  let fatal: unknown = null;
  const { node } = await singleServer(t, target, (error) => {
    fatal = error;
  }, storage);
  await write(node, 10);
  await until('the snapshot file to be written', () => storage.stagingStarted > 0);
  storage.release();
  await until('onFatal', () => fatal !== null);
  t.equal(fatal, storage.failWith, 'the storage error itself');
  await t.rejects(node.propose(Uint8Array.of(1)), { name: 'RaftRequestError' }, 'the stopped node refuses proposals');
});
