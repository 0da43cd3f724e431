import { writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkIndexes, checkLeaders, checkLocks, checkRegister, checkSet, checkWatches, countOps, finalValues, showsFinalState } from './checks.js';
import type { IndexCheck, LeaderCheck, LockCheck, RegisterCheck, SetCheck, WatchCheck } from './checks.js';
import { FaultCluster, RaftMonitor } from './fault-cluster.js';
import type { FaultClusterOptions } from './fault-cluster.js';
import { History } from './history.js';
import type { OpRecord } from './history.js';
import { decodeValue, delay, httpCall, parseEntries } from './http-ops.js';
import { Nemesis } from './nemesis.js';
import type { FaultKind } from './nemesis.js';
import { FencedResource, lockClient, registerClient, setClient, setPrefix, watchClient, watchSpec } from './workloads.js';
import type { LockOptions, RegisterOptions, RegisterShared, WatchOptions, WatchStop, WorkloadContext } from './workloads.js';

/**
 * One Jepsen-style Tier 2 run: a FaultCluster, the register/set/lock workloads through all
 * servers with watchers on the register keys, the nemesis, then heal, quiet, final reads on every
 * server, a loghash comparison, the watchers' convergence on the final values, and every check.
 * Writes results/<run>/history.jsonl, summary.json (RELIABILITY.md "Figures"), and on a
 * violation the checker's report and the agents' logs.
 */
export interface RunOptions extends FaultClusterOptions {
  readonly name: string;
  readonly timeS: number;
  readonly faults: readonly FaultKind[];
  readonly seed: number;
  readonly registerClients?: number;
  readonly setClients?: number;
  readonly lockClients?: number;
  /** Watchers of the register keys (blocking queries), pinned round-robin to the servers; default 4 with register clients, else 0. */
  readonly watchClients?: number;
  readonly watch?: Partial<WatchOptions>;
  /** How long watchers may take, after the final reads and the loghash comparison, to show the final values. */
  readonly watchConvergeS?: number;
  /** Paused leaders may serve stale default reads (Consul's caveat): count them, do not fail. */
  readonly defaultReadsMayBeStale?: boolean;
  readonly nemesisIntervalMs?: readonly [number, number];
  readonly nemesisHoldMs?: readonly [number, number];
  /** Restart servers that crash on their own (failpoints). */
  readonly supervise?: boolean;
  readonly register?: Partial<RegisterOptions>;
  readonly lock?: Partial<LockOptions>;
  /** Where results go; default `results/` under the working directory. */
  readonly resultsRoot?: string;
  /** Quiet seconds after the last fault before the final reads. */
  readonly quietS?: number;
  /** Keep the servers' data dirs for a post-mortem when a check fails (default true). */
  readonly keepDataOnFailure?: boolean;
  /** Let the caller act during the run (positive controls drive their own faults). */
  readonly during?: (fc: FaultCluster, history: History, stop: { done: boolean }) => Promise<void>;
}

export interface RunResult {
  readonly name: string;
  readonly dir: string;
  readonly summary: RunSummary;
  readonly register: RegisterCheck | null;
  readonly set: SetCheck | null;
  readonly lock: LockCheck | null;
  readonly watch: WatchCheck | null;
  readonly indexes: IndexCheck;
  readonly leaders: LeaderCheck;
  /** Human lines naming every must-be-0 figure that is not 0. */
  readonly problems: string[];
}

/** summary.json: the must-be-0 figures and the reported ones. */
export interface RunSummary {
  readonly run: string;
  readonly servers: number;
  readonly seconds: number;
  readonly mustBeZero: Record<string, number>;
  readonly reported: Record<string, unknown>;
}

const DEFAULT_REGISTER: RegisterOptions = { keys: 4, keyEvery: 300, timeoutMs: 5000, thinkMs: 40, readModes: ['default', 'default', 'consistent', 'consistent', 'stale'] };
const DEFAULT_LOCK: LockOptions = { keys: 2, ttlS: 10, lockDelayS: 2, timeoutMs: 5000, destroyChance: 0.15, holdMs: 100 };
/** wait=5s as RELIABILITY.md's watch workload; the timeout clears Consul's longest hold (5 s × 1.0625) with room for a slow box. */
const DEFAULT_WATCH: WatchOptions = { waitS: 5, timeoutMs: 8000 };

