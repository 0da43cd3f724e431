import t from 'tap';
import { request } from 'undici';
import { startDevCluster } from '../../../src/index.js';

/**
 * BUG (found by `npm run bench:scale`, fixed in src/raft/node.ts and RaftCore.skipTicks): at 1M
 * keys every snapshot cost a leader change. All servers apply the same index, so all serialise
 * their state at once (~1.5 s each, the event loop blocked). On resuming, each stepped the ticks
 * it owed in one batch: a follower's election timeout ran out before it had read its leader's
 * next heartbeat, and a leader could meet a second check-quorum inside the batch with no message
 * stepped in between. The logs of the scale run: all three `snapshot saved` at index 8196, then
 * pre-candidate, candidate, `became leader term=3`, the old leader `stepped down`.
 *
 * Steps: a 3-server cluster in this process (so one busy loop pauses all three, as a shared
 * snapshot index does); block the event loop for 1.8 s (18 ticks: past most randomized election
 * timeouts of 10–19 ticks); let the cluster run 2 s. Expected: the same leader in the same term.
 * Seen before the fix: a new term in most runs (the pause is counted as the leader's silence).
 */

interface RaftDebug {
  readonly role: string;
  readonly term: number;
}

async function raftState(httpAddress: string): Promise<RaftDebug> {
  const reply = await request(`${httpAddress}/v1/debug/raft`);
  return (await reply.body.json()) as RaftDebug;
}

function blockEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // a synchronous snapshot of a large state does the same to the event loop
  }
}

t.test('a pause of every server (a large snapshot at the same index) changes no leader', async (t) => {
  const cluster = await startDevCluster({ servers: 3, logger: 'silent' });
  t.teardown(() => cluster.close());
  const leader = await cluster.leader();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const before = await Promise.all(cluster.servers.map((server) => raftState(server.httpAddress)));
  const term = before.find((state) => state.role === 'leader')?.term;
  t.ok(term !== undefined && before.every((state) => state.term === term), 'one leader, every server in its term');
  for (let pause = 0; pause < 2; pause++) {
    blockEventLoop(1800);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const after = await Promise.all(cluster.servers.map((server) => raftState(server.httpAddress)));
    t.same(after.map((state) => state.term), before.map(() => term), `pause ${pause + 1}: every server still in term ${term}`);
    t.ok(leader.isLeader(), `pause ${pause + 1}: the same server leads`);
  }
});
