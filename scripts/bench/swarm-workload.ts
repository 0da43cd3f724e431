import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { LatencyHistogram } from './latency-histogram.js';
import type { LatencySummary } from './latency-histogram.js';
import { MeasureWindow, round } from './measure-window.js';
import type { CpuSummary, WindowSummary } from './measure-window.js';
import { readStamp, stampedValue } from './target.js';
import type { KvTarget, OpResult } from './target.js';

/**
 * A Swarm-like workload (consul-api.md §8): every node holds a TTL session, renews it every
 * TTL/2 (consul/api RenewPeriodic), keeps its key `docker/swarm/nodes/<ip:port>` acquired with
 * that session and rewrites it periodically (the heartbeat), while managers watch the whole
 * directory with blocking queries (`?recurse&index=N&wait=15s`). This is an open loop on a
 * schedule, not a closed loop: renews/s is the offered rate, and what it measures is whether it
 * is served (errors, expired sessions), renew latency, and the watchers' wake-up latency: from
 * the moment a write is *sent* until a watcher holds its value.
 */

/** The directory Swarm's discovery writes under. */
export const SWARM_PREFIX = 'docker/swarm/nodes/';

/** Shape of the workload. */
export interface SwarmOptions {
  /** Nodes, each with one session and one key. */
  readonly sessions: number;
  /** Session TTL; Consul's minimum is 10 s (etcd's lease minimum is lower). */
  readonly ttlSeconds: number;
  /** Each node rewrites its key this often (Swarm: every 60 s; compressed here to load watchers). */
  readonly updateIntervalMs: number;
  /** Concurrent blocking watchers on the directory (Swarm managers). */
  readonly watchers: number;
}

/** Defaults for the runner: 256 nodes → ~51 renews/s and 128 key writes/s, 8 watchers. */
export const SWARM_DEFAULTS: SwarmOptions = { sessions: 256, ttlSeconds: 10, updateIntervalMs: 2_000, watchers: 8 };

const SESSIONS_MAX = 10_000;
const WATCHERS_MAX = 1_000;
/** How long every watcher has to be established before the load starts anyway. */
const WATCH_READY_TIMEOUT_MS = 10_000;
/** The renew and update loops give up waiting for answers after this, like the load's stragglers. */
const STRAGGLER_GRACE_MS = 5_000;

/** The Swarm part of a report. */
export interface SwarmSummary {
  readonly sessions: number;
  readonly ttlSeconds: number;
  readonly renewIntervalMs: number;
  readonly updateIntervalMs: number;
  readonly watchers: number;
  /** Sessions or keys that could not be created before the run (their nodes are left out). */
  readonly setupErrors: number;
  readonly renews: WindowSummary;
  readonly updates: WindowSummary;
  /** Wake-ups that brought at least one new value, over all watchers. */
  readonly wakeups: number;
  /** One sample per (watcher, new value) delivered inside the window. */
  readonly wakeLatencyMs: LatencySummary;
  readonly watcherErrors: number;
  readonly watcherErrorKinds: Readonly<Record<string, number>>;
}

/** Everything runSwarm() needs from the load generator. */
export interface SwarmRunOptions {
  readonly target: KvTarget;
  readonly swarm: SwarmOptions;
  readonly valueBytes: number;
  /** Bounds the set-up and clean-up requests in flight. */
  readonly concurrency: number;
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  readonly onWindowOpen: () => void;
  readonly onWindowClose: (successes: number) => CpuSummary;
}

/** The node key of node `index`: an ip:port, as Swarm advertises. */
export function swarmNodeKey(index: number): string {
  return `${SWARM_PREFIX}10.${(index >> 16) & 0xff}.${(index >> 8) & 0xff}.${index & 0xff}:2375`;
}

/** Runs `task` over 0..count-1 with at most `limit` in flight. */
async function forEachLimited(count: number, limit: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, count)) }, lane));
}

interface Node {
  readonly index: number;
  readonly sessionId: string;
}

/** Creates a session and acquires its node key, for every node; failures are counted, not fatal. */
async function setUpNodes(options: SwarmRunOptions): Promise<{ nodes: Node[]; setupErrors: number }> {
  const { target, swarm } = options;
  const nodes: Node[] = [];
  let setupErrors = 0;
  await forEachLimited(swarm.sessions, options.concurrency, async (index) => {
    const endpoint = index % target.endpointCount;
    const session = await target.createSession(endpoint, swarm.ttlSeconds);
    if (!session.ok) {
      setupErrors++;
      return;
    }
    const acquired = await target.acquire(endpoint, swarmNodeKey(index), session.id, stampedValue(options.valueBytes, 0));
    if (!acquired.ok) setupErrors++;
    else nodes.push({ index, sessionId: session.id });
  });
  return { nodes, setupErrors };
}

