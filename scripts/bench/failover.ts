import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchCluster } from './bench-cluster.js';
import { consulTarget } from './consul-target.js';
import { etcdTarget } from './etcd-target.js';
import { benchKey, Xorshift32 } from './load.js';
import { round } from './measure-window.js';
import { stampedValue } from './target.js';
import type { KvTarget } from './target.js';

/**
 * Leader failover under write load: closed-loop PUTs spread over every member, SIGKILL the
 * leader, and time from the kill until the first successful write *sent after* it (a write
 * sent before could have been committed by the old leader already). Besides the load, probes
 * are sent open-loop every PROBE_INTERVAL_MS after the kill, so some write is always arriving
 * when the new leader is ready (see oneTrial). Writers that meet a refused connection move to
 * the next member and pause `ERROR_BACKOFF_MS`, as a client with several endpoints would.
 * Between trials the killed member is restarted and the cluster must be healthy again.
 */

/** Options of a failover run. */
export interface FailoverOptions {
  readonly cluster: BenchCluster;
  readonly trials: number;
  readonly concurrency: number;
  readonly valueBytes: number;
  /** Load before the kill, so the kill lands on a busy leader. */
  readonly loadBeforeKillMs: number;
  /** A trial with no successful write this long after the kill counts as failed. */
  readonly trialTimeoutMs: number;
  readonly healthyTimeoutMs: number;
}

/** Per-target failover figures; percentiles are nearest-rank over the trials (with 10 trials, p99 is the worst). */
export interface FailoverReport {
  readonly target: string;
  readonly trials: number;
  readonly failedTrials: number;
  readonly samplesMs: readonly number[];
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly minMs: number | null;
  readonly maxMs: number | null;
  /** Errors seen by writers across all trials, by kind: expected during the election. */
  readonly errorKinds: Readonly<Record<string, number>>;
}

/** The load writers' pool and the probes' own pool. */
interface TrialTargets {
  readonly load: KvTarget;
  readonly probe: KvTarget;
}

/** One probe write this often after the kill: the resolution of a failover time. */
const PROBE_INTERVAL_MS = 20;
/** Probes a server may be holding at once (~10 s of probes at PROBE_INTERVAL_MS). */
const PROBES_IN_FLIGHT_MAX = 500;
/** How long stopped writers get to finish before the member restarts anyway. */
const STOP_GRACE_MS = 5_000;
/** Pause after a failed write, so refused connections do not spin the CPU the election needs. */
const ERROR_BACKOFF_MS = 10;
const TRIALS_MAX = 100;
/** Keys the failover writers spread over. */
const FAILOVER_KEY_SPACE = 1000;

/** Nearest-rank percentile of a sorted, non-empty array. */
export function nearestRank(sorted: readonly number[], percent: number): number {
  const value = sorted[Math.max(0, Math.ceil((percent / 100) * sorted.length) - 1)];
  if (value === undefined) throw new Error('no samples');
  return value;
}

/** Runs the trials on a cluster that supports failover. */
export async function runFailover(options: FailoverOptions): Promise<FailoverReport> {
  const { cluster } = options;
  if (!cluster.supportsFailover) throw new Error(`${cluster.name} has no leader to kill`);
  if (!(options.trials >= 1 && options.trials <= TRIALS_MAX)) throw new Error(`trials must be 1..${TRIALS_MAX}`);
  const makeTarget = (connections: number): KvTarget => {
    const endpoints = { urls: cluster.clientUrls, connections, watchConnections: 1 };
    return cluster.protocol === 'etcd' ? etcdTarget(endpoints) : consulTarget(endpoints);
  };
  // Separate pools: a probe must never queue behind a load request the servers are holding.
  const targets: TrialTargets = { load: makeTarget(options.concurrency), probe: makeTarget(PROBES_IN_FLIGHT_MAX) };
  const samplesMs: number[] = [];
  const errorKinds = new Map<string, number>();
  let failedTrials = 0;
  try {
    for (let trial = 0; trial < options.trials; trial++) {
      await cluster.waitHealthy(options.healthyTimeoutMs);
      const sample = await oneTrial(options, targets, trial, errorKinds);
      if (sample === undefined) failedTrials++;
      else samplesMs.push(sample);
    }
    await cluster.waitHealthy(options.healthyTimeoutMs);
  } finally {
    await Promise.all([targets.load.close(), targets.probe.close()]);
  }
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const percentile = (percent: number): number | null => (sorted.length === 0 ? null : round(nearestRank(sorted, percent)));
  return {
    target: cluster.name,
    trials: options.trials,
    failedTrials,
    samplesMs: samplesMs.map(round),
    p50Ms: percentile(50),
    p99Ms: percentile(99),
    minMs: sorted[0] === undefined ? null : round(sorted[0]),
    maxMs: percentile(100),
    errorKinds: Object.fromEntries(errorKinds),
  };
}

