import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BenchCluster } from './bench-cluster.js';
import { summarize } from './bench-report.js';
import { optionValue } from './cli-options.js';
import { CONCLAVE_MAIN_DEFAULT, conclaveVersion, startConclaveCluster, startFakeConsulCluster } from './conclave.js';
import { consulTarget } from './consul-target.js';
import { etcdVersion, startEtcdCluster } from './etcd.js';
import { etcdTarget } from './etcd-target.js';
import { LOAD_DEFAULTS, runLoad } from './load.js';
import type { LoadReport } from './load.js';
import { machineInfo } from './machine.js';
import { CpuMeter } from './measure-window.js';
import type { CpuSummary } from './measure-window.js';
import { installExitHandlers } from './processes.js';
import { conclaveSubject, etcdSubject, runMillion } from './scale-million.js';
import type { MillionReport, MillionSubject } from './scale-million.js';
import { renderScaleMarkdown } from './scale-report.js';
import type { ScaleResults, WatchBatchResult } from './scale-report.js';
import { runWatchBatch, WATCHERS_MAX } from './scale-watchers.js';
import { SWARM_DEFAULTS } from './swarm-workload.js';

/**
 * The three scale targets of issue 7 that the side-by-side runner (run.ts) does not measure:
 * - `single`: the single-server dev agent (`agent -dev -data-dir`, fsync on) against a
 *   single-member etcd with the cluster's flags: PUT, closed loop, interleaved rounds, medians,
 *   ratio (target ≥ 3×);
 * - `million`: N keys (1,000,000) loaded into the 3-server cluster with transactions, each
 *   member's RSS (target < 1 GiB), then SIGKILL a follower, and the whole cluster, and time the
 *   restart until ready (target < 10 s); the same for etcd unless `--million-targets conclave`;
 *   with `watchers` also selected, one watcher batch runs on the loaded cluster;
 * - `watchers`: W (1,000) concurrent watchers on one prefix, spread over the 3 members, and a
 *   write under it: time from the write's send and acknowledgement to each watcher's wake-up
 *   (target 10 ms); batches interleaved (conclave, etcd, …), plus one batch against the
 *   stand-in as the floor of this load generator.
 * Writes `results/bench-scale-<date>.md` and `.json` and prints the Markdown.
 *   node build/scripts/bench/scale.js [--steps single,million,watchers] [--targets conclave,etcd]
 *     [--rounds 3] [--duration 5] [--warmup 2] [--concurrency 64] [--value-bytes 100] [--key-space 1000]
 *     [--keys 1000000] [--txn-ops 64] [--txn-in-flight 8] [--million-targets conclave,etcd]
 *     [--watchers 1000] [--writes 10] [--watch-rounds 3] [--settle-ms 1000] [--no-floor] [--watch-stale]
 *     [--conclave-main build/src/main.js] [--out-dir results]
 * 1,000 watchers hold ~2,000 sockets on loopback: `ulimit -n` must be well above that (4096+).
 */

const STEPS = ['single', 'million', 'watchers'] as const;
type Step = (typeof STEPS)[number];
type TargetName = 'conclave' | 'etcd';

/** Bounds: past them the harness, not the servers, would be measured (or the machine swap). */
const KEYS_MAX = 1_000_000; // benchKey() is six digits wide
/** Conclave accepts 128 operations per txn (Consul ≥ 1.14), Consul 1.10 64, etcd 128 (--max-txn-ops). */
const TXN_OPS_MAX = 128;
const TXN_IN_FLIGHT_MAX = 64;
const WRITES_MAX = 1_000;

interface ScaleOptions {
  readonly steps: readonly Step[];
  readonly targets: readonly TargetName[];
  readonly millionTargets: readonly TargetName[];
  readonly rounds: number;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  readonly concurrency: number;
  readonly valueBytes: number;
  readonly keySpace: number;
  readonly keys: number;
  readonly txnOps: number;
  readonly txnInFlight: number;
  readonly watchers: number;
  readonly writes: number;
  readonly watchRounds: number;
  readonly settleMs: number;
  readonly floor: boolean;
  /** A diagnostic Conclave batch with `&stale` watchers after each default one. */
  readonly watchStale: boolean;
  readonly conclaveMain: string;
  readonly outDir: string;
}