function watchClientCount(options: RunOptions): number {
  return options.watchClients ?? ((options.registerClients ?? 10) > 0 ? 4 : 0);
}

export function resultsDir(name: string, root = resolve('results')): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return join(root, `${name}-${stamp}`);
}

export async function runJepsen(options: RunOptions): Promise<RunResult> {
  const dir = resultsDir(options.name, options.resultsRoot);
  mkdirSync(dir, { recursive: true });
  const fc = await FaultCluster.create(options);
  const history = new History(dir);
  const runId = `${options.name}-${options.seed.toString(36)}-${Date.now().toString(36)}`;
  const monitor = new RaftMonitor(fc, () => history.now());
  const nemesis = new Nemesis(fc, history, {
    kinds: options.faults,
    intervalMs: options.nemesisIntervalMs ?? [2000, 4000],
    holdMs: options.nemesisHoldMs ?? [2000, 5000],
    seed: options.seed,
  });
  const resource = new FencedResource();
  const registerOptions = { ...DEFAULT_REGISTER, ...(options.register ?? {}) };
  const lockOptions = { ...DEFAULT_LOCK, ...(options.lock ?? {}) };
  const watchOptions = { ...DEFAULT_WATCH, ...(options.watch ?? {}) };
  const watchStop: WatchStop = { done: false, abort: new AbortController() };
  const watchers: Promise<void>[] = [];
  let watchFailure: unknown = null;
  let ok = false;
  try {
    fc.startAll();
    await fc.settle(90_000);
    history.event('start', { servers: fc.names, faults: options.faults, seed: options.seed });
    monitor.start();
    if (options.supervise === true) nemesis.startSupervisor();
    const stop = { done: false };
    const context: WorkloadContext = { history, dispatcher: fc.dispatcher, url: (node) => fc.url(node), runId, stop };
    const clients: Promise<void>[] = [];
    const shared: RegisterShared = { ops: 0 };
    let proc = 0;
    const nodeFor = (): string => fc.names[proc % fc.names.length] as string;
    for (let k = 0; k < (options.registerClients ?? 10); k++, proc++) clients.push(registerClient(context, `r${k}`, nodeFor(), options.seed * 1000 + proc, registerOptions, shared));
    for (let k = 0; k < (options.setClients ?? 2); k++, proc++) clients.push(setClient(context, `s${k}`, nodeFor(), options.seed * 1000 + proc, { timeoutMs: 5000, thinkMs: 40 }));
    for (let k = 0; k < (options.lockClients ?? 4); k++, proc++) clients.push(lockClient(context, `l${k}`, nodeFor(), options.seed * 1000 + proc, lockOptions, resource));
    // Watchers outlive the other clients (they must converge), so they have their own stop; a
    // watcher that throws (an answer that is not its query's) fails the run at the end.
    for (let w = 0; w < watchClientCount(options); w++, proc++) {
      const node = fc.names[w % fc.names.length] as string;
      watchers.push(watchClient(context, `w${w}`, node, options.seed * 1000 + proc, watchSpec(w, registerOptions.keys), watchOptions, { shared, keyEvery: registerOptions.keyEvery }, watchStop)
        .catch((error: unknown) => {
          watchFailure ??= error;
        }));
    }
    const nemesisStop = { done: false };
    const nemesisDone = nemesis.run(nemesisStop);
    const duringDone = options.during?.(fc, history, nemesisStop) ?? Promise.resolve();
    await delay(options.timeS * 1000);
    nemesisStop.done = true;
    await nemesisDone;
    await duringDone;
    // The supervisor keeps restarting crashed servers through the final reads: failpoints stay armed.
    await nemesis.heal();
    fc.startAll();
    history.event('healed', {});
    // Writes must resume (P7) and the cluster go quiet before the final reads.
    await delay((options.quietS ?? 5) * 1000);
    stop.done = true;
    await Promise.all(clients);
    monitor.stop();
    const leader = await fc.settle(90_000);
    history.event('final', { leader });
    await finalRegisterReads(fc, history);
    const finalSet = await finalSetReads(fc, runId);
    const hashes = await fc.compareLogHashes(60_000);
    history.event('loghash', hashes);
    await awaitWatchConvergence(history, watchers.length, (options.watchConvergeS ?? 15) * 1000);
    await stopWatchers(watchStop, watchers);
    if (watchFailure !== null) throw watchFailure;
    await history.close();
    const result = evaluate(options, dir, history, finalSet, hashes, monitor, nemesis, resource, lockOptions, fc.names.length);
    ok = result.problems.length === 0;
    if (!ok) keepLogs(fc, dir);
    return result;
  } finally {
    await stopWatchers(watchStop, watchers);
    monitor.stop();
    nemesis.stopSupervisor();
    await fc.destroy(!ok && options.keepDataOnFailure !== false);
  }
}

