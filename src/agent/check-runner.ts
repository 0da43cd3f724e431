/**
 * Runs the agent's interval checks (HTTP, TCP, script), as Consul's agent/checks package does,
 * with two bounds Consul leaves to goroutines:
 * - one check never runs twice at once: the next run is scheduled only when the current one has
 *   finished (interval = the pause between runs), and `#running` asserts it;
 * - at most `concurrentMax` runs at once over all checks; a check due while the agent is at the
 *   limit waits in a FIFO queue, where it appears at most once (so the queue is bounded by the
 *   number of checks).
 *
 * Results go to `onResult(checkId, status, output)`; a removed check's late result is dropped.
 * TTL and maintenance checks have no runner (the local state keeps their timers).
 */
import { spawn } from 'node:child_process';
import { STATUS_CODES } from 'node:http';
import { Socket } from 'node:net';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { assert, assertNever } from '../lib/assert.js';
import type { Logger } from '../lib/logger.js';
import type { HealthStatus } from '../state/commands.js';
import { CHECK_INTERVAL_MS_MIN, CHECK_TIMEOUT_MS_DEFAULT, SCRIPT_CHECK_TIMEOUT_MS_DEFAULT, outputLimitOf, truncateOutput } from './check-types.js';
import type { CheckSpec } from './check-types.js';

/** Runs at once over all checks: enough for hundreds of checks at a few seconds' interval. */
export const CHECK_RUNS_CONCURRENT_MAX = 32;

/** A check's status and output after one run. */
export interface CheckResult {
  readonly status: HealthStatus;
  readonly output: string;
}

/** Options of a runner. */
export interface CheckRunnerOptions {
  readonly onResult: (checkId: string, result: CheckResult) => void;
  readonly logger: Logger;
  /** Default CHECK_RUNS_CONCURRENT_MAX; tests lower it. */
  readonly concurrentMax?: number;
  /** Where in [0, 1) the first run falls within the first interval (Consul staggers checks); default random. */
  readonly stagger?: () => number;
}

interface Scheduled {
  readonly spec: CheckSpec;
  timer: NodeJS.Timeout | null;
  running: boolean;
  queued: boolean;
}

/** The interval checks of one agent. */
export class CheckRunner {
  readonly #checks = new Map<string, Scheduled>();
  readonly #queue: Scheduled[] = [];
  readonly #onResult: CheckRunnerOptions['onResult'];
  readonly #log: Logger;
  readonly #concurrentMax: number;
  readonly #stagger: () => number;
  /** HTTP checks without keep-alive (Consul disables it): a check must open its own connection. */
  readonly #dispatcher: Dispatcher = new Agent({ pipelining: 0, keepAliveTimeout: 1, connections: CHECK_RUNS_CONCURRENT_MAX });
  readonly #insecureDispatcher: Dispatcher = new Agent({ pipelining: 0, keepAliveTimeout: 1, connect: { rejectUnauthorized: false } });
  #active = 0;
  #maxActiveSeen = 0;
  #closed = false;