function parseList<T extends string>(text: string, known: readonly T[], what: string): T[] {
  const items = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
  for (const item of items) if (!(known as readonly string[]).includes(item)) throw new Error(`unknown ${what} ${item}; known: ${known.join(',')}`);
  return items as T[];
}

function parseOptions(argv: readonly string[]): ScaleOptions {
  const value = (name: string): string | undefined => optionValue(argv, name);
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const text = value(name);
    const parsed = text === undefined ? fallback : Number(text);
    if (!(Number.isInteger(parsed) && parsed >= min && parsed <= max)) throw new Error(`--${name} must be an integer in ${min}..${max}`);
    return parsed;
  };
  const seconds = (name: string, fallback: number): number => {
    const parsed = Number(value(name) ?? fallback);
    if (!(Number.isFinite(parsed) && parsed >= 0)) throw new Error(`--${name}: not a duration in seconds`);
    return parsed;
  };
  const targets = parseList(value('targets') ?? 'conclave,etcd', ['conclave', 'etcd'] as const, 'target');
  return {
    steps: parseList(value('steps') ?? STEPS.join(','), STEPS, 'step'),
    targets,
    millionTargets: parseList(value('million-targets') ?? targets.join(','), ['conclave', 'etcd'] as const, 'target'),
    rounds: integer('rounds', 3, 1, 100),
    durationSeconds: seconds('duration', LOAD_DEFAULTS.durationSeconds),
    warmupSeconds: seconds('warmup', LOAD_DEFAULTS.warmupSeconds),
    concurrency: integer('concurrency', LOAD_DEFAULTS.concurrency, 1, 4096),
    valueBytes: integer('value-bytes', LOAD_DEFAULTS.valueBytes, 32, 512 * 1024),
    keySpace: integer('key-space', LOAD_DEFAULTS.keySpace, 1, KEYS_MAX),
    keys: integer('keys', KEYS_MAX, 1, KEYS_MAX),
    txnOps: integer('txn-ops', 64, 1, TXN_OPS_MAX),
    txnInFlight: integer('txn-in-flight', 8, 1, TXN_IN_FLIGHT_MAX),
    watchers: integer('watchers', 1000, 1, WATCHERS_MAX),
    writes: integer('writes', 10, 1, WRITES_MAX),
    watchRounds: integer('watch-rounds', 3, 1, 100),
    settleMs: integer('settle-ms', 1000, 0, 60_000),
    floor: !argv.includes('--no-floor'),
    watchStale: argv.includes('--watch-stale'),
    conclaveMain: value('conclave-main') ?? CONCLAVE_MAIN_DEFAULT,
    outDir: resolve(value('out-dir') ?? 'results'),
  };
}

