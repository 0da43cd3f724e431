import t from 'tap';
import { FaultCluster } from './fault-cluster.js';
import { ELECTION_TIMEOUT_MAX_MS, distribution, failoverTrial } from './scenarios.js';
import type { FailoverTrial } from './scenarios.js';
import { reportSuiteTotals } from './suite-summary.js';

/**
 * Leader-kill timing (RELIABILITY.md Tier 2, ×20 in CI, `CONCLAVE_FAILOVER_TRIALS=200` in soak):
 * kill -9 the leader of 3 servers under a PUT every 20 ms; time to a new usable leader and the
 * gap in acknowledged writes, as p50/p90/p99/max. RELIABILITY's targets (p50 ≤ electionTimeoutMax
 * + 0.5 s, p99 ≤ 2×electionTimeoutMax + 1 s) are reported; the assertions are looser, for a
 * loaded 2-core CI box: every trial recovers, and the median stays within twice the p50 target.
 */
const figures: Record<string, unknown> = {};
reportSuiteTotals(t, 'faults-failover', figures);
t.setTimeout(900_000);

const TRIALS = Number(process.env.CONCLAVE_FAILOVER_TRIALS ?? 20);

t.test(`kill -9 the leader ×${TRIALS}: time to leader and unavailability`, { timeout: 900_000 }, async (t) => {
  const fc = await FaultCluster.create({ servers: 3 });
  t.teardown(() => fc.destroy());
  fc.startAll();
  const results: FailoverTrial[] = [];
  for (let trial = 1; trial <= TRIALS; trial++) {
    const result = await failoverTrial(fc, trial);
    results.push(result);
    t.ok(Number.isFinite(result.timeToLeaderMs), `trial ${trial}: a new leader after killing ${result.killed} (${Math.round(result.timeToLeaderMs)} ms)`);
    t.ok(Number.isFinite(result.unavailableMs), `trial ${trial}: writes resumed (gap ${Math.round(result.unavailableMs)} ms)`);
  }
  await fc.settle(90_000);
  const timeToLeader = distribution(results.map((r) => r.timeToLeaderMs));
  const unavailability = distribution(results.map((r) => r.unavailableMs));
  const targets = { p50: ELECTION_TIMEOUT_MAX_MS + 500, p99: 2 * ELECTION_TIMEOUT_MAX_MS + 1000 };
  Object.assign(figures, { timeToLeaderMs: timeToLeader, unavailabilityMs: unavailability, targetsMs: targets, trials: results });
  t.comment(`time to leader (ms): ${JSON.stringify(timeToLeader)}; unavailability (ms): ${JSON.stringify(unavailability)}; targets ${JSON.stringify(targets)}`);
  t.comment(`targets met: p50 ${timeToLeader.p50 <= targets.p50}, p99 ${timeToLeader.p99 <= targets.p99}`);
  t.ok(timeToLeader.p50 <= 2 * targets.p50, `median time to leader ${timeToLeader.p50} ms within 2× the ${targets.p50} ms target`);
  t.ok(unavailability.max <= 30_000, `longest write gap ${unavailability.max} ms under 30 s`);
});
