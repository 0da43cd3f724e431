import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchCluster } from './bench-cluster.js';
import { median } from './bench-report.js';
import { optionValue } from './cli-options.js';
import { CONCLAVE_MAIN_DEFAULT, startConclaveCluster } from './conclave.js';
import { LOAD_DEFAULTS, WORKLOADS } from './load.js';
import type { LoadReport, Workload } from './load.js';
import { installExitHandlers } from './processes.js';

/**
 * Concurrent A/B of two Conclave builds, or of one build under two sets of Node options. Both
 * clusters run at once and every round loads both at the same moment, each from its own load
 * generator process, so the machine's speed drift (sequential runs of one build move ±15–25 %
 * here) cancels out of the ratio B ÷ A. A build against itself reads 0.98–1.02. Both sides share
 * the cores, so the absolute numbers are about half a lone run's: compare ratios only.
 *   node build/scripts/bench/ab.js [--a <main.js>] [--b <main.js>] [--a-node-args "<opts>"] [--b-node-args "<opts>"]
 *     [--servers 3|1] [--workload put] [--rounds 4] [--duration 10] [--warmup 2] [--concurrency 64]
 */

/** One side: the `main.js` it runs and the Node options it runs with. */
export interface AbSide {
  readonly main: string;
  readonly nodeArgs: readonly string[];
}

export interface AbOptions {
  readonly a: AbSide;
  readonly b: AbSide;
  readonly workload: Workload;
  readonly rounds: number;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  readonly concurrency: number;
}

/** What one load generator ran: its report and when its process started and exited (ms, performance.now). */
export interface AbLoad {
  readonly report: LoadReport;
  readonly startedMs: number;
  readonly endedMs: number;
}

export interface AbRound {
  readonly a: AbLoad;
  readonly b: AbLoad;
  /** B's ops/s ÷ A's. */
  readonly ratio: number;
}

export interface AbResult {
  readonly rounds: readonly AbRound[];
  readonly medianRatio: number;
  readonly medianCpuPerThousand: { readonly a: number | null; readonly b: number | null };
}

/** Starts one side's cluster; the tests pass one that starts the stand-in. */
export type StartSide = (side: AbSide) => Promise<BenchCluster>;

const LOAD_MAIN = fileURLToPath(new URL('./load.js', import.meta.url));
/** A load report is a few kB; anything near this is not one. */
const LOAD_OUTPUT_MAX = 16 * 1024 * 1024;

/** Runs the load generator CLI in its own process against `cluster` and parses its JSON report. */
function loadInChild(cluster: BenchCluster, name: string, options: AbOptions): Promise<AbLoad> {
  const args = [
    LOAD_MAIN, '--urls', cluster.clientUrls.join(','), '--workload', options.workload, '--name', name,
    '--duration', String(options.durationSeconds), '--warmup', String(options.warmupSeconds),
    '--concurrency', String(options.concurrency), '--server-pids', cluster.pids().join(','),
  ];
  const startedMs = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const collect = (into: Buffer[]) => (chunk: Buffer): void => {
      size += chunk.length;
      if (size > LOAD_OUTPUT_MAX) {
        child.kill('SIGKILL');
        return;
      }
      into.push(chunk);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    child.once('error', reject);
    child.once('close', (code) => {
      const endedMs = performance.now();
      if (code !== 0) {
        reject(new Error(`load generator for ${name} exited with ${String(code)}: ${Buffer.concat(err).toString('utf8').slice(-2000)}`));
        return;
      }
      try {
        resolve({ report: JSON.parse(Buffer.concat(out).toString('utf8')) as LoadReport, startedMs, endedMs });
      } catch (error) {
        reject(new Error(`load generator for ${name}: no JSON report (${String(error)})`));
      }
    });
  });
}