function log(message: string): void {
  process.stderr.write(`[scale ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** The 1-minute load average, rounded: what `uptime` shows first. */
function loadAverage(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}

/** Data dirs of a started cluster: `<data-dirs>/<name>-<n>`, as conclave.ts and etcd.ts lay them out. */
function dataDirsOf(cluster: BenchCluster, prefix: string): string[] {
  const root = cluster.settings['data-dirs'] ?? '';
  return cluster.clientUrls.map((_, index) => join(root, `${prefix}-${index + 1}`));
}

// ------------------------------------------------------------------------------------------
// single

async function runSingle(options: ScaleOptions, dataParent: string): Promise<LoadReport[]> {
  const clusters: BenchCluster[] = [];
  const loads: LoadReport[] = [];
  try {
    if (options.targets.includes('conclave')) {
      log('single: starting the dev agent (agent -dev -data-dir)');
      clusters.push(await startConclaveCluster({ main: options.conclaveMain, parentDir: dataParent, servers: 1 }));
    }
    if (options.targets.includes('etcd')) {
      log('single: starting a single-member etcd');
      clusters.push(await startEtcdCluster({ parentDir: dataParent, members: 1 }));
    }
    const targets = clusters.map((cluster) => {
      const endpoints = { urls: cluster.clientUrls, connections: options.concurrency, watchConnections: 1 };
      return { cluster, target: cluster.protocol === 'etcd' ? etcdTarget(endpoints) : consulTarget(endpoints) };
    });
    try {
      for (let round = 0; round < options.rounds; round++) {
        for (const { cluster, target } of targets) {
          const report = await runLoad({
            target, targetName: cluster.name, workload: 'put', concurrency: options.concurrency,
            warmupSeconds: options.warmupSeconds, durationSeconds: options.durationSeconds, keySpace: options.keySpace,
            valueBytes: options.valueBytes, readRatio: LOAD_DEFAULTS.readRatio, swarm: SWARM_DEFAULTS,
            serverPids: cluster.pids(), idlePids: clusters.filter((other) => other !== cluster).flatMap((other) => other.pids()),
            errorBackoffMs: 0, seed: round + 1,
          });
          log(`single put round ${round + 1} ${cluster.name}: ${report.opsPerSecond} ops/s, p99 ${report.latencyMs.p99Ms} ms, errors ${report.errors}, other CPU ${report.cpu.otherPercent ?? 'n/a'} %`);
          loads.push(report);
        }
      }
    } finally {
      await Promise.all(targets.map(async ({ target }) => target.close()));
    }
  } finally {
    await Promise.all(clusters.map(async (cluster) => cluster.stop()));
  }
  return loads;
}

// ------------------------------------------------------------------------------------------
// watchers

/** One batch with the servers' CPU over it, so a disturbed batch shows. */
async function watchBatch(label: string, cluster: BenchCluster, idle: readonly BenchCluster[], options: ScaleOptions, stale = false): Promise<WatchBatchResult> {
  const leader = await cluster.leaderMember();
  if (leader === undefined) throw new Error(`${cluster.name}: no leader for the watch batch`);
  const cpu = new CpuMeter(cluster.pids(), idle.flatMap((other) => other.pids()));
  const loadAverageAtStart = loadAverage();
  cpu.start();
  const report = await runWatchBatch({
    label, protocol: cluster.protocol, urls: cluster.clientUrls, writeEndpoint: leader,
    leaderEndpoint: leader,
    watchers: options.watchers, writes: options.writes, valueBytes: options.valueBytes, settleMs: options.settleMs, stale,
  });
  const cpuSummary: CpuSummary = cpu.stop(report.fromAck.count, availableParallelism());
  log(`watchers ${label}: wake from ack p50 ${report.fromAck.p50Ms} ms, p99 ${report.fromAck.p99Ms} ms, max ${report.fromAck.maxMs} ms; from send p99 ${report.fromSend.p99Ms} ms; missed ${report.missed}; other CPU ${cpuSummary.otherPercent ?? 'n/a'} %`);
  return { ...report, cpu: cpuSummary, loadAverageAtStart };
}

async function runWatchers(options: ScaleOptions, dataParent: string): Promise<WatchBatchResult[]> {
  const clusters: BenchCluster[] = [];
  const batches: WatchBatchResult[] = [];
  try {
    if (options.targets.includes('conclave')) {
      log('watchers: starting 3 Conclave servers');
      clusters.push(await startConclaveCluster({ main: options.conclaveMain, parentDir: dataParent }));
    }
    if (options.targets.includes('etcd')) {
      log('watchers: starting 3 etcd members');
      clusters.push(await startEtcdCluster({ parentDir: dataParent }));
    }
    for (let round = 0; round < options.watchRounds; round++) {
      for (const cluster of clusters) {
        const idle = clusters.filter((other) => other !== cluster);
        batches.push(await watchBatch(`${cluster.name} #${round + 1}`, cluster, idle, options));
        if (options.watchStale && cluster.protocol === 'consul') batches.push(await watchBatch(`${cluster.name} ?stale #${round + 1}`, cluster, idle, options, true));
      }
    }
  } finally {
    await Promise.all(clusters.map(async (cluster) => cluster.stop()));
  }
  if (options.floor) {
    log('watchers: the floor, against the stand-in (one in-memory process, no Raft)');
    const fake = await startFakeConsulCluster({ parentDir: dataParent });
    try {
      batches.push(await watchBatch('fake-consul (stand-in): floor', fake, [], options));
    } finally {
      await fake.stop();
    }
  }
  return batches;
}

