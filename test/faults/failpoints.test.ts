import t from 'tap';
import { runJepsen } from './jepsen.js';
import { reportSuiteTotals } from './suite-summary.js';

/**
 * Crashes at the named failpoints (RELIABILITY.md B1, src/lib/failpoints.ts) under the register,
 * set and lock workloads: every server runs with CONCLAVE_FAILPOINTS arming each raft.* point
 * with a small probability (snapshots are made frequent so their points are reached), a
 * supervisor restarts whatever crashed, and a partition or a leader kill now and then adds to
 * it. Nothing acknowledged may be lost, the history must be linearizable and the servers must
 * end with one state hash.
 */
const figures: Record<string, unknown> = {};
reportSuiteTotals(t, 'faults-failpoints', figures);
t.setTimeout(600_000);

const seed = Number(process.env.CONCLAVE_JEPSEN_SEED ?? Date.now() % 100_000);
export const FAILPOINTS = [
  'raft.beforePersist=crash@0.0003',
  'raft.afterPersist=crash@0.0003',
  'raft.beforeApply=crash@0.00005',
  'raft.afterApply=crash@0.0003',
  'raft.beforeSnapshot=crash@0.03',
  'raft.afterSnapshot=crash@0.03',
].join(',');

t.test('crashes at every failpoint, restarted by the supervisor', { timeout: 400_000 }, async (t) => {
  const result = await runJepsen({
    name: 'failpoints-3', servers: 3, timeS: Number(process.env.CONCLAVE_FAILPOINT_TIME ?? 30), seed,
    env: { CONCLAVE_FAILPOINTS: FAILPOINTS },
    config: { raft_snapshot_threshold: 500, raft_trailing_logs: 100 },
    supervise: true,
    faults: ['kill-leader', 'partition-leader'],
    nemesisIntervalMs: [8000, 12_000],
    defaultReadsMayBeStale: false,
  });
  figures['run'] = { dir: result.dir, ...result.summary };
  const faults = result.summary.reported['faults'] as Record<string, number>;
  t.comment(`${JSON.stringify(result.summary.reported)}`);
  t.ok((faults['failpointCrashes'] ?? 0) > 0, `servers crashed at failpoints (${faults['failpointCrashes']})`);
  t.same(result.problems, [], `every must-be-0 figure is 0 (seed ${seed}, ${result.dir})`);
});