/** Starts both clusters, runs the rounds, stops both. */
export async function runAb(options: AbOptions, start: StartSide, log: (line: string) => void = () => undefined): Promise<AbResult> {
  const clusters: BenchCluster[] = [];
  const rounds: AbRound[] = [];
  try {
    clusters.push(await start(options.a));
    clusters.push(await start(options.b));
    const [a, b] = clusters as [BenchCluster, BenchCluster];
    for (let round = 0; round < options.rounds; round++) {
      const [loadA, loadB] = await Promise.all([loadInChild(a, 'A', options), loadInChild(b, 'B', options)]);
      const ratio = loadB.report.opsPerSecond / loadA.report.opsPerSecond;
      rounds.push({ a: loadA, b: loadB, ratio });
      log(`round ${round + 1}: A ${sideLine(loadA.report)} | B ${sideLine(loadB.report)} | B/A ${ratio.toFixed(3)}`);
    }
  } finally {
    await Promise.all(clusters.map(async (cluster) => cluster.stop()));
  }
  const cpu = (pick: (round: AbRound) => AbLoad): number | null => {
    const values = rounds.map((round) => pick(round).report.cpu.serverCpuMsPerThousandOps).filter((value): value is number => value !== null);
    return values.length === 0 ? null : median(values);
  };
  return {
    rounds,
    medianRatio: median(rounds.map((round) => round.ratio)),
    medianCpuPerThousand: { a: cpu((round) => round.a), b: cpu((round) => round.b) },
  };
}

function sideLine(report: LoadReport): string {
  const cpu = report.cpu.serverCpuMsPerThousandOps;
  return `${Math.round(report.opsPerSecond)} ops/s, p99 ${report.latencyMs.p99Ms} ms, errors ${report.errors}, server CPU ${cpu === null ? '-' : cpu.toFixed(1)} ms/1k`;
}

function parseOptions(argv: readonly string[]): AbOptions & { readonly servers: 1 | 3 } {
  const value = (name: string): string | undefined => optionValue(argv, name, name.endsWith('node-args'));
  const number = (name: string, fallback: number, integer: boolean): number => {
    const text = value(name);
    const parsed = text === undefined ? fallback : Number(text);
    if (!Number.isFinite(parsed) || parsed < 0 || (integer && !Number.isInteger(parsed))) throw new Error(`--${name}: not a valid number: ${text}`);
    return parsed;
  };
  const nodeArgs = (name: string): string[] => (value(name) ?? '').split(' ').filter((part) => part !== '');
  const workload = value('workload') ?? 'put';
  if (!(WORKLOADS as readonly string[]).includes(workload)) throw new Error(`unknown workload ${workload}; known: ${WORKLOADS.join(',')}`);
  const servers = number('servers', 3, true);
  if (servers !== 1 && servers !== 3) throw new Error('--servers is 1 or 3');
  const rounds = number('rounds', 4, true);
  if (rounds < 1) throw new Error('--rounds must be at least 1');
  const durationSeconds = number('duration', 10, false);
  if (durationSeconds === 0) throw new Error('--duration must be above 0');
  return {
    a: { main: value('a') ?? CONCLAVE_MAIN_DEFAULT, nodeArgs: nodeArgs('a-node-args') },
    b: { main: value('b') ?? CONCLAVE_MAIN_DEFAULT, nodeArgs: nodeArgs('b-node-args') },
    workload: workload as Workload,
    rounds,
    durationSeconds,
    warmupSeconds: number('warmup', LOAD_DEFAULTS.warmupSeconds, false),
    concurrency: number('concurrency', LOAD_DEFAULTS.concurrency, true),
    servers,
  };
}

async function cli(): Promise<void> {
  installExitHandlers();
  const options = parseOptions(process.argv.slice(2));
  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  const describe = (side: AbSide): string => `${side.main}${side.nodeArgs.length === 0 ? '' : ` (node ${side.nodeArgs.join(' ')})`}`;
  log(`A: ${describe(options.a)}\nB: ${describe(options.b)}\n${options.servers} server(s), ${options.workload}, c=${options.concurrency}, ${options.rounds} rounds of ${options.durationSeconds} s`);
  const result = await runAb(options, async (side) => startConclaveCluster({ main: side.main, nodeArgs: side.nodeArgs, servers: options.servers }), log);
  const cpu = (value: number | null): string => (value === null ? '-' : value.toFixed(1));
  log(`B/A median ${result.medianRatio.toFixed(3)} (all: ${result.rounds.map((round) => round.ratio.toFixed(3)).join(' ')}); server CPU ms/1k ops: A ${cpu(result.medianCpuPerThousand.a)}, B ${cpu(result.medianCpuPerThousand.b)}`);
  process.stdout.write(`${JSON.stringify({ medianRatio: result.medianRatio, medianCpuPerThousand: result.medianCpuPerThousand, ratios: result.rounds.map((round) => round.ratio) })}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await cli();
}
