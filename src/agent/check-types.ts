/**
 * The agent-local check and service registrations (Consul's structs.CheckType and the agent's
 * local state), shared by the HTTP layer that decodes them, the local state that keeps and
 * persists them, and the runners that execute them. Durations are whole milliseconds.
 */
import { assert } from '../lib/assert.js';
import type { HealthStatus } from '../state/commands.js';

/**
 * How a check gets its status:
 * - `ttl`: the application reports through `/v1/agent/check/pass|warn|fail|update`; no report
 *   within the TTL turns it critical;
 * - `http`, `tcp`, `script`: the agent runs it every interval;
 * - `maintenance`: the agent's own `_node_maintenance` / `_service_maintenance:<id>` checks.
 */
export type CheckKind = 'ttl' | 'http' | 'tcp' | 'script' | 'maintenance';

/** Every CheckKind, for validation of persisted registrations. */
export const CHECK_KINDS: readonly CheckKind[] = ['ttl', 'http', 'tcp', 'script', 'maintenance'];

/** A check as registered with this agent (what is persisted and what the runners execute). */
export interface CheckSpec {
  readonly checkId: string;
  readonly name: string;
  readonly notes: string;
  /** "" for a node-level check. */
  readonly serviceId: string;
  /** The status a new check starts in (Consul: critical unless the registration says otherwise). */
  readonly initialStatus: HealthStatus;
  readonly kind: CheckKind;
  /** `http` checks: the URL, method (default GET), headers, body and TLS verification. */
  readonly http: string;
  readonly method: string;
  readonly header: Readonly<Record<string, readonly string[]>>;
  readonly body: string;
  readonly tlsSkipVerify: boolean;
  /** `tcp` checks: `host:port`. */
  readonly tcp: string;
  /** `script` checks: the program and its arguments (Consul's `Args` / `ScriptArgs`). */
  readonly args: readonly string[];
  /** Runners: between the end of one run and the start of the next. */
  readonly intervalMs: number;
  /** Runners: one run's limit; 0 = the kind's default. */
  readonly timeoutMs: number;
  readonly ttlMs: number;
  /** 0 = never; otherwise the check's service is deregistered once critical this long. */
  readonly deregisterCriticalServiceAfterMs: number;
  /** Output kept per run (bytes); 0 = CHECK_OUTPUT_BYTES_DEFAULT. */
  readonly outputMaxBytes: number;
}

/**
 * Consul's `checks.DefaultBufSize`: the output a check keeps by default (`output_max_size`).
 * Outputs travel in status reports and Raft commands, so they stay small.
 */
export const CHECK_OUTPUT_BYTES_DEFAULT = 4 * 1024;

/** The largest OutputMaxSize a registration may ask for: the report budget counts every check at its max. */
export const CHECK_OUTPUT_BYTES_MAX = 16 * 1024;

/** Consul's default timeout of HTTP and TCP checks. */
export const CHECK_TIMEOUT_MS_DEFAULT = 10_000;

/** Consul's default timeout of script checks. */
export const SCRIPT_CHECK_TIMEOUT_MS_DEFAULT = 30_000;

/**
 * The shortest interval a runner accepts. Consul's `MinInterval` is 1 s; faster checks are
 * raised to it with a warning. Lower here (tests run checks every few hundred ms), but bounded
 * so a registration cannot make the agent spin.
 */
export const CHECK_INTERVAL_MS_MIN = 100;

/** The byte length of `text` in UTF-8. */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * Cuts `text` to `bytesMax` UTF-8 bytes (on a character boundary), saying so as Consul's check
 * update does: `<first bytes> ... (captured N of M bytes)`.
 */
export function truncateOutput(text: string, bytesMax: number): string {
  assert(bytesMax > 0, 'an output limit is positive');
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.byteLength <= bytesMax) return text;
  // Decoding a cut in the middle of a character gives U+FFFD; drop it rather than keep half a character.
  const head = bytes.subarray(0, bytesMax).toString('utf8').replace(/\uFFFD+$/, '');
  return `${head} ... (captured ${bytesMax} of ${bytes.byteLength} bytes)`;
}

/** The output limit a check runs with. */
export function outputLimitOf(spec: Pick<CheckSpec, 'outputMaxBytes'>): number {
  return spec.outputMaxBytes > 0 ? Math.min(spec.outputMaxBytes, CHECK_OUTPUT_BYTES_MAX) : CHECK_OUTPUT_BYTES_DEFAULT;
}