// ------------------------------------------------------------------------------------------
// million

async function runMillionOn(target: TargetName, options: ScaleOptions, dataParent: string):
  Promise<{ report: MillionReport; batch: WatchBatchResult | null }> {
  log(`million: starting 3 ${target === 'etcd' ? 'etcd members' : 'Conclave servers'}`);
  const cluster = target === 'etcd'
    ? await startEtcdCluster({ parentDir: dataParent })
    : await startConclaveCluster({ main: options.conclaveMain, parentDir: dataParent });
  try {
    const subject: MillionSubject = target === 'etcd'
      ? etcdSubject(cluster, dataDirsOf(cluster, 'etcd'))
      : conclaveSubject(cluster, dataDirsOf(cluster, 'conclave'));
    const report = await runMillion(subject, {
      keys: options.keys, valueBytes: options.valueBytes, opsPerTxn: options.txnOps, txnInFlight: options.txnInFlight,
      settleMs: 5_000, log,
    });
    const batch = options.steps.includes('watchers')
      ? await watchBatch(`${cluster.name} with ${options.keys} keys`, cluster, [], options)
      : null;
    return { report, batch };
  } finally {
    await cluster.stop();
  }
}

// ------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  installExitHandlers();
  const startedMs = performance.now();
  const options = parseOptions(process.argv.slice(2));
  const date = new Date();
  const dataParent = mkdtempSync(join(tmpdir(), 'conclave-scale-'));
  const conditions: ScaleResults['conditions'] = [];
  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const atStart = loadAverage();
    const result = await run();
    conditions.push({ step: name, loadAverageAtStart: atStart, loadAverageAtEnd: loadAverage() });
    return result;
  };
  let single: ScaleResults['single'] = null;
  const million: MillionReport[] = [];
  const watchers: WatchBatchResult[] = [];
  let etcdSeen = '';
  try {
    if (options.steps.includes('single')) {
      const loads = await step('single', async () => runSingle(options, dataParent));
      single = { loads, summary: summarize(loads, ['put'])[0] ?? null };
    }
    if (options.steps.includes('million')) {
      for (const target of options.millionTargets) {
        const { report, batch } = await step(`million ${target}`, async () => runMillionOn(target, options, dataParent));
        million.push(report);
        if (batch !== null) watchers.push(batch);
      }
    }
    if (options.steps.includes('watchers')) {
      const batches = await step('watchers', async () => runWatchers(options, dataParent));
      watchers.push(...batches);
    }
    if (options.targets.includes('etcd') || options.millionTargets.includes('etcd')) etcdSeen = await etcdVersion();
  } finally {
    rmSync(dataParent, { recursive: true, force: true });
  }
  const results: ScaleResults = {
    date: date.toISOString(),
    machine: machineInfo(tmpdir()),
    versions: { node: process.version, etcd: etcdSeen === '' ? 'not run' : etcdSeen, conclave: conclaveVersion() },
    options: { ...options },
    conditions,
    single,
    million,
    watchers,
    elapsedSeconds: Math.round((performance.now() - startedMs) / 1000),
  };
  writeResults(results, options.outDir);
}

function writeResults(results: ScaleResults, outDir: string): void {
  const markdown = renderScaleMarkdown(results);
  mkdirSync(outDir, { recursive: true });
  const stamp = results.date.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const base = join(outDir, `bench-scale-${stamp}`);
  writeFileSync(`${base}.md`, markdown);
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(markdown);
  log(`wrote ${base}.md and ${base}.json`);
}

await main();
