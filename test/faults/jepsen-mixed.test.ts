import t from 'tap';
import type { Test } from 'tap';
import { runJepsen } from './jepsen.js';
import type { RunResult } from './jepsen.js';
import { reportSuiteTotals } from './suite-summary.js';

/**
 * Tier 2 mixed faults in CI (RELIABILITY.md): 3 real servers behind the fault proxy, the
 * register, set and lock workloads through all of them, watchers (blocking queries) on the
 * register keys, and a nemesis that kills (-9) the leader, a follower or everyone, pauses the
 * leader and partitions the cluster in Jepsen's shapes, with seeded choices. Every must-be-0 figure of summary.json must be 0. Longer and 5-server runs:
 * `npm run jepsen` (test/faults/jepsen-cli.ts).
 */
const figures: Record<string, unknown> = {};
reportSuiteTotals(t, 'faults-mixed', figures);
t.setTimeout(600_000);

const seed = Number(process.env.CONCLAVE_JEPSEN_SEED ?? Date.now() % 100_000);

function report(t: Test, result: RunResult): void {
  figures[result.name] = { dir: result.dir, ...result.summary };
  t.comment(`${result.name}: ${JSON.stringify(result.summary.reported)}`);
  t.same(result.problems, [], `${result.name}: every must-be-0 figure is 0 (seed ${seed}, ${result.dir})`);
  t.ok(Object.values(result.register?.checked ?? {}).reduce((a, b) => a + b, 0) > 200, 'the checker saw a real history');
  t.ok(Object.values(result.watch?.responses ?? {}).reduce((a, b) => a + b, 0) > 50, 'the watch checker saw a real history');
}

t.test('3 servers: kill -9, pause, partitions, delay (seeded)', { timeout: 300_000 }, async (t) => {
  const result = await runJepsen({
    name: 'mixed-3', servers: 3, timeS: Number(process.env.CONCLAVE_JEPSEN_TIME ?? 30), seed,
    faults: ['kill-leader', 'kill-follower', 'kill-all', 'pause-leader', 'partition-leader', 'partition-halves', 'partition-one-way', 'delay'],
    defaultReadsMayBeStale: false,
  });
  report(t, result);
});
