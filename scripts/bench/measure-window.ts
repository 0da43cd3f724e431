import { readFileSync } from 'node:fs';
import { LatencyHistogram } from './latency-histogram.js';
import type { LatencySummary } from './latency-histogram.js';
import type { OpResult } from './target.js';

/**
 * The measured part of a run: after the warm-up, for a fixed duration. Only operations that
 * *started* inside the window and *finished* before its end count, so neither the warm-up nor
 * the requests cut off at the end leak into the figures. Errors are counted by kind.
 */
export class MeasureWindow {
  #startMs = Number.POSITIVE_INFINITY;
  #endMs = Number.POSITIVE_INFINITY;
  readonly latency = new LatencyHistogram();
  readonly errorKinds = new Map<string, number>();
  successes = 0;
  errors = 0;

  /** Opens the window now; `durationMs` later it closes. */
  open(durationMs: number): void {
    this.#startMs = performance.now();
    this.#endMs = this.#startMs + durationMs;
  }

  get startMs(): number {
    return this.#startMs;
  }

  get endMs(): number {
    return this.#endMs;
  }

  /** Whether an interval [startedMs, endedMs] lies inside the window. */
  contains(startedMs: number, endedMs: number): boolean {
    return startedMs >= this.#startMs && endedMs <= this.#endMs;
  }

  /** Counts one operation; returns whether it was inside the window. */
  record(startedMs: number, endedMs: number, result: OpResult | { readonly ok: true } | { readonly ok: false; readonly error: string }): boolean {
    if (!this.contains(startedMs, endedMs)) return false;
    if (result.ok) {
      this.successes++;
      this.latency.recordMs(endedMs - startedMs);
    } else {
      this.countError(result.error);
    }
    return true;
  }

  /** Counts an error that is not tied to a timed operation (e.g. a watcher's failed poll). */
  countError(kind: string): void {
    this.errors++;
    this.errorKinds.set(kind, (this.errorKinds.get(kind) ?? 0) + 1);
  }

  /** Figures for the report; `seconds` is the nominal duration of the window. */
  summary(seconds: number): WindowSummary {
    return {
      successes: this.successes,
      errors: this.errors,
      errorKinds: Object.fromEntries([...this.errorKinds].sort((a, b) => b[1] - a[1])),
      opsPerSecond: round(this.successes / seconds),
      latencyMs: this.latency.summary(),
    };
  }
}

/** What a window reports. */
export interface WindowSummary {
  readonly successes: number;
  readonly errors: number;
  readonly errorKinds: Readonly<Record<string, number>>;
  readonly opsPerSecond: number;
  readonly latencyMs: LatencySummary;
}

/** Rounds to two decimals for the report. */
export function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Linux clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on every mainstream kernel). */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used so far, or undefined if it is gone or not on Linux. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const userTicks = Number(fields[11]); // field 14 of stat(5)
    const systemTicks = Number(fields[12]); // field 15
    if (!Number.isFinite(userTicks) || !Number.isFinite(systemTicks)) return undefined;
    return (userTicks + systemTicks) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Busy (not idle, not I/O-wait) CPU time of the whole machine so far, in seconds, from /proc/stat. */
export function machineBusyCpuSeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0] ?? '';
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
    if (ticks.length < 8 || ticks.some((value) => !Number.isFinite(value))) return undefined;
    const total = ticks.reduce((sum, value) => sum + value, 0);
    return (total - (ticks[3] ?? 0) - (ticks[4] ?? 0)) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** CPU use of the load generator itself, of the servers, and of everything else, over one window. */
export interface CpuSummary {
  /** This process (the load generator), percent of one core. */
  readonly loadGeneratorPercent: number;
  /** All server processes together, percent of one core (the machine has `cores` × 100). */
  readonly serversPercent: number | null;
  /** The harness's other processes (the idle cluster not under test), percent of one core. */
  readonly idleClusterPercent: number | null;
  /**
   * Busy CPU of the whole machine minus all of the above, percent of one core: other engineers'
   * builds and tests on this shared machine. A round with a high figure here is disturbed.
   */
  readonly otherPercent: number | null;
  /** Server CPU per 1,000 successful operations, in ms: efficiency that contention does not hide. */
  readonly serverCpuMsPerThousandOps: number | null;
  readonly cores: number;
}

/** Samples CPU at the start of a window and reports the difference at its end. */
export class CpuMeter {
  readonly #pids: readonly number[];
  readonly #idlePids: readonly number[];
  #startedMs = 0;
  #loadGeneratorStart: NodeJS.CpuUsage = process.cpuUsage();
  #serversStart: number | undefined;
  #idleStart: number | undefined;
  #machineStart: number | undefined;

  /** `pids`: the servers under test; `idlePids`: the harness's other servers, idle meanwhile. */
  constructor(pids: readonly number[], idlePids: readonly number[] = []) {
    this.#pids = pids;
    this.#idlePids = idlePids;
  }

  start(): void {
    this.#startedMs = performance.now();
    this.#loadGeneratorStart = process.cpuUsage();
    this.#serversStart = sumCpuSeconds(this.#pids);
    this.#idleStart = sumCpuSeconds(this.#idlePids);
    this.#machineStart = machineBusyCpuSeconds();
  }

  stop(successes: number, cores: number): CpuSummary {
    const elapsedSeconds = (performance.now() - this.#startedMs) / 1000;
    const own = process.cpuUsage(this.#loadGeneratorStart);
    const serverSeconds = difference(this.#serversStart, sumCpuSeconds(this.#pids));
    const idleSeconds = difference(this.#idleStart, sumCpuSeconds(this.#idlePids));
    const machineSeconds = difference(this.#machineStart, machineBusyCpuSeconds());
    const ownSeconds = (own.user + own.system) / 1e6;
    const otherSeconds = machineSeconds === undefined ? undefined : Math.max(0, machineSeconds - ownSeconds - (serverSeconds ?? 0) - (idleSeconds ?? 0));
    return {
      loadGeneratorPercent: round((ownSeconds / elapsedSeconds) * 100),
      serversPercent: serverSeconds === undefined ? null : round((serverSeconds / elapsedSeconds) * 100),
      idleClusterPercent: idleSeconds === undefined ? null : round((idleSeconds / elapsedSeconds) * 100),
      otherPercent: otherSeconds === undefined ? null : round((otherSeconds / elapsedSeconds) * 100),
      serverCpuMsPerThousandOps: serverSeconds === undefined || successes === 0 ? null : round((serverSeconds * 1e6) / successes),
      cores,
    };
  }
}

function difference(start: number | undefined, end: number | undefined): number | undefined {
  return start === undefined || end === undefined ? undefined : end - start;
}

/** Summed CPU seconds of processes; undefined if the list is empty or one has gone. */
function sumCpuSeconds(pids: readonly number[]): number | undefined {
  if (pids.length === 0) return undefined;
  let total = 0;
  for (const pid of pids) {
    const seconds = processCpuSeconds(pid);
    if (seconds === undefined) return undefined;
    total += seconds;
  }
  return total;
}
