import t from 'tap';
import { FaultCluster } from './fault-cluster.js';
import { ELECTION_TIMEOUT_MAX_MS, zombieTrial } from './scenarios.js';
import type { ZombieTrial } from './scenarios.js';
import { reportSuiteTotals } from './suite-summary.js';

/**
 * The zombie leader (RELIABILITY.md Tier 2): SIGSTOP the leader for 3 election timeouts while
 * the others elect a new one and take writes; SIGCONT it and at once send it a default and a
 * `?consistent` GET. Neither may return a value older than the last acknowledged write (a failed
 * read is fine). Two variants: the plain one, and one where nothing reaches the old leader after
 * it wakes (so only its own lease/quorum check protects it). The same trials with
 * CONCLAVE_TEST_BUG=read-without-leader-check must see a stale value
 * (positive-controls.test.ts).
 */
const trials: ZombieTrial[] = [];
reportSuiteTotals(t, 'faults-zombie', { trials });
t.setTimeout(600_000);

const TRIALS = Number(process.env.CONCLAVE_ZOMBIE_TRIALS ?? 2);

t.test('zombie leader: no stale default or consistent read after SIGCONT', { timeout: 300_000 }, async (t) => {
  const fc = await FaultCluster.create({ servers: 3 });
  t.teardown(() => fc.destroy());
  fc.startAll();
  for (let trial = 1; trial <= TRIALS; trial++) {
    for (const isolateInbound of [false, true]) {
      const result = await zombieTrial(fc, `zombie/${trial}-${isolateInbound ? 'isolated' : 'plain'}`, trial, { pauseMs: 3 * ELECTION_TIMEOUT_MAX_MS, isolateInbound });
      trials.push(result);
      t.comment(result.details);
      // Fails today: see bug-lease-after-pause.test.ts (the lease looks valid for one event-loop
      // turn after a pause). The stale default reads are counted in summary.json meanwhile.
      t.notOk(result.staleDefault, `trial ${trial}${isolateInbound ? ' (inbound cut)' : ''}: the default GET on the old leader is not stale`);
      t.notOk(result.staleConsistent, `trial ${trial}${isolateInbound ? ' (inbound cut)' : ''}: the ?consistent GET on the old leader is not stale`);
      t.not(result.newLeader, null, 'a leader after the trial');
    }
  }
});
