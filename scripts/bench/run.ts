import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BenchCluster } from './bench-cluster.js';
import { renderMarkdown, summarize } from './bench-report.js';
import type { BenchResults } from './bench-report.js';
import { measureDiskCeiling, measureNoopCeiling } from './ceilings.js';
import { optionValue } from './cli-options.js';
import { startConclaveCluster, startFakeConsulCluster, CONCLAVE_MAIN_DEFAULT } from './conclave.js';
import { consulTarget } from './consul-target.js';
import { startEtcdCluster } from './etcd.js';
import { etcdTarget } from './etcd-target.js';
import { runFailover } from './failover.js';
import type { FailoverReport } from './failover.js';
import { LOAD_DEFAULTS, runLoad, WORKLOADS } from './load.js';
import type { LoadReport, Workload } from './load.js';
import { machineInfo } from './machine.js';
import { installExitHandlers } from './processes.js';
import { SWARM_DEFAULTS } from './swarm-workload.js';
import type { SwarmOptions } from './swarm-workload.js';
import type { KvTarget } from './target.js';

/**
 * The benchmark runner: starts a 3-member etcd cluster and the Conclave side, measures the
 * ceilings, then runs every workload on both, interleaved (Conclave, etcd, Conclave, etcd, …)
 * for `--rounds` rounds, then leader failover on both. Prints and writes
 * `results/bench-<date>.md` and `.json`: medians and the Conclave ÷ etcd ratio of each.
 *   node build/scripts/bench/run.js [--quick] [--workloads put,get,get-consistent,get-stale,cas,mixed,swarm,failover]
 *     [--duration s] [--warmup s] [--concurrency 64] [--value-bytes 100] [--rounds 3] [--key-space 1000]
 *     [--failover-trials 10] [--conclave fake|real] [--conclave-main build/src/main.js] [--out-dir results]
 *     [--targets conclave,etcd] [--no-ceilings]
 */

/**
 * Which Conclave the runner measures by default. `fake` is the stand-in (scripts/bench/fake-consul.ts)
 * used until the agent CLI exists; the lead switches this to `real` when `build/src/main.js agent` works.
 */
const CONCLAVE_MODE_DEFAULT: 'fake' | 'real' = 'real';

/** `failover` is not a load workload but runs when listed, after all of them. */
const ALL_STEPS = [...WORKLOADS, 'failover'] as const;
type Step = (typeof ALL_STEPS)[number];

interface RunOptions {
  readonly quick: boolean;
  readonly steps: readonly Step[];
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  readonly concurrency: number;
  readonly valueBytes: number;
  readonly keySpace: number;
  readonly rounds: number;
  readonly failoverTrials: number;
  readonly conclave: 'fake' | 'real';
  readonly conclaveMain: string;
  readonly targets: readonly ('conclave' | 'etcd')[];
  readonly outDir: string;
  readonly ceilings: boolean;
  readonly swarm: SwarmOptions;
}

