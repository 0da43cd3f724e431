import t from 'tap';
import type { Test } from 'tap';
import { consulTarget } from '../../scripts/bench/consul-target.js';
import { startFakeConsul } from '../../scripts/bench/fake-consul.js';
import type { FakeConsulFaults } from '../../scripts/bench/fake-consul.js';
import { LatencyHistogram } from '../../scripts/bench/latency-histogram.js';
import { prefillKeys, runLoad } from '../../scripts/bench/load.js';
import type { LoadOptions, LoadReport, Workload } from '../../scripts/bench/load.js';
import { startNoopServer } from '../../scripts/bench/noop-server.js';
import { median } from '../../scripts/bench/bench-report.js';

// Smoke tests of the load generator against the in-process stand-in and the no-op server:
// the report's shape, and that wrong answers are counted as errors, never as successes.
// No timing assertions: this machine is shared and slow runs must not fail the suite.

const KEY_SPACE = 50;
const VALUE_BYTES = 100;

function options(url: string, workload: Workload, extra: Partial<LoadOptions> = {}): LoadOptions {
  return {
    target: consulTarget({ urls: [url], connections: 4, watchConnections: 4 }),
    targetName: 'fake-consul (stand-in)',
    workload,
    concurrency: 4,
    warmupSeconds: 0.2,
    durationSeconds: 0.8,
    keySpace: KEY_SPACE,
    valueBytes: VALUE_BYTES,
    readRatio: 0.5,
    swarm: { sessions: 8, ttlSeconds: 1, updateIntervalMs: 100, watchers: 2 },
    serverPids: [],
    errorBackoffMs: 0,
    seed: 1,
    ...extra,
  };
}

async function load(url: string, workload: Workload, extra: Partial<LoadOptions> = {}): Promise<LoadReport> {
  const settings = options(url, workload, extra);
  try {
    return await runLoad(settings);
  } finally {
    await settings.target.close();
  }
}

function assertShape(t: Test, report: LoadReport, workload: Workload): void {
  t.equal(report.workload, workload);
  t.equal(report.protocol, 'consul');
  t.equal(report.concurrency, 4);
  t.equal(report.valueBytes, VALUE_BYTES);
  for (const field of ['successes', 'errors', 'opsPerSecond', 'stragglers'] as const) t.type(report[field], 'number', field);
  t.type(report.errorKinds, 'object');
  for (const field of ['count', 'meanMs', 'p50Ms', 'p90Ms', 'p99Ms', 'maxMs'] as const) t.type(report.latencyMs[field], 'number', field);
  t.equal(report.latencyMs.count, report.successes, 'latency is recorded for successes only');
  t.ok(report.latencyMs.p50Ms <= report.latencyMs.p90Ms && report.latencyMs.p90Ms <= report.latencyMs.p99Ms && report.latencyMs.p99Ms <= report.latencyMs.maxMs);
  t.type(report.cpu.loadGeneratorPercent, 'number');
  t.doesNotThrow(() => JSON.stringify(report));
}

t.test('every key workload against the stand-in: shaped reports, successes, no errors', async (t) => {
  const fake = await startFakeConsul();
  t.teardown(async () => fake.close());
  for (const workload of ['put', 'get', 'get-consistent', 'get-stale', 'cas', 'mixed'] as const) {
    const report = await load(fake.url, workload);
    assertShape(t, report, workload);
    t.ok(report.successes > 0, `${workload} succeeds`);
    t.equal(report.errors, 0, `${workload} has no errors`);
    if (workload === 'cas') {
      t.ok(report.cas !== null);
      t.equal((report.cas?.successes ?? 0) + (report.cas?.conflicts ?? 0), report.successes, 'a CAS is a swap or a conflict');
    } else {
      t.equal(report.cas, null);
    }
    if (workload === 'mixed') t.equal((report.mixed?.reads ?? 0) + (report.mixed?.writes ?? 0), report.successes);
  }
});