/** One kill; returns ms from the kill to the first successful write sent after it, or undefined. */
async function oneTrial(options: FailoverOptions, targets: TrialTargets, trial: number, errorKinds: Map<string, number>): Promise<number | undefined> {
  const { cluster } = options;
  const { load, probe } = targets;
  let killedAtMs = Number.POSITIVE_INFINITY;
  let firstSuccessMs: number | undefined;
  let stopping = false;
  const succeeded = (startedMs: number, endedMs: number): void => {
    if (startedMs >= killedAtMs && (firstSuccessMs === undefined || endedMs < firstSuccessMs)) firstSuccessMs = endedMs;
  };
  const failed = (error: string): void => {
    errorKinds.set(error, (errorKinds.get(error) ?? 0) + 1);
  };
  const writer = async (index: number): Promise<void> => {
    const random = new Xorshift32(trial * 1009 + index + 1);
    let endpoint = index % load.endpointCount;
    while (!stopping) {
      const startedMs = performance.now();
      const result = await load.put(endpoint, benchKey(random.below(FAILOVER_KEY_SPACE)), stampedValue(options.valueBytes, startedMs));
      if (result.ok) {
        succeeded(startedMs, performance.now());
        continue;
      }
      failed(result.error);
      if (result.error.startsWith('network:')) endpoint = (endpoint + 1) % load.endpointCount;
      await sleep(ERROR_BACKOFF_MS);
    }
  };
  // Open-loop probes after the kill: one write every PROBE_INTERVAL_MS, round-robin over the
  // members, never waiting for the previous one. Closed-loop writers alone would measure how
  // long a server holds a request it cannot serve (etcd fails a proposal made while there is no
  // leader only after its 7 s request timeout), not when the cluster takes writes again.
  let probesInFlight = 0;
  const prober = async (): Promise<void> => {
    for (let sent = 0; !stopping; sent++) {
      if (probesInFlight < PROBES_IN_FLIGHT_MAX) {
        probesInFlight++;
        const startedMs = performance.now();
        void probe.put(sent % probe.endpointCount, benchKey(sent % FAILOVER_KEY_SPACE), stampedValue(options.valueBytes, startedMs)).then((result) => {
          probesInFlight--;
          if (result.ok) succeeded(startedMs, performance.now());
          else failed(`probe:${result.error}`);
        });
      }
      await sleep(PROBE_INTERVAL_MS);
    }
  };
  const writers = Array.from({ length: options.concurrency }, async (_, index) => writer(index));
  await sleep(options.loadBeforeKillMs);
  const leader = await cluster.leaderMember();
  if (leader !== undefined) {
    killedAtMs = performance.now();
    await cluster.killMember(leader);
    const probing = prober();
    const deadlineMs = killedAtMs + options.trialTimeoutMs;
    while (firstSuccessMs === undefined && performance.now() < deadlineMs) await sleep(5);
    stopping = true;
    await probing;
  }
  stopping = true;
  await Promise.race([Promise.all(writers), sleep(STOP_GRACE_MS)]);
  if (leader !== undefined) await cluster.restartMember(leader);
  return firstSuccessMs === undefined ? undefined : firstSuccessMs - killedAtMs;
}