/** A `?consistent` GET of every register key on every server, added to the history. */
async function finalRegisterReads(fc: FaultCluster, history: History): Promise<void> {
  const keys = [...new Set(history.ops.filter((op) => op.f === 'read' || op.f === 'write' || op.f === 'cas' || op.f === 'delete').map((op) => op.key))];
  for (const node of fc.names) {
    for (const key of keys) {
      const op = history.invoke(`final-${node}`, 'read', key, null, node, 'consistent');
      const result = await httpCall(fc.dispatcher, `${fc.url(node)}/v1/kv/${key}?consistent`, 'GET', null, 10_000);
      if (result.kind !== 'reply' || (result.status !== 200 && result.status !== 404)) {
        history.complete(op, 'fail', result.kind === 'reply' ? { status: result.status, body: result.body } : { body: result.message });
        continue;
      }
      const entry = result.status === 200 ? parseEntries(result.body)?.[0] : undefined;
      history.complete(op, 'ok', { status: result.status, body: result.body, index: entry?.ModifyIndex ?? null, value: entry === undefined ? null : decodeValue(entry.Value) });
    }
  }
}

/**
 * Waits (at most `timeoutMs`) until every watcher's last answer shows the final `?consistent`
 * state of its query. The writers stopped and the servers agree on one state, so a watcher that
 * has not shown it yet is either blocked with an older index (and wakes at once) or backing off.
 */
async function awaitWatchConvergence(history: History, watchers: number, timeoutMs: number): Promise<void> {
  if (watchers === 0) return;
  const finals = finalValues(history.ops);
  const deadline = history.now() + timeoutMs;
  const converged = (proc: string): boolean => {
    let query: string | null = null;
    for (let k = history.ops.length - 1; k >= 0; k--) {
      const op = history.ops[k] as OpRecord;
      if (op.f !== 'watch' || op.proc !== proc) continue;
      query ??= op.key;
      if (op.type === 'ok') return op.key === query && showsFinalState(op, finals);
    }
    return false;
  };
  while (history.now() < deadline) {
    if (Array.from({ length: watchers }, (_, w) => `w${w}`).every(converged)) return;
    await delay(50);
  }
}

/** Stops the watchers and cancels their blocking GETs in flight. */
async function stopWatchers(stop: WatchStop, watchers: readonly Promise<void>[]): Promise<void> {
  stop.done = true;
  stop.abort.abort();
  await Promise.all(watchers);
}

async function finalSetReads(fc: FaultCluster, runId: string): Promise<Map<string, Set<string>>> {
  const result = new Map<string, Set<string>>();
  for (const node of fc.names) {
    const reply = await httpCall(fc.dispatcher, `${fc.url(node)}/v1/kv/${setPrefix(runId)}?recurse&consistent`, 'GET', null, 30_000);
    if (reply.kind !== 'reply' || (reply.status !== 200 && reply.status !== 404)) throw new Error(`final set read on ${node} failed: ${reply.kind === 'reply' ? `${reply.status} ${reply.body}` : reply.message}`);
    result.set(node, new Set(reply.status === 404 ? [] : (parseEntries(reply.body) ?? []).map((entry) => entry.Key)));
  }
  return result;
}

