import { request } from 'undici';

/**
 * What the runner needs from a cluster it started: where its members listen, their PIDs (for
 * CPU accounting), and the controls the failover test uses. Implemented by `etcd.ts`
 * (3 etcd members) and `conclave.ts` (3 Conclave servers, or the single-process stand-in).
 */
export interface BenchCluster {
  /** Label in reports: `etcd`, `conclave`, `fake-consul (stand-in)`. */
  readonly name: string;
  readonly protocol: 'consul' | 'etcd';
  /** Version string recorded in the report. */
  readonly version: string;
  /** Non-default or notable settings, for the report. */
  readonly settings: Readonly<Record<string, string>>;
  /** One client (HTTP) URL per member, in member order. */
  readonly clientUrls: readonly string[];
  /** Whether it has a leader to kill (the stand-in does not). */
  readonly supportsFailover: boolean;
  /** PIDs of the live members. */
  pids(): number[];
  /** Index of the current leader, or undefined when none is known. */
  leaderMember(): Promise<number | undefined>;
  /** SIGKILL one member and wait for it to exit. */
  killMember(member: number): Promise<void>;
  /** Start a killed member again with its data dir. */
  restartMember(member: number): Promise<void>;
  /** Resolves when every member is up and agrees on a leader; throws after `timeoutMs`. */
  waitHealthy(timeoutMs: number): Promise<void>;
  /** Stops every member it started and removes its data dirs. */
  stop(): Promise<void>;
}

/** Control-plane requests (health, leader) fail fast: they must not hang a trial. */
const CONTROL_TIMEOUT_MS = 2_000;

/** A small request for cluster control, answering status and text; throws on transport errors. */
export async function controlRequest(url: string, method: 'GET' | 'PUT' | 'POST', body?: string): Promise<{ status: number; text: string }> {
  const response = await request(url, {
    method,
    ...(body === undefined ? {} : { body }),
    headersTimeout: CONTROL_TIMEOUT_MS,
    bodyTimeout: CONTROL_TIMEOUT_MS,
  });
  return { status: response.statusCode, text: await response.body.text() };
}