  constructor(options: CheckRunnerOptions) {
    this.#onResult = options.onResult;
    this.#log = options.logger;
    this.#concurrentMax = options.concurrentMax ?? CHECK_RUNS_CONCURRENT_MAX;
    this.#stagger = options.stagger ?? Math.random;
    assert(Number.isSafeInteger(this.#concurrentMax) && this.#concurrentMax > 0, 'concurrentMax is a positive integer');
  }

  /** Runs at once now (for tests and stats). */
  get activeRuns(): number {
    return this.#active;
  }

  /** The most runs ever at once (tests check the bound). */
  get maxActiveRuns(): number {
    return this.#maxActiveSeen;
  }

  /** Starts running an interval check (replacing a check with the same id). */
  add(spec: CheckSpec): void {
    assert(spec.kind === 'http' || spec.kind === 'tcp' || spec.kind === 'script', 'only interval checks have a runner');
    this.remove(spec.checkId);
    if (this.#closed) return;
    const scheduled: Scheduled = { spec, timer: null, running: false, queued: false };
    this.#checks.set(spec.checkId, scheduled);
    const first = Math.floor(this.#stagger() * intervalOf(spec));
    this.#schedule(scheduled, first);
  }

  /** Stops a check; a run in progress finishes but its result is dropped. */
  remove(checkId: string): void {
    const scheduled = this.#checks.get(checkId);
    if (scheduled === undefined) return;
    if (scheduled.timer !== null) clearTimeout(scheduled.timer);
    this.#checks.delete(checkId);
    const at = this.#queue.indexOf(scheduled);
    if (at >= 0) this.#queue.splice(at, 1);
  }

  /** Stops every check. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const id of [...this.#checks.keys()]) this.remove(id);
    await Promise.all([this.#dispatcher.close(), this.#insecureDispatcher.close()]);
  }

  #schedule(scheduled: Scheduled, delayMs: number): void {
    scheduled.timer = setTimeout(() => {
      scheduled.timer = null;
      this.#due(scheduled);
    }, delayMs);
    scheduled.timer.unref();
  }

  #due(scheduled: Scheduled): void {
    if (this.#checks.get(scheduled.spec.checkId) !== scheduled) return;
    if (this.#active >= this.#concurrentMax) {
      assert(!scheduled.queued, 'a check is queued at most once');
      scheduled.queued = true;
      this.#queue.push(scheduled);
      return;
    }
    void this.#run(scheduled);
  }

  async #run(scheduled: Scheduled): Promise<void> {
    assert(!scheduled.running, 'a check never runs twice at once');
    scheduled.running = true;
    this.#active++;
    this.#maxActiveSeen = Math.max(this.#maxActiveSeen, this.#active);
    let result: CheckResult;
    try {
      result = await this.#execute(scheduled.spec);
    } catch (error) {
      result = { status: 'critical', output: error instanceof Error ? error.message : String(error) };
    }
    scheduled.running = false;
    this.#active--;
    if (this.#checks.get(scheduled.spec.checkId) === scheduled && !this.#closed) {
      this.#onResult(scheduled.spec.checkId, { status: result.status, output: truncateOutput(result.output, outputLimitOf(scheduled.spec)) });
      this.#schedule(scheduled, intervalOf(scheduled.spec));
    }
    this.#drain();
  }

  #drain(): void {
    while (this.#active < this.#concurrentMax) {
      const next = this.#queue.shift();
      if (next === undefined) return;
      next.queued = false;
      if (this.#checks.get(next.spec.checkId) === next) void this.#run(next);
    }
  }

  #execute(spec: CheckSpec): Promise<CheckResult> {
    switch (spec.kind) {
      case 'http':
        return runHttpCheck(spec, spec.tlsSkipVerify ? this.#insecureDispatcher : this.#dispatcher);
      case 'tcp':
        return runTcpCheck(spec);
      case 'script':
        return runScriptCheck(spec, this.#log);
      case 'ttl':
      case 'maintenance':
        throw new Error(`${spec.kind} checks have no runner`);
      default:
        return assertNever(spec.kind, 'check kind');
    }
  }
}

function intervalOf(spec: CheckSpec): number {
  return Math.max(spec.intervalMs, CHECK_INTERVAL_MS_MIN);
}

function timeoutOf(spec: CheckSpec, fallbackMs: number): number {
  return spec.timeoutMs > 0 ? spec.timeoutMs : fallbackMs;
}

/**
 * Consul's CheckHTTP: 2xx is passing, 429 (Too Many Requests) warning, anything else critical;
 * the output is `HTTP <method> <url>: <status> <reason> Output: <body>`, the body read up to the
 * output limit and the rest discarded.
 */
export async function runHttpCheck(spec: CheckSpec, dispatcher: Dispatcher): Promise<CheckResult> {
  const method = spec.method === '' ? 'GET' : spec.method.toUpperCase();
  const timeoutMs = timeoutOf(spec, CHECK_TIMEOUT_MS_DEFAULT);
  const headers: Record<string, string | string[]> = { 'user-agent': 'Consul Health Check', accept: 'text/plain, text/*, */*' };
  for (const [name, values] of Object.entries(spec.header)) headers[name.toLowerCase()] = [...values];
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const response = await request(spec.http, {
      method: method as Dispatcher.HttpMethod, headers, body: spec.body === '' ? null : spec.body, dispatcher, signal,
      headersTimeout: timeoutMs, bodyTimeout: timeoutMs, reset: true,
    });
    const body = await readLimited(response.body, outputLimitOf(spec));
    const code = response.statusCode;
    const status: HealthStatus = code >= 200 && code <= 299 ? 'passing' : code === 429 ? 'warning' : 'critical';
    return { status, output: `HTTP ${method} ${spec.http}: ${code} ${STATUS_CODES[code] ?? ''} Output: ${body}` };
  } catch (error) {
    const reason = signal.aborted ? `request timed out after ${timeoutMs}ms` : errorText(error);
    return { status: 'critical', output: `${method.charAt(0)}${method.slice(1).toLowerCase()} "${spec.http}": ${reason}` };
  }
}

/** Reads at most `bytesMax` bytes of a body (as text) and discards the rest without buffering it. */
async function readLimited(body: AsyncIterable<Buffer> & { destroy(): void }, bytesMax: number): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    if (total < bytesMax) chunks.push(chunk.subarray(0, bytesMax - total));
    total += chunk.byteLength;
    if (total >= bytesMax * 4) {
      // Far past what is kept: stop reading a body that may never end.
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\uFFFD+$/, '');
}

/** Consul's CheckTCP: a connection within the timeout is passing, anything else critical. */
export function runTcpCheck(spec: CheckSpec): Promise<CheckResult> {
  const timeoutMs = timeoutOf(spec, CHECK_TIMEOUT_MS_DEFAULT);
  const colon = spec.tcp.lastIndexOf(':');
  const host = spec.tcp.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(spec.tcp.slice(colon + 1));
  return new Promise((resolve) => {
    const socket = new Socket();
    const finish = (result: CheckResult): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => finish({ status: 'critical', output: `dial tcp ${spec.tcp}: i/o timeout` }));
    socket.once('error', (error) => finish({ status: 'critical', output: `dial tcp ${spec.tcp}: ${errorText(error)}` }));
    socket.connect({ host: host === '' ? '127.0.0.1' : host, port }, () => finish({ status: 'passing', output: `TCP connect ${spec.tcp}: Success` }));
  });
}

/**
 * Consul's CheckMonitor with `Args`: exit 0 is passing, 1 warning, anything else critical; the
 * output is stdout and stderr together, kept up to the output limit. A run past its timeout is
 * killed and critical.
 */
export function runScriptCheck(spec: CheckSpec, log: Logger): Promise<CheckResult> {
  assert(spec.args.length > 0, 'a script check has a program');
  const timeoutMs = timeoutOf(spec, SCRIPT_CHECK_TIMEOUT_MS_DEFAULT);
  const bytesMax = outputLimitOf(spec);
  return new Promise((resolve) => {
    const [program, ...args] = spec.args as [string, ...string[]];
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let kept = 0;
    let total = 0;
    const keep = (chunk: Buffer): void => {
      total += chunk.byteLength;
      if (kept < bytesMax) {
        chunks.push(chunk.subarray(0, bytesMax - kept));
        kept += Math.min(chunk.byteLength, bytesMax - kept);
      }
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const output = (): string => {
      const text = Buffer.concat(chunks).toString('utf8');
      return total > kept ? `Captured ${kept} of ${total} bytes\n...\n${text}` : text;
    };
    child.once('error', (error) => {
      clearTimeout(timer);
      log.debug({ err: error, check: spec.checkId }, 'script check could not start');
      resolve({ status: 'critical', output: errorText(error) });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (timedOut) resolve({ status: 'critical', output: `Timed out (${timeoutMs}ms) running check` });
      else resolve({ status: code === 0 ? 'passing' : code === 1 ? 'warning' : 'critical', output: output() });
    });
  });
}

function errorText(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (code === 'ECONNREFUSED') return 'connect: connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'no such host';
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'i/o timeout';
  return error instanceof Error ? error.message : String(error);
}