function evaluate(options: RunOptions, dir: string, history: History, finalSet: Map<string, Set<string>>, hashes: { index: number; hashes: Record<string, string> },
  monitor: RaftMonitor, nemesis: Nemesis, resource: FencedResource, lockOptions: LockOptions, servers: number): RunResult {
  const ops = history.ops;
  const hasRegister = (options.registerClients ?? 10) > 0;
  const hasSet = (options.setClients ?? 2) > 0;
  const hasLock = (options.lockClients ?? 4) > 0;
  const register = hasRegister ? checkRegister(ops, dir, { defaultReadsMayBeStale: options.defaultReadsMayBeStale ?? false }) : null;
  const set = hasSet ? checkSet(ops, finalSet) : null;
  const lock = hasLock ? checkLocks(ops, { ttlMs: lockOptions.ttlS * 1000, lockDelayMs: lockOptions.lockDelayS * 1000, resourceStale: resource.stale }) : null;
  const watch = watchClientCount(options) > 0 ? checkWatches(ops, history.nemesis, { defaultReadsMayBeStale: options.defaultReadsMayBeStale ?? false }) : null;
  const indexes = checkIndexes(ops);
  const leaders = checkLeaders(monitor.samples);
  const distinctHashes = new Set(Object.values(hashes.hashes)).size;
  const lost = set === null ? 0 : Math.max(0, ...Object.values(set.lost).map((l) => l.length));
  const unexpected = set === null ? 0 : Math.max(0, ...Object.values(set.unexpected).map((l) => l.length));
  const mustBeZero: Record<string, number> = {
    linearizabilityAnomalies: register === null ? 0 : register.verdict === 'ok' ? 0 : 1,
    staleModeReadsOfUnwrittenValues: register?.staleModeUnwritten ?? 0,
    indexConflicts: indexes.conflicts.length,
    acknowledgedWritesLost: lost,
    notAppliedWritesPresent: unexpected,
    lockL1: lock?.l1.length ?? 0,
    lockL2: lock?.l2.length ?? 0,
    lockEarlyTtlExpiry: lock?.earlyExpiry.length ?? 0,
    lockL3StaleTokens: lock?.l3 ?? 0,
    watchIndexRegressions: watch?.regressions.length ?? 0,
    watchMissingIndex: watch?.missingIndex.length ?? 0,
    watchUnwrittenValues: watch?.unwritten.length ?? 0,
    watchIndexMismatches: watch?.indexMismatches.length ?? 0,
    watchersNotConverged: watch?.notConverged.length ?? 0,
    twoLeadersInATerm: leaders.conflicts.length,
    stateHashMismatch: distinctHashes > 1 ? 1 : 0,
  };
  const writeGap = longestWriteGap(ops);
  const recovery = recoveryAfterLeaderKills(ops, history.nemesis);
  const reported: Record<string, unknown> = {
    seed: options.seed,
    opsByType: countOps(ops),
    opsChecked: register?.checked ?? {},
    indeterminate: (register?.indeterminate ?? 0) + (set?.indeterminate ?? 0),
    faults: { ...nemesis.counts, failpointCrashes: nemesis.crashes },
    staleDefaultReads: register?.staleDefaultReads ?? 0,
    staleModeReads: register?.staleModeReads ?? 0,
    unfencedOverlaps: lock?.unfencedOverlaps ?? 0,
    lockHolds: lock?.holds ?? 0,
    lockInvalidations: lock?.invalidations ?? 0,
    lockAcquires: lock?.acquires ?? {},
    watch: watch === null ? null : {
      watchers: watch.watchers,
      responses: watch.responses,
      unanswered: watch.unanswered,
      regressionsAfterRestart: watch.regressionsAfterRestart,
      staleDefaultRegressions: watch.staleDefaultRegressions,
      converged: `${watch.converged}/${watch.watchers}`,
      convergeMsMax: watch.convergeMsMax,
      acknowledgedWritesWatched: watch.acknowledgedWrites,
      wakeup: watch.wakeup,
      wakeupByLayout: watch.wakeupByLayout,
    },
    setAcknowledged: set?.acknowledged ?? 0,
    setIndeterminatePresent: set?.recovered ?? 0,
    longestWindowWithoutAcknowledgedWriteMs: Math.round(writeGap),
    writeRecoveryAfterLeaderKillMs: recovery,
    leaderChanges: leaders.leaderChanges,
    termsSeen: leaders.terms,
    finalAppliedIndex: hashes.index,
    checkerMs: register?.checkerMs ?? 0,
    checkerSteps: register?.checkerSteps ?? 0,
    checkerKeys: register?.keys ?? 0,
    checkerHeapMB: Math.round(process.memoryUsage().heapUsed / 1e6),
  };
  const summary: RunSummary = { run: options.name, servers, seconds: options.timeS, mustBeZero, reported };
  writeFileSync(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const problems: string[] = [];
  for (const [figure, value] of Object.entries(mustBeZero)) if (value !== 0) problems.push(`${figure} = ${value}`);
  if (register?.reportText != null) problems.push(register.reportText.split('\n').slice(0, 40).join('\n'));
  problems.push(...indexes.conflicts.slice(0, 5), ...leaders.conflicts.slice(0, 5));
  if (set !== null) for (const [node, keys] of Object.entries(set.lost)) if (keys.length > 0) problems.push(`${node} lost ${keys.length}: ${keys.slice(0, 5).join(', ')}`);
  if (set !== null) for (const [node, keys] of Object.entries(set.unexpected)) if (keys.length > 0) problems.push(`${node} has ${keys.length} not-applied adds: ${keys.slice(0, 5).join(', ')}`);
  if (lock !== null) problems.push(...lock.l1.slice(0, 5), ...lock.l2.slice(0, 5), ...lock.earlyExpiry.slice(0, 5));
  if (watch !== null) problems.push(...watch.regressions.slice(0, 5), ...watch.missingIndex.slice(0, 5), ...watch.unwritten.slice(0, 5), ...watch.indexMismatches.slice(0, 5), ...watch.notConverged.slice(0, 5));
  const onlyFigures = problems.length > 0 ? problems : [];
  return { name: options.name, dir, summary, register, set, lock, watch, indexes, leaders, problems: onlyFigures };
}

/** The longest time between two consecutive acknowledged writes (any workload), ms. */
export function longestWriteGap(ops: readonly OpRecord[]): number {
  const times = ops
    .filter((op) => (op.f === 'write' || op.f === 'cas' || op.f === 'add' || op.f === 'delete') && op.type === 'ok' && op.completeT !== null && !op.proc.startsWith('final'))
    .map((op) => op.completeT as number)
    .sort((a, b) => a - b);
  let gap = 0;
  for (let k = 1; k < times.length; k++) gap = Math.max(gap, (times[k] as number) - (times[k - 1] as number));
  return gap;
}

/** p50/p90/p99/max of one kind of kill's recovery times. */
export interface RecoveryFigures { readonly kills: number; readonly p50Ms: number | null; readonly p90Ms: number | null; readonly p99Ms: number | null; readonly maxMs: number | null }

/**
 * Leader recovery after kill -9, as clients see it: from each kill of the leader to the
 * acknowledgement of the first write sent after it, apart for `kill-leader` (the others elect at
 * once) and `kill-all` (includes the time every server stays down and restarts).
 */
export function recoveryAfterLeaderKills(ops: readonly OpRecord[], events: readonly { t: number; f: string; value: unknown }[]): Record<'killLeader' | 'killAll', RecoveryFigures> {
  const acks = ops
    .filter((op) => (op.f === 'write' || op.f === 'cas' || op.f === 'add' || op.f === 'delete') && op.type === 'ok' && op.completeT !== null && !op.proc.startsWith('final'))
    .sort((a, b) => (a.completeT as number) - (b.completeT as number));
  const figures = (wanted: string): RecoveryFigures => {
    const gaps: number[] = [];
    for (const event of events) {
      if (event.f !== 'kill' || (event.value as { kind?: string } | null)?.kind !== wanted) continue;
      // Sent after the kill: a write in flight at the kill may have committed before it.
      const next = acks.find((op) => op.invokeT > event.t);
      if (next !== undefined) gaps.push((next.completeT as number) - event.t);
    }
    gaps.sort((a, b) => a - b);
    const at = (q: number): number | null => (gaps.length === 0 ? null : Math.round(gaps[Math.min(gaps.length - 1, Math.ceil(q * gaps.length) - 1)] as number));
    return { kills: gaps.length, p50Ms: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), maxMs: at(1) };
  };
  return { killLeader: figures('kill-leader'), killAll: figures('kill-all') };
}

function keepLogs(fc: FaultCluster, dir: string): void {
  for (const agent of fc.cluster.agents) writeFileSync(join(dir, `${agent.name}.log`), agent.output);
  writeFileSync(join(dir, 'data-dirs.txt'), `${fc.cluster.root}\n`);
}