function parseOptions(argv: readonly string[]): RunOptions {
  const value = (name: string): string | undefined => optionValue(argv, name);
  const number = (name: string, fallback: number): number => {
    const text = value(name);
    const parsed = text === undefined ? fallback : Number(text);
    if (!Number.isFinite(parsed) || parsed < 0) throw new Error(`--${name}: not a number: ${text}`);
    return parsed;
  };
  const quick = argv.includes('--quick');
  const steps = (value('workloads') ?? ALL_STEPS.join(',')).split(',').map((step) => step.trim()).filter((step) => step !== '');
  for (const step of steps) if (!(ALL_STEPS as readonly string[]).includes(step)) throw new Error(`unknown workload ${step}; known: ${ALL_STEPS.join(',')}`);
  const conclave = value('conclave') ?? CONCLAVE_MODE_DEFAULT;
  if (conclave !== 'fake' && conclave !== 'real') throw new Error('--conclave is fake or real');
  const targets = (value('targets') ?? 'conclave,etcd').split(',');
  for (const target of targets) if (target !== 'conclave' && target !== 'etcd') throw new Error(`unknown target ${target}`);
  const rounds = number('rounds', 3);
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error('--rounds must be a positive integer');
  return {
    quick,
    steps: steps as Step[],
    durationSeconds: number('duration', quick ? 1.5 : LOAD_DEFAULTS.durationSeconds),
    warmupSeconds: number('warmup', quick ? 0.5 : LOAD_DEFAULTS.warmupSeconds),
    concurrency: number('concurrency', LOAD_DEFAULTS.concurrency),
    valueBytes: number('value-bytes', LOAD_DEFAULTS.valueBytes),
    keySpace: number('key-space', LOAD_DEFAULTS.keySpace),
    rounds,
    failoverTrials: number('failover-trials', quick ? 3 : 10),
    conclave,
    conclaveMain: value('conclave-main') ?? CONCLAVE_MAIN_DEFAULT,
    targets: targets as ('conclave' | 'etcd')[],
    outDir: resolve(value('out-dir') ?? 'results'),
    ceilings: !argv.includes('--no-ceilings'),
    swarm: quick ? { sessions: 32, ttlSeconds: 10, updateIntervalMs: 1_000, watchers: 2 } : SWARM_DEFAULTS,
  };
}

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function targetFor(cluster: BenchCluster, options: RunOptions): KvTarget {
  const endpoints = { urls: cluster.clientUrls, connections: options.concurrency, watchConnections: options.swarm.watchers + 1 };
  return cluster.protocol === 'etcd' ? etcdTarget(endpoints) : consulTarget(endpoints);
}

/** One workload on one cluster, one round. */
async function runOne(cluster: BenchCluster, idlePids: readonly number[], target: KvTarget, workload: Workload, round: number, options: RunOptions): Promise<LoadReport> {
  const report = await runLoad({
    target,
    targetName: cluster.name,
    workload,
    concurrency: options.concurrency,
    warmupSeconds: options.warmupSeconds,
    durationSeconds: options.durationSeconds,
    keySpace: options.keySpace,
    valueBytes: options.valueBytes,
    readRatio: LOAD_DEFAULTS.readRatio,
    swarm: options.swarm,
    serverPids: cluster.pids(),
    idlePids,
    errorBackoffMs: 0,
    seed: round + 1,
  });
  const extra = report.swarm === null ? '' : `, renews/s ${report.swarm.renews.opsPerSecond}, wake p99 ${report.swarm.wakeLatencyMs.p99Ms} ms`;
  log(`${workload} round ${round + 1} ${cluster.name}: ${report.opsPerSecond} ops/s, p99 ${report.latencyMs.p99Ms} ms, errors ${report.errors}${extra}`);
  return report;
}

async function startClusters(options: RunOptions, dataParent: string): Promise<BenchCluster[]> {
  const clusters: BenchCluster[] = [];
  try {
    if (options.targets.includes('conclave')) {
      log(options.conclave === 'real' ? `starting 3 Conclave servers (${options.conclaveMain})` : 'starting fake-consul (STAND-IN, not Conclave)');
      clusters.push(options.conclave === 'real'
        ? await startConclaveCluster({ main: options.conclaveMain, parentDir: dataParent })
        : await startFakeConsulCluster({ parentDir: dataParent }));
    }
    if (options.targets.includes('etcd')) {
      log('starting 3 etcd members');
      clusters.push(await startEtcdCluster({ parentDir: dataParent }));
    }
    return clusters;
  } catch (error) {
    await Promise.all(clusters.map(async (cluster) => cluster.stop()));
    throw error;
  }
}