t.test('swarm against the stand-in: renews, updates and watcher wake-ups', async (t) => {
  const fake = await startFakeConsul();
  t.teardown(async () => fake.close());
  const report = await load(fake.url, 'swarm', { warmupSeconds: 0.3, durationSeconds: 1.2 });
  assertShape(t, report, 'swarm');
  const swarm = report.swarm;
  if (swarm === null) throw new Error('no swarm section');
  t.equal(swarm.sessions, 8);
  t.equal(swarm.setupErrors, 0);
  t.ok(swarm.renews.successes > 0, 'sessions renewed');
  t.ok(swarm.updates.successes > 0, 'keys rewritten');
  t.ok(swarm.wakeups > 0, 'watchers woke up');
  t.equal(swarm.wakeLatencyMs.count > 0, true);
  t.equal(report.successes, swarm.renews.successes + swarm.updates.successes);
  t.equal(report.errors, 0);
});

t.test('the no-op server answers a PUT correctly', async (t) => {
  const noop = await startNoopServer();
  t.teardown(async () => noop.close());
  const report = await load(noop.url, 'put');
  assertShape(t, report, 'put');
  t.ok(report.successes > 0);
  t.equal(report.errors, 0);
});

t.test('a GET answered with `true` is an error, not a success', async (t) => {
  const noop = await startNoopServer();
  t.teardown(async () => noop.close());
  const report = await load(noop.url, 'get', { skipPrefill: true });
  t.equal(report.successes, 0);
  t.ok(report.errors > 0);
  t.ok((report.errorKinds['body:not-kv-array'] ?? 0) > 0, 'counted by kind');
});

async function faulty(t: Test, faults: FakeConsulFaults, workload: Workload): Promise<LoadReport> {
  const fake = await startFakeConsul();
  t.teardown(async () => fake.close());
  const target = consulTarget({ urls: [fake.url], connections: 4, watchConnections: 1 });
  t.teardown(async () => target.close());
  await prefillKeys(target, KEY_SPACE, VALUE_BYTES);
  fake.setFaults(faults);
  const report = await runLoad({ ...options(fake.url, workload), target, skipPrefill: true });
  assertShape(t, report, workload);
  t.ok(report.successes > 0, 'the correct answers still count');
  t.ok(report.errors > 0, 'the wrong ones are errors');
  t.equal(Object.values(report.errorKinds).reduce((sum, count) => sum + count, 0), report.errors, 'kinds add up');
  return report;
}

t.test('500s and `false` answers to PUT are counted as errors', async (t) => {
  const report = await faulty(t, { status500Every: 7, putFalseEvery: 5 }, 'put');
  t.ok((report.errorKinds['status:500'] ?? 0) > 0);
  t.ok((report.errorKinds['body:false'] ?? 0) > 0);
});

t.test('a GET answering another key is an error', async (t) => {
  const report = await faulty(t, { wrongKeyEvery: 3 }, 'get');
  t.ok((report.errorKinds['body:wrong-key'] ?? 0) > 0);
});

t.test('CAS: 500s are errors, conflicts are not', async (t) => {
  const report = await faulty(t, { status500Every: 9 }, 'cas');
  t.ok((report.errorKinds['status:500'] ?? 0) > 0);
  t.equal((report.cas?.successes ?? 0) + (report.cas?.conflicts ?? 0), report.successes);
});

t.test('latency histogram: percentiles within 1 % of the exact sample', async (t) => {
  const histogram = new LatencyHistogram();
  const samples: number[] = [];
  for (let index = 1; index <= 10_000; index++) {
    const latencyMs = (index * 7919) % 100_000 / 100; // 0 .. 1000 ms, spread
    samples.push(latencyMs);
    histogram.recordMs(latencyMs);
  }
  samples.sort((a, b) => a - b);
  for (const percent of [50, 90, 99]) {
    const exact = samples[Math.ceil((percent / 100) * samples.length) - 1] ?? 0;
    const reported = histogram.percentileMs(percent);
    t.ok(reported >= exact && reported <= exact * 1.01 + 0.001, `p${percent}: ${reported} vs ${exact}`);
  }
  t.equal(histogram.summary().maxMs, samples[samples.length - 1]);
  t.equal(histogram.count, 10_000);
  t.equal(new LatencyHistogram().percentileMs(99), 0, 'empty histogram');
});

t.test('median', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 2, 3]), 2.5);
  t.throws(() => median([]));
});
