import t from 'tap';
import { runAb } from '../../scripts/bench/ab.js';
import type { AbSide } from '../../scripts/bench/ab.js';
import { startFakeConsulCluster } from '../../scripts/bench/conclave.js';

// The A/B runner against two stand-in processes (no Raft, no disk): both sides are started, every
// round runs the two load generators at the same time, and the ratio is B's ops/s over A's.
// No timing assertions beyond the overlap (shared machine).

t.test('runAb loads both sides at once each round and reports B ÷ A', async (t) => {
  const started: AbSide[] = [];
  const side = (name: string): AbSide => ({ main: name, nodeArgs: [] });
  const lines: string[] = [];
  const result = await runAb({
    a: side('a'), b: side('b'), workload: 'put', rounds: 2, durationSeconds: 1, warmupSeconds: 0.2, concurrency: 4,
  }, async (which) => {
    started.push(which);
    return startFakeConsulCluster();
  }, (line) => lines.push(line));
  t.same(started.map((which) => which.main), ['a', 'b'], 'one cluster per side, A first');
  t.equal(result.rounds.length, 2);
  for (const round of result.rounds) {
    for (const load of [round.a, round.b]) {
      t.equal(load.report.workload, 'put');
      t.equal(load.report.concurrency, 4);
      t.ok(load.report.successes > 0, 'the stand-in answered');
      t.equal(load.report.errors, 0);
    }
    t.equal(round.a.report.target, 'A');
    t.equal(round.b.report.target, 'B');
    t.equal(round.ratio, round.b.report.opsPerSecond / round.a.report.opsPerSecond);
    t.ok(round.a.startedMs < round.b.endedMs && round.b.startedMs < round.a.endedMs, 'the two loads overlapped in time');
  }
  const ratios = result.rounds.map((round) => round.ratio).sort((x, y) => x - y);
  t.equal(result.medianRatio, (ratios[0]! + ratios[1]!) / 2, 'median of the rounds');
  t.equal(lines.length, 2, 'one line per round');
  t.match(lines[0], /^round 1: A \d+ ops\/s.*\| B \d+ ops\/s.*\| B\/A \d+\.\d{3}$/);
});

t.test('runAb stops the clusters it started when a side fails to start', async (t) => {
  let stopped = 0;
  await t.rejects(runAb({
    a: { main: 'a', nodeArgs: [] }, b: { main: 'b', nodeArgs: [] }, workload: 'put', rounds: 1, durationSeconds: 1, warmupSeconds: 0, concurrency: 1,
  }, async (which) => {
    if (which.main === 'b') throw new Error('b failed to start');
    const cluster = await startFakeConsulCluster();
    const stop = cluster.stop.bind(cluster);
    return Object.assign(Object.create(cluster) as typeof cluster, { stop: async () => { stopped++; await stop(); } });
  }), /b failed to start/);
  t.equal(stopped, 1, 'A was stopped');
});
