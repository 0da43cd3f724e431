import t from 'tap';
import { makeRaftConfig } from '../../../src/raft/core/config.js';
import type { Entry, Snapshot } from '../../../src/raft/core/types.js';
import { RaftNode, RaftRequestError } from '../../../src/raft/node.js';
import type { ApplyTarget } from '../../../src/raft/node.js';
import { MemoryStorage } from '../../../src/raft/storage/memory-storage.js';
import { MemoryNetwork } from '../../../src/transport/memory-transport.js';
import { Prng } from '../../../src/lib/prng.js';
import { silentLogger } from '../../../src/lib/logger.js';

/**
 * A deposed leader's proposals that its successor's log never got. The one at the index where
 * the successor's first entry lands is answered when that index is applied (another term's
 * entry there). The one after it used to wait for an entry at its own index, which an idle
 * cluster may not write for a long time, and then timed out as "outcome unknown". Once an entry
 * of a newer term is applied, no older-term proposal past it can commit (terms never decrease
 * along a log): it is answered "not applied" then (RaftNode.#rejectSuperseded).
 */

class CountingTarget implements ApplyTarget {
  appliedIndex = 0;

  applyEntry(entry: Entry): unknown {
    this.appliedIndex = entry.index;
    return entry.index;
  }

  restore(snapshot: Snapshot): void {
    this.appliedIndex = snapshot.meta.index;
  }

  snapshot(): Generator<void, Uint8Array, void> {
    return (function* steps() {
      yield;
      return new Uint8Array(0);
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

/** The proposal timeout: far beyond the test's own wait, so only the sweep can answer in time. */
const PROPOSAL_TIMEOUT_MS = 120_000;
const ANSWER_WITHIN_MS = 10_000;

t.test('a deposed leader\'s proposals past its successor\'s log are answered "not applied" once the new term applies', async (t) => {
  const network = new MemoryNetwork(11n);
  const ids = ['n1', 'n2', 'n3'];
  const configuration = { servers: ids.map((id) => ({ id, address: id, voter: true })) };
  const nodes: RaftNode[] = [];
  for (const [k, id] of ids.entries()) {
    const storage = new MemoryStorage();
    const transport = network.createTransport({ address: id, serverId: id });
    for (const peer of ids) if (peer !== id) transport.setPeerAddress(peer, peer);
    const node = new RaftNode({
      raft: makeRaftConfig({ id, electionTimeoutTicks: 10, heartbeatIntervalTicks: 1 }),
      storage, transport, target: new CountingTarget(), prng: new Prng(BigInt(k + 1)), logger: silentLogger, tickMs: 10,
      snapshotIntervalEntries: 10_000, snapshotTrailingEntries: 10, proposalTimeoutMs: PROPOSAL_TIMEOUT_MS, onFatal: () => undefined,
    }, await storage.load());
    node.start();
    t.teardown(() => node.close());
    nodes.push(node);
    await node.bootstrap(configuration);
  }
  await until('a leader', () => nodes.some((node) => node.role === 'leader'));
  const old = nodes.find((node) => node.role === 'leader') as RaftNode;
  const others = nodes.filter((node) => node !== old);
  await old.propose(Uint8Array.of(1)); // committed: every log holds it
  const oldTerm = old.term;

  network.isolate(old.id);
  const atSuccessorsFirst = old.propose(Uint8Array.of(2)).then(() => null, (error: unknown) => error);
  const pastIt = old.propose(Uint8Array.of(3)).then(() => null, (error: unknown) => error);
  await until('a new leader among the others', () => others.some((node) => node.role === 'leader' && node.term > oldTerm));
  network.heal();

  const timedOut = new Promise<string>((resolve) => setTimeout(() => resolve(`no answer within ${ANSWER_WITHIN_MS} ms`), ANSWER_WITHIN_MS).unref());
  for (const [what, outcome] of [['the proposal at the successor\'s first index', atSuccessorsFirst], ['the proposal past it', pastIt]] as const) {
    const error = await Promise.race([outcome, timedOut]);
    t.ok(error instanceof RaftRequestError, `${what} failed: ${String(error)}`);
    t.equal((error as RaftRequestError).reason, 'superseded', `${what}: superseded`);
    t.equal((error as RaftRequestError).outcome, 'not-applied', `${what}: certainly not applied`);
  }
  await until('the old leader to follow', () => old.role === 'follower' && old.term > oldTerm);
});
