import t from 'tap';
import { checkLeaders } from './checks.js';
import type { RaftSample } from './checks.js';
import { FaultCluster } from './fault-cluster.js';
import { runJepsen } from './jepsen.js';
import { isolatedLeaderTrial, voteScenario } from './scenarios.js';
import { reportSuiteTotals } from './suite-summary.js';

/**
 * Positive controls (RELIABILITY.md B1): each planted bug (CONCLAVE_TEST_BUG) must make its
 * checker fail — a checker that does not catch its bug is broken. Each control runs next to the
 * same scenario without the bug, which must pass (so the scenario, not chance, decides).
 * - read-without-leader-check: a leader cut off from the majority (scenarios.ts
 *   isolatedLeaderTrial: no timing race decides whether it still believes it leads) answers
 *   `?consistent` GETs from stale state;
 * - vote-not-persisted: the staged crash-restart vote (scenarios.ts voteScenario) gives two
 *   leaders in one term;
 * - no-lockdelay: sessions destroyed while holding a lock let the next holder in at once (L2).
 * ack-before-fsync needs power loss (the page cache survives kill -9): test/net/ (Tier 3).
 */
const figures: Record<string, unknown> = {};
reportSuiteTotals(t, 'faults-positive-controls', figures);
t.setTimeout(900_000);
/** `CONCLAVE_CONTROL=zombie|vote|lock` runs one group only. */
const only = process.env.CONCLAVE_CONTROL ?? '';
const runs = (group: string): boolean => only === '' || only === group;

for (const bug of runs('zombie') ? [null, 'read-without-leader-check'] as const : []) {
  t.test(`isolated zombie leader, ${bug ?? 'no bug'}: ${bug === null ? 'default and ?consistent reads stay fresh' : '?consistent reads go stale (caught)'}`, { timeout: 300_000 }, async (t) => {
    const fc = await FaultCluster.create({
      servers: 3,
      // s1 campaigns only when handed leadership, and steps down by check-quorum only after 60 s.
      serverConfig: { s1: { raft_election_timeout: '60s' } },
      ...(bug === null ? {} : { env: { CONCLAVE_TEST_BUG: bug } }),
    });
    t.teardown(() => fc.destroy());
    fc.startAll();
    const result = await isolatedLeaderTrial(fc, 's1', 'control/zombie');
    t.comment(result.details);
    figures[`zombie-${bug ?? 'none'}`] = { staged: result.staged, consistentRead: result.consistentRead ?? 'error', stale: result.staleConsistent, defaultRead: result.defaultRead ?? 'error', staleDefault: result.staleDefault };
    t.ok(result.staged, 'the cut-off server still believed it led when it was asked');
    if (bug === null) {
      t.notOk(result.staleConsistent, 'no stale ?consistent read');
      // s1's election timeout is 60 s, the others' 1 s: its lease follows theirs (the guard
      // they report), so it has run out by the time they elected a successor.
      t.notOk(result.staleDefault, 'no stale default read');
    } else {
      t.ok(result.staleConsistent, 'the checker caught the stale ?consistent read');
    }
  });
}

for (const bug of runs('vote') ? [null, 'vote-not-persisted'] as const : []) {
  t.test(`crash-restart vote, ${bug ?? 'no bug'}: ${bug === null ? 'one leader per term' : 'two leaders in a term (caught)'}`, { timeout: 300_000 }, async (t) => {
    // Staging needs the cut-off server exactly one term behind; a fresh cluster retries it.
    let outcome: { samples: RaftSample[]; notes: string[]; staged: boolean; bLedInATerm?: boolean } = { samples: [], notes: [], staged: false };
    // With the bug, a staged run exercises it only if B then campaigned in A's term: sometimes B
    // first learns that term from C's answer and campaigns in the next (both servers then agree,
    // no bug shows; seen in about one staged run in four). Such a run is retried like an
    // unstaged one; the verdict is on the first run that exercised the forgotten vote.
    const exercised = (): boolean => outcome.staged && (bug === null || outcome.bLedInATerm === true);
    for (let attempt = 1; attempt <= 6 && !exercised(); attempt++) {
      const fc = await FaultCluster.create({
        servers: 3,
        serverConfig: { s3: { raft_election_timeout: '4s' } },
        ...(bug === null ? {} : { env: { CONCLAVE_TEST_BUG: bug } }),
      });
      try {
        outcome = await voteScenario(fc);
      } finally {
        await fc.destroy();
      }
      for (const note of outcome.notes) t.comment(`attempt ${attempt}: ${note}`);
    }
    const samples = outcome.samples;
    const staged = exercised();
    const leaders = checkLeaders(samples);
    figures[`vote-${bug ?? 'none'}`] = { staged, conflicts: leaders.conflicts, samples: samples.length };
    if (!staged) {
      // The stage depends on timing a loaded machine may not give; the deterministic simulation
      // proves the same control every run (test/sim/positive-controls.test.ts).
      await t.test('the staged scenario', { skip: `could not stage it in 6 fresh clusters on this machine (${samples.length} samples)` }, async () => undefined);
      return;
    }
    t.ok(staged, 'the scenario was staged (the cut-off server exactly one term behind)');
    const led = new Set(samples.filter((sample) => sample.role === 'leader').map((sample) => `${sample.node}@${sample.term}`));
    t.comment(`leaders seen (server@term): ${[...led].join(', ')}`);
    if (bug === null) t.same(leaders.conflicts, [], 'at most one leader per term');
    else t.ok(leaders.conflicts.length > 0, `the leader check caught: ${leaders.conflicts.join('; ')}`);
  });
}

for (const bug of runs('lock') ? [null, 'no-lockdelay'] as const : []) {
  t.test(`lock workload, ${bug ?? 'no bug'}: ${bug === null ? 'lock-delay honoured' : 'L2 fails (caught)'}`, { timeout: 300_000 }, async (t) => {
    const result = await runJepsen({
      name: `control-lock-${bug ?? 'none'}`, servers: 3, timeS: 15, seed: 5, faults: [], quietS: 1,
      registerClients: 0, setClients: 0, lockClients: 4,
      lock: { destroyChance: 0.5, lockDelayS: 2, keys: 1 },
      // The planted bug must fail a check: its data dirs are no post-mortem, only litter in /tmp.
      keepDataOnFailure: bug === null,
      ...(bug === null ? {} : { env: { CONCLAVE_TEST_BUG: bug } }),
    });
    const l2 = result.summary.mustBeZero['lockL2'] ?? 0;
    figures[`lock-${bug ?? 'none'}`] = { l2, invalidations: result.lock?.invalidations, holds: result.lock?.holds };
    t.ok((result.lock?.invalidations ?? 0) > 0, `sessions were invalidated while holding (${result.lock?.invalidations})`);
    if (bug === null) t.same(result.problems, [], 'every must-be-0 figure is 0');
    else t.ok(l2 > 0, `L2 caught ${l2} acquisition(s) inside the lock-delay`);
  });
}