async function main(): Promise<void> {
  installExitHandlers();
  const startedMs = performance.now();
  const options = parseOptions(process.argv.slice(2));
  const date = new Date();
  const dataParent = mkdtempSync(join(tmpdir(), 'conclave-bench-'));
  const clusters = await startClusters(options, dataParent);
  const loads: LoadReport[] = [];
  const failover: FailoverReport[] = [];
  let ceilings: BenchResults['ceilings'] = null;
  try {
    if (options.ceilings) {
      log('ceilings: disk sync loop, then the load generator against a no-op server');
      const disk = measureDiskCeiling(dataParent, options.quick ? 1 : 2);
      const noop = await measureNoopCeiling({ ...options, seed: 1 }, dataParent);
      ceilings = { disk, noop };
      log(`disk ${disk.syncsPerSecond} syncs/s; load generator ceiling ${noop.opsPerSecond} ops/s`);
    }
    const targets = clusters.map((cluster) => ({ cluster, target: targetFor(cluster, options) }));
    try {
      for (const workload of WORKLOADS.filter((item) => options.steps.includes(item))) {
        for (let round = 0; round < options.rounds; round++) {
          for (const { cluster, target } of targets) {
            const idlePids = clusters.filter((other) => other !== cluster).flatMap((other) => other.pids());
            loads.push(await runOne(cluster, idlePids, target, workload, round, options));
          }
        }
      }
    } finally {
      await Promise.all(targets.map(async ({ target }) => target.close()));
    }
    if (options.steps.includes('failover')) {
      for (const cluster of clusters) {
        if (!cluster.supportsFailover) {
          log(`failover: skipped for ${cluster.name} (no leader to kill)`);
          continue;
        }
        log(`failover: ${options.failoverTrials} trials on ${cluster.name}`);
        const report = await runFailover({
          cluster, trials: options.failoverTrials, concurrency: options.concurrency, valueBytes: options.valueBytes,
          loadBeforeKillMs: 1_000, trialTimeoutMs: 30_000, healthyTimeoutMs: 60_000,
        });
        log(`failover ${cluster.name}: p50 ${report.p50Ms} ms, p99 ${report.p99Ms} ms, failed ${report.failedTrials}`);
        failover.push(report);
      }
    }
  } finally {
    await Promise.all(clusters.map(async (cluster) => cluster.stop()));
    rmSync(dataParent, { recursive: true, force: true });
  }
  const results = buildResults(options, date, clusters, loads, failover, ceilings, dataParent, startedMs);
  writeResults(results, options.outDir);
}

function buildResults(options: RunOptions, date: Date, clusters: readonly BenchCluster[], loads: LoadReport[],
  failover: FailoverReport[], ceilings: BenchResults['ceilings'], dataParent: string, startedMs: number): BenchResults {
  const workloads = WORKLOADS.filter((item) => options.steps.includes(item));
  const etcd = clusters.find((cluster) => cluster.protocol === 'etcd');
  const conclave = clusters.find((cluster) => cluster.protocol === 'consul');
  return {
    date: date.toISOString(),
    machine: machineInfo(tmpdir()),
    versions: { node: process.version, etcd: etcd?.version ?? 'not run', conclave: conclave?.version ?? 'not run' },
    options: {
      quick: options.quick, concurrency: options.concurrency, valueBytes: options.valueBytes, keySpace: options.keySpace,
      warmupSeconds: options.warmupSeconds, durationSeconds: options.durationSeconds, rounds: options.rounds,
      failoverTrials: options.failoverTrials, conclave: options.conclave, workloads: options.steps,
      swarm: `${options.swarm.sessions} sessions, TTL ${options.swarm.ttlSeconds}s, key rewrite every ${options.swarm.updateIntervalMs} ms, ${options.swarm.watchers} watchers`,
      dataDir: dataParent,
    },
    clusters: clusters.map((cluster) => ({ name: cluster.name, version: cluster.version, settings: cluster.settings })),
    ceilings,
    loads,
    failover,
    summary: summarize(loads, workloads),
    elapsedSeconds: Math.round((performance.now() - startedMs) / 1000),
  };
}

function writeResults(results: BenchResults, outDir: string): void {
  const markdown = renderMarkdown(results);
  mkdirSync(outDir, { recursive: true });
  const stamp = results.date.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const base = join(outDir, `bench-${stamp}`);
  writeFileSync(`${base}.md`, markdown);
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(markdown);
  log(`wrote ${base}.md and ${base}.json`);
}

await main();
