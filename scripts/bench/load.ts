import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { consulTarget } from './consul-target.js';
import { etcdTarget } from './etcd-target.js';
import type { LatencySummary } from './latency-histogram.js';
import { CpuMeter, MeasureWindow } from './measure-window.js';
import type { CpuSummary, WindowSummary } from './measure-window.js';
import { stampedValue } from './target.js';
import type { KvTarget, OpResult, ReadMode } from './target.js';
import { runSwarm } from './swarm-workload.js';
import type { SwarmOptions, SwarmSummary } from './swarm-workload.js';

/**
 * The closed-loop load generator: `concurrency` workers, each with one request in flight,
 * a warm-up, then a measured window of fixed duration (see MeasureWindow). A success is a
 * validated answer (status and body); anything else is counted by kind. Runs from the runner
 * or alone:
 *   node build/scripts/bench/load.js --protocol etcd --urls http://127.0.0.1:2379 --workload put
 */

/** Every workload; `get` is Consul's default read mode. */
export const WORKLOADS = ['put', 'get', 'get-consistent', 'get-stale', 'cas', 'mixed', 'swarm'] as const;
export type Workload = (typeof WORKLOADS)[number];

/** Options of one load run. */
export interface LoadOptions {
  readonly target: KvTarget;
  /** Label in the report: `conclave`, `etcd`, `fake-consul (stand-in)`, `noop`. */
  readonly targetName: string;
  readonly workload: Workload;
  readonly concurrency: number;
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  /** Keys `bench/key/000000` … written before the run so every read finds its key. */
  readonly keySpace: number;
  readonly valueBytes: number;
  /** Share of reads in `mixed` (default reads; the rest are PUTs). */
  readonly readRatio: number;
  readonly swarm: SwarmOptions;
  /** Server processes whose CPU is sampled over the window; empty when unknown. */
  readonly serverPids: readonly number[];
  /** The harness's other server processes (the cluster not under test), to tell their CPU apart. */
  readonly idlePids?: readonly number[];
  /** Pause after a failed operation; 0 in throughput runs, > 0 where failures are expected (failover). */
  readonly errorBackoffMs: number;
  readonly seed: number;
  /** The keys were written already (tests that break the server after writing them). */
  readonly skipPrefill?: boolean;
}

/** Defaults: concurrency 64 and 100-byte values are the figures the team's targets are set at. */
export const LOAD_DEFAULTS = {
  concurrency: 64,
  warmupSeconds: 2,
  durationSeconds: 5,
  keySpace: 1000,
  valueBytes: 100,
  readRatio: 0.9,
  errorBackoffMs: 0,
  seed: 1,
} as const;

/** The JSON report of one run. */
export interface LoadReport extends WindowSummary {
  readonly target: string;
  readonly protocol: KvTarget['protocol'];
  readonly workload: Workload;
  readonly concurrency: number;
  readonly valueBytes: number;
  readonly keySpace: number;
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  readonly cas: { readonly successes: number; readonly conflicts: number } | null;
  readonly mixed: { readonly readRatio: number; readonly reads: number; readonly writes: number } | null;
  readonly swarm: SwarmSummary | null;
  readonly cpu: CpuSummary;
  /** Operations still unanswered a grace period after the window closed. */
  readonly stragglers: number;
}

/** Bounds on options: beyond them the harness itself, not the server, would be measured. */
const CONCURRENCY_MAX = 4096;
const KEY_SPACE_MAX = 1_000_000;
const VALUE_BYTES_MAX = 512 * 1024; // Consul's kv_max_value_size
/** How long to wait for in-flight requests after the window before reporting them as stragglers. */
const STRAGGLER_GRACE_MS = 5_000;
/** Prefill writes in flight at once. */
const PREFILL_CONCURRENCY = 32;

/** Checks the relations between options once, before anything is sent. */
export function validateLoadOptions(options: LoadOptions): void {
  const fail = (why: string): never => { throw new Error(`load options: ${why}`); };
  if (!(Number.isInteger(options.concurrency) && options.concurrency >= 1 && options.concurrency <= CONCURRENCY_MAX)) fail(`concurrency must be 1..${CONCURRENCY_MAX}`);
  if (!(Number.isInteger(options.keySpace) && options.keySpace >= 1 && options.keySpace <= KEY_SPACE_MAX)) fail(`key space must be 1..${KEY_SPACE_MAX}`);
  if (!(Number.isInteger(options.valueBytes) && options.valueBytes >= 1 && options.valueBytes <= VALUE_BYTES_MAX)) fail(`value bytes must be 1..${VALUE_BYTES_MAX}`);
  if (!(options.durationSeconds > 0)) fail('duration must be positive');
  if (!(options.warmupSeconds >= 0)) fail('warm-up must not be negative');
  if (!(options.readRatio >= 0 && options.readRatio <= 1)) fail('read ratio must be in [0, 1]');
  if (!WORKLOADS.includes(options.workload)) fail(`unknown workload ${String(options.workload)}`);
}