/** Runs the workload: set-up, watchers, warm-up, measured window, clean-up. */
export async function runSwarm(options: SwarmRunOptions):
  Promise<{ window: WindowSummary; swarm: SwarmSummary; cpu: CpuSummary; stragglers: number }> {
  const { target, swarm } = options;
  if (!(swarm.sessions >= 1 && swarm.sessions <= SESSIONS_MAX)) throw new Error(`swarm sessions must be 1..${SESSIONS_MAX}`);
  if (!(swarm.watchers >= 0 && swarm.watchers <= WATCHERS_MAX)) throw new Error(`swarm watchers must be 0..${WATCHERS_MAX}`);
  if (!(swarm.ttlSeconds > 0 && swarm.updateIntervalMs > 0)) throw new Error('swarm TTL and update interval must be positive');
  await target.deletePrefix(0, SWARM_PREFIX);
  const { nodes, setupErrors } = await setUpNodes(options);

  const all = new MeasureWindow();
  const renews = new MeasureWindow();
  const updates = new MeasureWindow();
  const watchers = new WatcherGroup(target, swarm.watchers, all);
  await watchers.start();

  const renewIntervalMs = (swarm.ttlSeconds * 1000) / 2; // consul/api RenewPeriodic: TTL/2
  const stop = new AbortController(); // wakes the schedules from their sleep at the end
  setMaxListeners(2 * nodes.length + 16, stop.signal); // one listener per sleeping schedule, on purpose
  let inFlight = 0;
  const scheduled = async (offsetMs: number, intervalMs: number, operation: () => Promise<OpResult>, window: MeasureWindow): Promise<void> => {
    let dueMs = performance.now() + offsetMs;
    while (!stop.signal.aborted) {
      await sleep(Math.max(0, dueMs - performance.now()), undefined, { signal: stop.signal }).catch(() => undefined);
      if (stop.signal.aborted) return;
      const startedMs = performance.now();
      inFlight++;
      const result = await operation();
      inFlight--;
      const endedMs = performance.now();
      window.record(startedMs, endedMs, result);
      all.record(startedMs, endedMs, result);
      dueMs += intervalMs;
    }
  };
  // Spread the nodes evenly over one interval, so the rate is smooth rather than a burst.
  const loops = nodes.flatMap((node, position) => {
    const phase = position / nodes.length;
    const endpoint = node.index % target.endpointCount;
    return [
      scheduled(phase * renewIntervalMs, renewIntervalMs, async () => target.renewSession(endpoint, node.sessionId), renews),
      scheduled(phase * swarm.updateIntervalMs, swarm.updateIntervalMs,
        async () => target.acquire(endpoint, swarmNodeKey(node.index), node.sessionId, stampedValue(options.valueBytes, performance.now())), updates),
    ];
  });

  await sleep(options.warmupSeconds * 1000);
  const durationMs = options.durationSeconds * 1000;
  for (const window of [all, renews, updates, watchers.window]) window.open(durationMs);
  options.onWindowOpen();
  await sleep(durationMs);
  const cpu = options.onWindowClose(all.successes);
  stop.abort();
  await Promise.race([Promise.all(loops), sleep(STRAGGLER_GRACE_MS)]);
  const stragglers = inFlight;
  await watchers.stop();
  await forEachLimited(nodes.length, options.concurrency, async (position) => {
    const node = nodes[position];
    if (node !== undefined) await target.destroySession(node.index % target.endpointCount, node.sessionId);
  });
  await target.deletePrefix(0, SWARM_PREFIX);

  const seconds = options.durationSeconds;
  const watcherSummary = watchers.window.summary(seconds);
  return {
    window: all.summary(seconds),
    swarm: {
      sessions: nodes.length,
      ttlSeconds: swarm.ttlSeconds,
      renewIntervalMs: round(renewIntervalMs),
      updateIntervalMs: swarm.updateIntervalMs,
      watchers: swarm.watchers,
      setupErrors,
      renews: renews.summary(seconds),
      updates: updates.summary(seconds),
      wakeups: watchers.wakeups,
      wakeLatencyMs: watchers.wakeLatency.summary(),
      watcherErrors: watcherSummary.errors,
      watcherErrorKinds: watcherSummary.errorKinds,
    },
    cpu,
    stragglers,
  };
}

/** The blocking watchers, their wake-up latency and their errors. */
class WatcherGroup {
  readonly #target: KvTarget;
  readonly #count: number;
  readonly #all: MeasureWindow;
  readonly #abort = new AbortController();
  readonly window = new MeasureWindow();
  readonly wakeLatency = new LatencyHistogram();
  #loops: Promise<void>[] = [];
  wakeups = 0;

  constructor(target: KvTarget, count: number, all: MeasureWindow) {
    this.#target = target;
    this.#count = count;
    this.#all = all;
  }

  /** Starts every watcher and waits (bounded) until each is established. */
  async start(): Promise<void> {
    setMaxListeners(4 * this.#count + 16, this.#abort.signal); // each watcher's request and back-off listen
    let ready = 0;
    for (let index = 0; index < this.#count; index++) {
      this.#loops.push(this.#target.watchPrefix(index % this.#target.endpointCount, SWARM_PREFIX, {
        onReady: () => { ready++; },
        onChanges: (values, receivedAtMs) => this.#onChanges(values, receivedAtMs),
        onError: (error) => {
          // Errors count when they happen inside the window: a watcher has no "operation start".
          const now = performance.now();
          if (this.window.contains(now, now)) {
            this.window.countError(error);
            this.#all.countError(`watch:${error}`);
          }
        },
      }, this.#abort.signal));
    }
    const deadline = performance.now() + WATCH_READY_TIMEOUT_MS;
    while (ready < this.#count && performance.now() < deadline) await sleep(20);
    if (ready < this.#count) this.window.countError('watch:not-ready');
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.race([Promise.all(this.#loops), sleep(STRAGGLER_GRACE_MS)]);
  }

  #onChanges(values: readonly string[], receivedAtMs: number): void {
    let counted = false;
    for (const value of values) {
      const sentAtMs = readStamp(value);
      // Only writes sent inside the window and delivered inside it: no warm-up samples.
      if (sentAtMs === undefined || !this.window.contains(sentAtMs, receivedAtMs)) continue;
      this.wakeLatency.recordMs(receivedAtMs - sentAtMs);
      counted = true;
    }
    if (counted) this.wakeups++;
  }
}