/** The key of index `index` in the key space: fixed width, so every key has the same size. */
export function benchKey(index: number): string {
  return `bench/key/${String(index).padStart(6, '0')}`;
}

/** xorshift32: a small seeded generator, so two runs pick the same key sequence. */
export class Xorshift32 {
  #state: number;

  constructor(seed: number) {
    this.#state = (seed >>> 0) || 0x9e3779b9;
  }

  /** A float in [0, 1). */
  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return this.#state / 2 ** 32;
  }

  /** An integer in [0, bound). */
  below(bound: number): number {
    return Math.floor(this.next() * bound);
  }
}

/** Writes every key of the key space once, so reads and CAS find them; fails loudly. */
export async function prefillKeys(target: KvTarget, keySpace: number, valueBytes: number): Promise<void> {
  let next = 0;
  const failures: string[] = [];
  const writer = async (slot: number): Promise<void> => {
    while (next < keySpace && failures.length === 0) {
      const index = next++;
      const result = await target.put(slot % target.endpointCount, benchKey(index), stampedValue(valueBytes, 0));
      if (!result.ok) failures.push(`${benchKey(index)}: ${result.error}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PREFILL_CONCURRENCY, keySpace) }, async (_, slot) => writer(slot)));
  if (failures.length > 0) throw new Error(`prefill failed: ${failures.join(', ')}`);
}

/** Runs one workload against one target and reports it. */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  validateLoadOptions(options);
  if (options.workload === 'swarm') return runSwarmLoad(options);
  if (options.skipPrefill !== true) await prefillKeys(options.target, options.keySpace, options.valueBytes);
  const window = new MeasureWindow();
  const counters = { casSwapped: 0, casConflicts: 0, reads: 0, writes: 0 };
  const cpu = new CpuMeter(options.serverPids, options.idlePids ?? []);
  let stopping = false;
  let inFlight = 0;

  const worker = async (workerIndex: number): Promise<void> => {
    const random = new Xorshift32(options.seed * 7919 + workerIndex + 1);
    let endpoint = workerIndex % options.target.endpointCount;
    while (!stopping) {
      const key = benchKey(random.below(options.keySpace));
      const startedMs = performance.now();
      inFlight++;
      const outcome = await runOperation(options, endpoint, key, random);
      inFlight--;
      const endedMs = performance.now();
      if (window.record(startedMs, endedMs, outcome.result) && outcome.result.ok) {
        if (outcome.kind === 'cas-swapped') counters.casSwapped++;
        if (outcome.kind === 'cas-conflict') counters.casConflicts++;
        if (outcome.kind === 'read') counters.reads++;
        if (outcome.kind === 'write') counters.writes++;
      }
      if (!outcome.result.ok) {
        // A member that refuses connections is down: go to the next, as a multi-endpoint client would.
        if (outcome.result.error.startsWith('network:')) endpoint = (endpoint + 1) % options.target.endpointCount;
        if (options.errorBackoffMs > 0) await sleep(options.errorBackoffMs);
      }
    }
  };

  const workers = Array.from({ length: options.concurrency }, async (_, index) => worker(index));
  await sleep(options.warmupSeconds * 1000);
  window.open(options.durationSeconds * 1000);
  cpu.start();
  await sleep(options.durationSeconds * 1000);
  const cpuSummary = cpu.stop(window.successes, availableParallelism());
  stopping = true;
  await Promise.race([Promise.all(workers), sleep(STRAGGLER_GRACE_MS)]);
  return {
    ...header(options),
    ...window.summary(options.durationSeconds),
    cas: options.workload === 'cas' ? { successes: counters.casSwapped, conflicts: counters.casConflicts } : null,
    mixed: options.workload === 'mixed' ? { readRatio: options.readRatio, reads: counters.reads, writes: counters.writes } : null,
    swarm: null,
    cpu: cpuSummary,
    stragglers: inFlight,
  };
}

type OperationKind = 'read' | 'write' | 'cas-swapped' | 'cas-conflict' | 'failed';

const READ_MODES: Readonly<Partial<Record<Workload, ReadMode>>> = { 'get': 'default', 'get-consistent': 'consistent', 'get-stale': 'stale' };

async function runOperation(options: LoadOptions, endpoint: number, key: string, random: Xorshift32):
  Promise<{ kind: OperationKind; result: OpResult }> {
  const { target, valueBytes, workload } = options;
  const value = (): string => stampedValue(valueBytes, performance.now());
  const readMode = READ_MODES[workload];
  if (readMode !== undefined) return { kind: 'read', result: await target.get(endpoint, key, readMode, valueBytes) };
  switch (workload) {
    case 'put':
      return { kind: 'write', result: await target.put(endpoint, key, value()) };
    case 'cas': {
      const result = await target.cas(endpoint, key, value());
      if (!result.ok) return { kind: 'failed', result };
      return { kind: result.swapped ? 'cas-swapped' : 'cas-conflict', result: { ok: true } };
    }
    case 'mixed':
      if (random.next() < options.readRatio) return { kind: 'read', result: await target.get(endpoint, key, 'default', valueBytes) };
      return { kind: 'write', result: await target.put(endpoint, key, value()) };
    default:
      throw new Error(`not a key workload: ${workload}`);
  }
}

function header(options: LoadOptions): Pick<LoadReport, 'target' | 'protocol' | 'workload' | 'concurrency' | 'valueBytes' | 'keySpace' | 'warmupSeconds' | 'durationSeconds'> {
  return {
    target: options.targetName,
    protocol: options.target.protocol,
    workload: options.workload,
    concurrency: options.concurrency,
    valueBytes: options.valueBytes,
    keySpace: options.keySpace,
    warmupSeconds: options.warmupSeconds,
    durationSeconds: options.durationSeconds,
  };
}

async function runSwarmLoad(options: LoadOptions): Promise<LoadReport> {
  const cpu = new CpuMeter(options.serverPids, options.idlePids ?? []);
  const result = await runSwarm({
    target: options.target,
    swarm: options.swarm,
    valueBytes: options.valueBytes,
    concurrency: options.concurrency,
    warmupSeconds: options.warmupSeconds,
    durationSeconds: options.durationSeconds,
    onWindowOpen: () => cpu.start(),
    onWindowClose: (successes) => cpu.stop(successes, availableParallelism()),
  });
  return {
    ...header(options),
    ...result.window,
    cas: null,
    mixed: null,
    swarm: result.swarm,
    cpu: result.cpu,
    stragglers: result.stragglers,
  };
}

/** Summaries used by the CLI and tests when printing a latency line. */
export function latencyLine(latency: LatencySummary): string {
  return `p50 ${latency.p50Ms} ms, p90 ${latency.p90Ms} ms, p99 ${latency.p99Ms} ms, max ${latency.maxMs} ms`;
}

function cliArgument(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? undefined : process.argv[at + 1];
}

async function cli(): Promise<void> {
  const protocol = cliArgument('protocol') ?? 'consul';
  const urls = (cliArgument('urls') ?? 'http://127.0.0.1:8500').split(',');
  const concurrency = Number(cliArgument('concurrency') ?? LOAD_DEFAULTS.concurrency);
  const endpoints = { urls, connections: concurrency, watchConnections: 64 };
  const target = protocol === 'etcd' ? etcdTarget(endpoints) : consulTarget(endpoints);
  try {
    const report = await runLoad({
      target,
      targetName: cliArgument('name') ?? protocol,
      workload: (cliArgument('workload') ?? 'put') as Workload,
      concurrency,
      warmupSeconds: Number(cliArgument('warmup') ?? LOAD_DEFAULTS.warmupSeconds),
      durationSeconds: Number(cliArgument('duration') ?? LOAD_DEFAULTS.durationSeconds),
      keySpace: Number(cliArgument('key-space') ?? LOAD_DEFAULTS.keySpace),
      valueBytes: Number(cliArgument('value-bytes') ?? LOAD_DEFAULTS.valueBytes),
      readRatio: Number(cliArgument('read-ratio') ?? LOAD_DEFAULTS.readRatio),
      swarm: {
        sessions: Number(cliArgument('swarm-sessions') ?? 256),
        ttlSeconds: Number(cliArgument('swarm-ttl') ?? 10),
        updateIntervalMs: Number(cliArgument('swarm-update-ms') ?? 2000),
        watchers: Number(cliArgument('swarm-watchers') ?? 8),
      },
      serverPids: (cliArgument('server-pids') ?? '').split(',').filter((pid) => pid !== '').map(Number),
      errorBackoffMs: LOAD_DEFAULTS.errorBackoffMs,
      seed: Number(cliArgument('seed') ?? LOAD_DEFAULTS.seed),
    });
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await target.close();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await cli();
}
