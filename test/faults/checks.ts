import { join } from 'node:path';
import { consulKvModel, consulKvOutputFromHttp } from '../check/models.js';
import type { ConsulKvInput, ConsulKvOutput } from '../check/models.js';
import { checkOperations } from '../check/porcupine.js';
import type { Operation, Verdict } from '../check/porcupine.js';
import { writeViolationReport } from '../check/violation-report.js';
import type { NemesisEvent, OpRecord, ReadMode } from './history.js';

/**
 * The checks of a run (RELIABILITY.md B0 and "The checker"), over the History's operations:
 * - `checkRegister`: P1 with the Porcupine port and `consulKvModel`, per key. Default and
 *   `?consistent` GETs are in the history; `?stale` GETs are not (they may lag by design) and
 *   are only checked for reading written values. When `defaultReadsMayBeStale` (runs that pause
 *   the leader, Consul's documented caveat), a violation that disappears without the default
 *   GETs is counted as stale default reads instead of failing.
 * - `checkIndexes`: P3 across keys and modes — one ModifyIndex names one (key, value), and one
 *   value has one ModifyIndex.
 * - `checkSet`: P2 — every acknowledged add is in the final read (lost = 0); nothing that was
 *   definitely not applied is there (unexpected = 0: the outcome header told the truth).
 * - `checkLocks`: P4 — L1 (one holder at a time, LockIndex +1 per new holder, ModifyIndex
 *   rises), L2 (lock-delay after an invalidation), no early TTL expiry, L3 (fenced resource).
 * - `checkLeaders`: P6 as seen from outside — at most one leader per term (/v1/debug/raft).
 * - `checkWatches`: P5 — per watcher and server the X-Consul-Index never drops (only a restart
 *   of a `?stale` watcher's server may explain a drop; the rule is there), every (key, value,
 *   ModifyIndex) a watch showed was written and agrees with the reads, watchers converge on the
 *   final values; wake-up latency (reported).
 */

type KvOperation = Operation<ConsulKvInput, ConsulKvOutput>;

const REGISTER_FUNCTIONS = new Set(['read', 'write', 'cas', 'delete']);

function inputOf(op: OpRecord): ConsulKvInput {
  switch (op.f) {
    case 'read':
      return { op: 'get', key: op.key };
    case 'write':
      return { op: 'put', key: op.key, value: op.value ?? '' };
    case 'cas':
      return { op: 'put', key: op.key, value: op.value ?? '', cas: op.cas ?? 0 };
    case 'delete':
      return op.cas === null ? { op: 'delete', key: op.key } : { op: 'delete', key: op.key, cas: op.cas };
    default:
      throw new Error(`not a register operation: ${op.f}`);
  }
}

/** The checker's operation for a recorded one; null when it says nothing (a failed read). */
export function toKvOperation(op: OpRecord, clientIds: Map<string, number>): KvOperation | null {
  const input = inputOf(op);
  const isRead = input.op === 'get';
  if (isRead && op.type !== 'ok') return null;
  let clientId = clientIds.get(op.proc);
  if (clientId === undefined) {
    clientId = clientIds.size;
    clientIds.set(op.proc, clientId);
  }
  let output: ConsulKvOutput;
  if (op.type === 'fail' && op.status === null) output = { type: 'not-applied' }; // connection refused
  else if (op.type === null || op.status === null) output = { type: 'unknown' };
  else output = consulKvOutputFromHttp(input, { status: op.status, body: op.body ?? '', ...(op.outcome === null ? {} : { outcome: op.outcome }) });
  const unknownWrite = !isRead && output.type === 'unknown';
  return {
    clientId, input, output, callTime: op.invokeT,
    returnTime: unknownWrite || op.completeT === null ? Number.POSITIVE_INFINITY : op.completeT,
  };
}

export interface RegisterCheck {
  readonly verdict: Verdict;
  /** Operations given to the checker, by function and read mode. */
  readonly checked: Record<string, number>;
  readonly indeterminate: number;
  readonly staleDefaultReads: number;
  /** `?stale` reads of values no write ever wrote. */
  readonly staleModeUnwritten: number;
  readonly staleModeReads: number;
  readonly reportPath: string | null;
  readonly reportText: string | null;
  readonly checkerMs: number;
  readonly checkerSteps: number;
  readonly keys: number;
}

export function checkRegister(ops: readonly OpRecord[], resultsDir: string, options: { defaultReadsMayBeStale: boolean; timeoutMs?: number }): RegisterCheck {
  const registerOps = ops.filter((op) => REGISTER_FUNCTIONS.has(op.f));
  const clientIds = new Map<string, number>();
  const checked: Record<string, number> = {};
  let indeterminate = 0;
  const linearizable: KvOperation[] = [];
  const withoutDefault: KvOperation[] = [];
  const written = new Set<string>();
  let staleModeReads = 0;
  const staleModeValues: string[] = [];
  for (const op of registerOps) {
    if (op.f !== 'read' && op.value !== null && op.type !== 'fail') written.add(`${op.key}\u0000${op.value}`);
    if (op.f === 'read' && op.mode === 'stale') {
      if (op.type === 'ok') {
        staleModeReads++;
        const value = readValueOf(op);
        if (value !== null) staleModeValues.push(`${op.key}\u0000${value}`);
      }
      continue;
    }
    const operation = toKvOperation(op, clientIds);
    if (operation === null) continue;
    const label = op.f === 'read' ? `read-${op.mode ?? 'default'}` : op.f;
    checked[label] = (checked[label] ?? 0) + 1;
    if (operation.output.type === 'unknown') indeterminate++;
    linearizable.push(operation);
    if (!(op.f === 'read' && (op.mode ?? 'default') === 'default')) withoutDefault.push(operation);
  }
  const staleModeUnwritten = staleModeValues.filter((entry) => !written.has(entry)).length;
  const budget = { timeoutMs: options.timeoutMs ?? 120_000 };
  const full = checkOperations(consulKvModel, linearizable, budget);
  let verdict = full.verdict;
  let staleDefaultReads = 0;
  let illegal = full.illegalOperations;
  if (full.verdict === 'illegal' && options.defaultReadsMayBeStale) {
    const strictPart = checkOperations(consulKvModel, withoutDefault, budget);
    if (strictPart.verdict === 'ok') {
      verdict = 'ok';
      staleDefaultReads = countStaleReads(registerOps.filter((op) => op.f === 'read' && (op.mode ?? 'default') === 'default'), registerOps);
      illegal = null;
    } else {
      verdict = strictPart.verdict;
      illegal = strictPart.illegalOperations;
    }
  }
  let reportPath: string | null = null;
  let reportText: string | null = null;
  if (illegal !== null) {
    reportPath = join(resultsDir, 'violation.txt');
    reportText = writeViolationReport(reportPath, consulKvModel, illegal, { title: `register workload: not linearizable (${resultsDir})` }).text;
  }
  return {
    verdict, checked, indeterminate, staleDefaultReads, staleModeUnwritten, staleModeReads, reportPath, reportText,
    checkerMs: Math.round(full.elapsedMs), checkerSteps: full.steps, keys: full.partitionCount,
  };
}

function readValueOf(op: OpRecord): string | null {
  if (op.status !== 200 || op.body === null) return null;
  try {
    const entries = JSON.parse(op.body) as { Value: string | null }[];
    const value = entries[0]?.Value;
    return value === undefined ? null : value === null ? '' : Buffer.from(value, 'base64').toString('utf8');
  } catch {
    return null;
  }
}

/**
 * Default reads that are certainly stale: they returned a value whose write was followed, in
 * real time, by another acknowledged write of the key that completed before the read began.
 */
function countStaleReads(reads: readonly OpRecord[], ops: readonly OpRecord[]): number {
  const writesByKey = new Map<string, OpRecord[]>();
  for (const op of ops) {
    if (op.f === 'read' || op.type !== 'ok' || op.value === null) continue;
    if (op.status === 200 && op.body?.trim() !== 'true') continue;
    const list = writesByKey.get(op.key) ?? [];
    list.push(op);
    writesByKey.set(op.key, list);
  }
  let stale = 0;
  for (const read of reads) {
    if (read.type !== 'ok') continue;
    const value = readValueOf(read);
    const writes = writesByKey.get(read.key) ?? [];
    const source = writes.find((w) => w.value === value);
    if (source === undefined || source.completeT === null) continue;
    const sourceDone = source.completeT;
    if (writes.some((w) => w !== source && w.invokeT > sourceDone && (w.completeT ?? Infinity) < read.invokeT)) stale++;
  }
  return stale;
}

export interface IndexCheck {
  /** ModifyIndexes seen with two different (key, value) pairs. */
  readonly conflicts: string[];
  readonly reads: number;
}

/** P3 over every successful read of every mode (the register and lock workloads). */
export function checkIndexes(ops: readonly OpRecord[]): IndexCheck {
  const byIndex = new Map<number, string>();
  const byValue = new Map<string, number>();
  const conflicts: string[] = [];
  let reads = 0;
  for (const op of ops) {
    if (op.f !== 'read' || op.type !== 'ok' || op.index === null) continue;
    const value = readValueOf(op);
    if (value === null) continue;
    reads++;
    const pair = `${op.key}=${JSON.stringify(value)}`;
    const seen = byIndex.get(op.index);
    if (seen !== undefined && seen !== pair && conflicts.length < 20) conflicts.push(`index ${op.index}: ${seen} and ${pair}`);
    byIndex.set(op.index, pair);
    const index = byValue.get(pair);
    if (index !== undefined && index !== op.index && conflicts.length < 20) conflicts.push(`${pair} at ${index} and ${op.index}`);
    byValue.set(pair, op.index);
  }
  return { conflicts, reads };
}

export interface SetCheck {
  readonly acknowledged: number;
  readonly failed: number;
  readonly indeterminate: number;
  /** Per node: acknowledged adds missing from its final read. */
  readonly lost: Record<string, string[]>;
  /** Per node: definitely-not-applied adds present anyway. */
  readonly unexpected: Record<string, string[]>;
  /** Indeterminate adds that turned out present. */
  readonly recovered: number;
}

/** P2: `finalKeys` is each node's final `?consistent&recurse` read of the set prefix. */
export function checkSet(ops: readonly OpRecord[], finalKeys: ReadonlyMap<string, ReadonlySet<string>>): SetCheck {
  const adds = ops.filter((op) => op.f === 'add');
  const acked = adds.filter((op) => op.type === 'ok' && op.body?.trim() === 'true');
  const failed = adds.filter((op) => op.type === 'fail');
  const unknown = adds.filter((op) => op.type === 'info' || op.type === null);
  const lost: Record<string, string[]> = {};
  const unexpected: Record<string, string[]> = {};
  let recovered = 0;
  for (const [node, keys] of finalKeys) {
    lost[node] = acked.filter((op) => !keys.has(op.key)).map((op) => op.key);
    unexpected[node] = failed.filter((op) => keys.has(op.key)).map((op) => `${op.key} (${op.status ?? 'no reply'} ${op.outcome ?? ''} ${op.body?.slice(0, 80) ?? ''})`);
    recovered = Math.max(recovered, unknown.filter((op) => keys.has(op.key)).length);
  }
  return { acknowledged: acked.length, failed: failed.length, indeterminate: unknown.length, lost, unexpected, recovered };
}

// ---------------------------------------------------------------------------------------------
// Locks

export interface LockCheck {
  /** L1: overlapping holds, equal LockIndex for two sessions, LockIndex not +1, ModifyIndex drops. */
  readonly l1: string[];
  /** L2: acquisitions inside a lock-delay. */
  readonly l2: string[];
  /** Sessions that ended before TTL after their last renewal. */
  readonly earlyExpiry: string[];
  /** L3: stale tokens the fenced resource saw. */
  readonly l3: number;
  /** Overlaps explained by an expired session (reported, not failed). */
  readonly unfencedOverlaps: number;
  readonly holds: number;
  readonly invalidations: number;
  readonly acquires: Record<string, number>;
}

interface Hold {
  readonly key: string;
  readonly session: string;
  readonly proc: string;
  /** When it was certainly held: from the acquire's (or resolving read's) return... */
  readonly from: number;
  readonly fromWall: number;
  /** ...to the invocation of what ended it (release/destroy), or the end of the run. */
  readonly to: number;
  readonly lockIndex: number;
  readonly modifyIndex: number;
  readonly endedBy: OpRecord | null;
  /** The acquire that began it. */
  readonly acquireId: number;
}

function granted(op: OpRecord): boolean {
  return op.type === 'ok' && op.body?.trim() === 'true';
}

export function checkLocks(ops: readonly OpRecord[], options: { ttlMs: number; lockDelayMs: number; resourceStale: number }): LockCheck {
  const l1: string[] = [];
  const l2: string[] = [];
  const earlyExpiry: string[] = [];
  const byProc = new Map<string, OpRecord[]>();
  const acquires: Record<string, number> = { ok: 0, refused: 0, fail: 0, info: 0 };
  for (const op of ops) {
    if (!['acquire', 'release', 'lock-read', 'session-create', 'session-renew', 'session-destroy', 'fence'].includes(op.f)) continue;
    const list = byProc.get(op.proc) ?? [];
    list.push(op);
    byProc.set(op.proc, list);
    if (op.f === 'acquire') {
      const kind = op.type === 'ok' ? (granted(op) ? 'ok' : 'refused') : (op.type ?? 'info');
      acquires[kind] = (acquires[kind] ?? 0) + 1;
    }
  }
  // Holds: an acquire (granted or unknown) confirmed by the proc's next consistent read.
  const holds: Hold[] = [];
  const invalidations: { session: string; key: string; at: number; atWall: number; op: OpRecord }[] = [];
  for (const list of byProc.values()) {
    for (let k = 0; k < list.length; k++) {
      const op = list[k] as OpRecord;
      if (op.f !== 'acquire' || !(granted(op) || op.type === 'info')) continue;
      const read = list.slice(k + 1).find((next) => next.f === 'lock-read' && next.key === op.key);
      const confirmed = read !== undefined && read.type === 'ok' && read.data?.['session'] === op.value;
      if (!confirmed) {
        if (granted(op) && read !== undefined && read.type === 'ok') {
          l1.push(`${op.proc} acquired ${op.key} (session ${op.value}) but its next consistent read shows holder ${String(read.data?.['session'])}`);
        }
        continue;
      }
      const end = list.slice(k + 1).find((next) => (next.f === 'release' && next.key === op.key) || next.f === 'session-destroy' || next.f === 'acquire');
      const from = granted(op) ? (op.completeT as number) : (read.completeT as number);
      const fromWall = granted(op) ? (op.completeWall as number) : (read.completeWall as number);
      holds.push({
        key: op.key, session: op.value ?? '', proc: op.proc, from, fromWall, to: end?.invokeT ?? Number.POSITIVE_INFINITY,
        lockIndex: Number(read.data?.['lockIndex']), modifyIndex: Number(read.data?.['modifyIndex']), endedBy: end ?? null, acquireId: op.id,
      });
      if (end?.f === 'session-destroy') invalidations.push({ session: op.value ?? '', key: op.key, at: end.invokeT, atWall: end.invokeWall, op: end });
    }
  }
  // Sessions that expired on their own (renew answered 404) while holding: TTL-based L2 bound.
  const lastRenewWall = new Map<string, number>();
  for (const list of byProc.values()) {
    for (const op of list) {
      if (op.f === 'session-create' && op.type === 'ok' && op.value !== null) lastRenewWall.set(op.value, op.invokeWall);
      if (op.f === 'session-renew' && op.type === 'ok' && op.value !== null) {
        if (op.data?.['gone'] === true) {
          const renewed = lastRenewWall.get(op.value) ?? op.invokeWall;
          const destroyedByUs = list.some((d) => d.f === 'session-destroy' && d.value === op.value && d.invokeT < (op.completeT ?? 0));
          if (!destroyedByUs && (op.completeWall ?? 0) < renewed + options.ttlMs) {
            earlyExpiry.push(`session ${op.value} of ${op.proc} gone at ${op.completeWall} (renew 404), last renewal began ${renewed}: less than TTL ${options.ttlMs} ms`);
          }
          if (!destroyedByUs) {
            for (const hold of holds.filter((h) => h.session === op.value)) {
              invalidations.push({ session: op.value, key: hold.key, at: op.invokeT, atWall: renewed + options.ttlMs, op });
            }
          }
        } else {
          lastRenewWall.set(op.value, op.invokeWall);
        }
      }
    }
  }
  // L1: no two holds of different sessions overlap; LockIndex unique per session, +1 per holder.
  let unfencedOverlaps = 0;
  const byKey = new Map<string, Hold[]>();
  for (const hold of holds) byKey.set(hold.key, [...(byKey.get(hold.key) ?? []), hold]);
  for (const [key, list] of byKey) {
    list.sort((a, b) => a.from - b.from);
    for (let i = 0; i < list.length; i++) {
      const a = list[i] as Hold;
      for (let j = i + 1; j < list.length; j++) {
        const b = list[j] as Hold;
        if (b.from >= a.to) break;
        if (a.session === b.session) continue;
        const expired = invalidations.some((inv) => inv.session === a.session && inv.op.f === 'session-renew' && inv.at < b.from);
        if (expired) unfencedOverlaps++;
        else l1.push(`${key}: ${a.proc} (session ${a.session}, LockIndex ${a.lockIndex}) held it until ${a.to.toFixed(1)} ms, ${b.proc} (session ${b.session}, LockIndex ${b.lockIndex}) from ${b.from.toFixed(1)} ms`);
      }
    }
    const indexOwner = new Map<number, string>();
    for (const hold of list) {
      const owner = indexOwner.get(hold.lockIndex);
      if (owner !== undefined && owner !== hold.session) l1.push(`${key}: LockIndex ${hold.lockIndex} for sessions ${owner} and ${hold.session}`);
      indexOwner.set(hold.lockIndex, hold.session);
    }
    // Consecutive holders in time: LockIndex rises, by exactly one unless an unresolved acquire
    // (unknown outcome, never confirmed) may have made a holder we did not see.
    // Every acquisition of a free key is a new holding, the same session's included; only a
    // session that still holds it (its release did not land) keeps the LockIndex.
    for (let k = 1; k < list.length; k++) {
      const previous = list[k - 1] as Hold;
      const hold = list[k] as Hold;
      if (hold.session === previous.session && hold.lockIndex === previous.lockIndex) continue;
      if (hold.lockIndex <= previous.lockIndex) {
        l1.push(`${key}: LockIndex went from ${previous.lockIndex} (${previous.session}) to ${hold.lockIndex} (${hold.session})`);
        continue;
      }
      if (hold.modifyIndex <= previous.modifyIndex) l1.push(`${key}: ModifyIndex went from ${previous.modifyIndex} to ${hold.modifyIndex} across holders`);
      const hidden = ops.filter((op) => op.f === 'acquire' && op.key === key && (op.type === 'info' || granted(op)) && op.invokeT < hold.from && (op.completeT ?? Infinity) > previous.from
        && !holds.some((h) => h.acquireId === op.id)).length;
      if (hold.lockIndex - previous.lockIndex - 1 > hidden) {
        l1.push(`${key}: LockIndex jumped from ${previous.lockIndex} to ${hold.lockIndex} with ${hidden} unseen acquisitions that could explain it`);
      }
    }
  }
  // L2: after an invalidation of a holder, nobody gets the key before lock-delay passed.
  for (const inv of invalidations) {
    for (const hold of byKey.get(inv.key) ?? []) {
      if (hold.session === inv.session || hold.from < inv.at) continue;
      const earliest = inv.atWall + options.lockDelayMs;
      if (hold.fromWall + 1 < earliest) {
        l2.push(`${inv.key}: ${hold.proc} acquired at wall ${hold.fromWall}, ${earliest - hold.fromWall} ms inside the lock-delay after session ${inv.session} was invalidated (${inv.op.f} at wall ${inv.op.invokeWall})`);
      }
    }
  }
  return { l1, l2, earlyExpiry, l3: options.resourceStale, unfencedOverlaps, holds: holds.length, invalidations: invalidations.length, acquires };
}

// ---------------------------------------------------------------------------------------------
// Leaders

/** One poll of /v1/debug/raft on one server. */
export interface RaftSample {
  readonly t: number;
  readonly node: string;
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  /** The last index in the server's log (persisted or not). */
  readonly lastIndex: number;
}

export interface LeaderCheck {
  /** Terms in which two servers were seen leading (or named as leader). */
  readonly conflicts: string[];
  readonly terms: number;
  /** Times the observed leader changed. */
  readonly leaderChanges: number;
}

export function checkLeaders(samples: readonly RaftSample[]): LeaderCheck {
  const leaders = new Map<number, Set<string>>();
  const selfLeaders = new Map<number, Set<string>>();
  for (const sample of samples) {
    if (sample.role === 'leader') {
      const set = selfLeaders.get(sample.term) ?? new Set<string>();
      set.add(sample.id);
      selfLeaders.set(sample.term, set);
    }
    if (sample.leaderId !== null) {
      const set = leaders.get(sample.term) ?? new Set<string>();
      set.add(sample.leaderId);
      leaders.set(sample.term, set);
    }
  }
  const conflicts: string[] = [];
  for (const [term, set] of selfLeaders) {
    if (set.size > 1) conflicts.push(`term ${term}: ${[...set].join(' and ')} each reported role leader`);
  }
  for (const [term, set] of leaders) {
    const own = selfLeaders.get(term);
    const all = new Set([...set, ...(own ?? [])]);
    if (all.size > 1 && (own === undefined || own.size <= 1)) conflicts.push(`term ${term}: leaders named ${[...all].join(' and ')}`);
  }
  let leaderChanges = 0;
  let previous: string | null = null;
  for (const sample of samples) {
    if (sample.role !== 'leader') continue;
    if (previous !== null && previous !== sample.id) leaderChanges++;
    previous = sample.id;
  }
  return { conflicts, terms: new Set(samples.map((s) => s.term)).size, leaderChanges };
}

/** Counts history operations by `f` and outcome, for the summary. */
export function countOps(ops: readonly OpRecord[]): Record<string, Record<string, number>> {
  const counts: Record<string, Record<string, number>> = {};
  for (const op of ops) {
    const label = op.f === 'read' || op.f === 'watch' ? `${op.f}-${(op.mode ?? 'default') as ReadMode}` : op.f;
    const byType = counts[label] ?? {};
    const type = op.type ?? 'pending';
    byType[type] = (byType[type] ?? 0) + 1;
    counts[label] = byType;
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Watches

/** Latency figures in ms (nearest-rank percentiles). */
export interface LatencyFigures {
  readonly samples: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
}

export interface WatchCheck {
  readonly watchers: number;
  /** Answered watch GETs (200 or 404), by layout: `key-default`, `prefix-stale`... */
  readonly responses: Record<string, number>;
  /** Watch GETs without an answer (errors, 5xx, cancelled at the end). */
  readonly unanswered: number;
  /** X-Consul-Index drops no restart of the answering server explains (must be 0). */
  readonly regressions: string[];
  /** Drops of a `?stale` watcher whose server was killed in between (allowed; reported). */
  readonly regressionsAfterRestart: number;
  /** Default-mode drops in runs where default reads may be stale (Consul's caveat; reported). */
  readonly staleDefaultRegressions: number;
  /** Answers without X-Consul-Index, or with 0 (consul-api.md §3: never 0). */
  readonly missingIndex: string[];
  /** (key, value)s no acknowledged or indeterminate write wrote, or wrote only after the answer. */
  readonly unwritten: string[];
  /** A (key, value) at two ModifyIndexes, or a ModifyIndex with two (key, value)s, reads and watches together. */
  readonly indexMismatches: string[];
  readonly converged: number;
  /** Watchers whose last answer does not show the final `?consistent` state of their query. */
  readonly notConverged: string[];
  /** Per watcher, from the last write to its query's keys to its first answer of the final state it kept; the max. */
  readonly convergeMsMax: number | null;
  /** Acknowledged writes of watched keys (register `write`/`cas` answered `true`). */
  readonly acknowledgedWrites: number;
  /** Per (acknowledged write, watcher that showed it): from the ack to its first answer showing it. */
  readonly wakeup: LatencyFigures;
  readonly wakeupByLayout: Record<string, LatencyFigures>;
}

/** The layout label of a watch: `key-` or `prefix-`, then its mode. */
function watchLayout(op: OpRecord): string {
  return `${op.data?.['recurse'] === true ? 'prefix' : 'key'}-${op.mode ?? 'default'}`;
}

function isAcknowledgedWrite(op: OpRecord): boolean {
  return (op.f === 'write' || op.f === 'cas') && op.type === 'ok' && op.body?.trim() === 'true';
}

/** A write that may have happened: acknowledged, or with an unknown outcome. A `cas` answered false did not. */
function mayHaveWritten(op: OpRecord): boolean {
  return isAcknowledgedWrite(op) || ((op.f === 'write' || op.f === 'cas') && (op.type === 'info' || op.type === null));
}

/** Times each server process died (kill -9 by the nemesis, a failpoint crash), by server. */
function deathsByNode(events: readonly NemesisEvent[]): Map<string, number[]> {
  const deaths = new Map<string, number[]>();
  const add = (node: unknown, t: number): void => {
    if (typeof node !== 'string') return;
    deaths.set(node, [...(deaths.get(node) ?? []), t]);
  };
  for (const event of events) {
    const value = event.value as { nodes?: unknown; node?: unknown } | null;
    if (event.f === 'kill' && Array.isArray(value?.nodes)) for (const node of value.nodes) add(node, event.t);
    if (event.f === 'crash') add(value?.node, event.t);
  }
  return deaths;
}

/** The final `?consistent` reads (procs `final-*`): each key's final value, null when absent. */
export function finalValues(ops: readonly OpRecord[]): Map<string, string | null> {
  const finals = new Map<string, { t: number; value: string | null }>();
  for (const op of ops) {
    if (op.f !== 'read' || !op.proc.startsWith('final') || op.type !== 'ok' || op.completeT === null) continue;
    const previous = finals.get(op.key);
    if (previous === undefined || previous.t < op.completeT) finals.set(op.key, { t: op.completeT, value: op.status === 200 ? readValueOf(op) : null });
  }
  return new Map([...finals].map(([key, { value }]) => [key, value]));
}

/** Whether a watch answer shows exactly the final state of its query (one key, or every key under a prefix). */
export function showsFinalState(op: OpRecord, finals: ReadonlyMap<string, string | null>): boolean {
  if (op.f !== 'watch' || op.type !== 'ok' || op.entries === null) return false;
  const expected = op.data?.['recurse'] === true
    ? [...finals].filter(([key, value]) => key.startsWith(op.key) && value !== null).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    : finals.get(op.key) == null ? [] : [[op.key, finals.get(op.key) as string] as const];
  return op.entries.length === expected.length && op.entries.every((entry, k) => entry.key === expected[k]?.[0] && entry.value === expected[k]?.[1]);
}

/**
 * P5 over the watch workload (RELIABILITY.md "Watch checks"). `events` are the nemesis events
 * (kills and crashes by server).
 *
 * The regression rule, per watcher (pinned to one server) and query. The X-Consul-Index of a KV
 * read comes from the answering server's applied state: a key's ModifyIndex, or the KV-space
 * index (tombstones included, and restored from snapshots) for a missing key or an empty
 * prefix, and both only grow as entries apply. So:
 * - `?stale`: the pinned server answers from its own state, which never goes back while the
 *   process lives. A restarted process reloads its snapshot and log and may not have applied
 *   everything again yet (its commit index is learnt from the leader), so a drop is allowed only
 *   when that server died (kill -9 or a crash) between the higher answer's invocation and the
 *   lower answer's return.
 * - default and `?consistent`: the server answers after it has applied the leader's read index
 *   (or is the leader), which covers every index any earlier answer of the run showed, restarted
 *   or not. A drop is a stale read, never allowed — except default mode in runs that allow stale
 *   default reads (a paused leader's lease, Consul's documented caveat), where it is reported.
 * Each answer is compared with the highest index the query showed since the last allowed drop.
 */
export function checkWatches(ops: readonly OpRecord[], events: readonly NemesisEvent[], options: { defaultReadsMayBeStale: boolean }): WatchCheck {
  const watches = ops.filter((op) => op.f === 'watch').sort((a, b) => a.invokeT - b.invokeT);
  const answered = watches.filter((op) => op.type === 'ok');
  const responses: Record<string, number> = {};
  for (const op of answered) responses[watchLayout(op)] = (responses[watchLayout(op)] ?? 0) + 1;
  const regressionCounts = watchRegressions(answered, deathsByNode(events), options);
  const { unwritten, indexMismatches } = watchValues(answered, ops);
  const convergence = watchConvergence(watches, ops);
  const wakeups = watchWakeups(answered, ops);
  return {
    watchers: new Set(watches.map((op) => op.proc)).size,
    responses,
    unanswered: watches.length - answered.length,
    ...regressionCounts,
    unwritten,
    indexMismatches,
    ...convergence,
    ...wakeups,
  };
}

function watchRegressions(answered: readonly OpRecord[], deaths: ReadonlyMap<string, readonly number[]>, options: { defaultReadsMayBeStale: boolean }):
  Pick<WatchCheck, 'regressions' | 'regressionsAfterRestart' | 'staleDefaultRegressions' | 'missingIndex'> {
  const regressions: string[] = [];
  const missingIndex: string[] = [];
  let regressionsAfterRestart = 0;
  let staleDefaultRegressions = 0;
  const highest = new Map<string, OpRecord>();
  for (const op of answered) {
    if (op.index === null || op.index <= 0) {
      missingIndex.push(`${op.proc} on ${op.node}: GET ${op.key} answered ${op.status ?? '?'} with X-Consul-Index ${op.index ?? 'missing'}`);
      continue;
    }
    const group = `${op.proc}\u0000${op.node}\u0000${op.key}`;
    const high = highest.get(group);
    if (high === undefined || (high.index as number) <= op.index) {
      highest.set(group, op);
      continue;
    }
    const from = high.invokeT;
    const to = op.completeT ?? Number.POSITIVE_INFINITY;
    const died = (deaths.get(op.node) ?? []).some((t) => t > from && t < to);
    if (op.mode === 'stale' && died) regressionsAfterRestart++;
    else if ((op.mode ?? 'default') === 'default' && options.defaultReadsMayBeStale) staleDefaultRegressions++;
    else regressions.push(`${op.proc} (${watchLayout(op)}) on ${op.node}: GET ${op.key} X-Consul-Index ${op.index} at ${(op.completeT ?? 0).toFixed(1)} ms after ${high.index} at ${(high.completeT ?? 0).toFixed(1)} ms${died ? ' (the server restarted in between)' : ', no restart of the server in between'}`);
    // Count each drop once: later answers are compared with the lower view.
    highest.set(group, op);
  }
  return { regressions, regressionsAfterRestart, staleDefaultRegressions, missingIndex };
}

/** Every (key, value, ModifyIndex) a watch showed: written (or maybe written) before the answer, and one index per value. */
function watchValues(answered: readonly OpRecord[], ops: readonly OpRecord[]): Pick<WatchCheck, 'unwritten' | 'indexMismatches'> {
  const writes = new Map<string, OpRecord[]>();
  for (const op of ops) {
    if (!mayHaveWritten(op) || op.value === null) continue;
    const pair = `${op.key}\u0000${op.value}`;
    const list = writes.get(pair) ?? [];
    list.push(op);
    writes.set(pair, list);
  }
  // Register reads name the ModifyIndex of their value first (checkIndexes compares them with one another).
  const indexOfPair = new Map<string, number>();
  const pairOfIndex = new Map<number, string>();
  for (const op of ops) {
    if (op.f !== 'read' || op.type !== 'ok' || op.status !== 200 || op.index === null) continue;
    const value = readValueOf(op);
    if (value === null) continue;
    const pair = `${op.key}\u0000${value}`;
    if (!indexOfPair.has(pair)) indexOfPair.set(pair, op.index);
    if (!pairOfIndex.has(op.index)) pairOfIndex.set(op.index, pair);
  }
  const unwritten: string[] = [];
  const indexMismatches: string[] = [];
  const show = (pair: string): string => pair.replace('\u0000', '=');
  for (const op of answered) {
    for (const entry of op.entries ?? []) {
      const pair = `${entry.key}\u0000${entry.value}`;
      const answeredAt = op.completeT ?? Number.POSITIVE_INFINITY;
      if (!(writes.get(pair) ?? []).some((write) => write.invokeT < answeredAt)) {
        unwritten.push(`${op.proc} (${watchLayout(op)}) on ${op.node} saw ${show(pair)} at ModifyIndex ${entry.modifyIndex}, ${(writes.get(pair)?.length ?? 0) === 0 ? 'a value no write that may have happened wrote' : 'written only after the answer'}`);
      }
      const index = indexOfPair.get(pair);
      if (index !== undefined && index !== entry.modifyIndex) indexMismatches.push(`${show(pair)} at ModifyIndex ${index} and, in ${op.proc}'s watch on ${op.node}, ${entry.modifyIndex}`);
      indexOfPair.set(pair, entry.modifyIndex);
      const other = pairOfIndex.get(entry.modifyIndex);
      if (other !== undefined && other !== pair) indexMismatches.push(`ModifyIndex ${entry.modifyIndex}: ${show(other)} and, in ${op.proc}'s watch on ${op.node}, ${show(pair)}`);
      pairOfIndex.set(entry.modifyIndex, pair);
    }
  }
  return { unwritten, indexMismatches };
}

/** Each watcher's last answer against the final reads of its last query. */
function watchConvergence(watches: readonly OpRecord[], ops: readonly OpRecord[]): Pick<WatchCheck, 'converged' | 'notConverged' | 'convergeMsMax'> {
  const finals = finalValues(ops);
  const writes = ops.filter((op) => (op.f === 'write' || op.f === 'cas' || op.f === 'delete') && !op.proc.startsWith('final'));
  const lastWriteOf = (query: string, recurse: boolean): number => Math.max(0, ...writes
    .filter((op) => (recurse ? op.key.startsWith(query) : op.key === query))
    .map((op) => op.completeT ?? op.invokeT));
  const byProc = new Map<string, OpRecord[]>();
  for (const op of watches) {
    const list = byProc.get(op.proc) ?? [];
    list.push(op);
    byProc.set(op.proc, list);
  }
  let converged = 0;
  const notConverged: string[] = [];
  let convergeMsMax: number | null = null;
  for (const [proc, list] of byProc) {
    const query = (list[list.length - 1] as OpRecord).key;
    const answers = list.filter((op) => op.type === 'ok');
    const last = answers[answers.length - 1];
    if (last === undefined || last.key !== query || !showsFinalState(last, finals)) {
      const shown = last === undefined ? 'no answer' : `${last.key}: ${JSON.stringify(last.entries?.map((e) => e.value) ?? [])} at ${(last.completeT ?? 0).toFixed(1)} ms`;
      notConverged.push(`${proc} on ${last?.node ?? '?'} watching ${query}: last answer ${shown}`);
      continue;
    }
    converged++;
    let first = last;
    for (let k = answers.length - 2; k >= 0; k--) {
      const op = answers[k] as OpRecord;
      if (op.key !== query || !showsFinalState(op, finals)) break;
      first = op;
    }
    const lastWrite = lastWriteOf(query, last.data?.['recurse'] === true);
    convergeMsMax = Math.max(convergeMsMax ?? 0, Math.round(Math.max(0, (first.completeT ?? 0) - lastWrite)));
  }
  return { converged, notConverged, convergeMsMax };
}

/** From each acknowledged write to each watcher's first answer that shows it. */
function watchWakeups(answered: readonly OpRecord[], ops: readonly OpRecord[]): Pick<WatchCheck, 'acknowledgedWrites' | 'wakeup' | 'wakeupByLayout'> {
  const firstSeen = new Map<string, Map<string, { t: number; layout: string }>>();
  for (const op of answered) {
    for (const entry of op.entries ?? []) {
      const pair = `${entry.key}\u0000${entry.value}`;
      const seen = firstSeen.get(pair) ?? new Map<string, { t: number; layout: string }>();
      if (!seen.has(op.proc)) seen.set(op.proc, { t: op.completeT ?? 0, layout: watchLayout(op) });
      firstSeen.set(pair, seen);
    }
  }
  const watchedKeys = new Set(answered.map((op) => op.key));
  const isWatched = (key: string): boolean => watchedKeys.has(key) || [...watchedKeys].some((query) => query.endsWith('/') && key.startsWith(query));
  const all: number[] = [];
  const byLayout = new Map<string, number[]>();
  let acknowledgedWrites = 0;
  for (const op of ops) {
    if (!isAcknowledgedWrite(op) || op.proc.startsWith('final') || op.completeT === null || !isWatched(op.key)) continue;
    acknowledgedWrites++;
    for (const { t, layout } of firstSeen.get(`${op.key}\u0000${op.value ?? ''}`)?.values() ?? []) {
      // A watcher may show a write before its writer hears the ack: that is no wait at all.
      const ms = Math.max(0, t - op.completeT);
      all.push(ms);
      const list = byLayout.get(layout) ?? [];
      list.push(ms);
      byLayout.set(layout, list);
    }
  }
  return {
    acknowledgedWrites,
    wakeup: latencyFigures(all),
    wakeupByLayout: Object.fromEntries([...byLayout].map(([layout, list]) => [layout, latencyFigures(list)])),
  };
}

export function latencyFigures(values: readonly number[]): LatencyFigures {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number | null => (sorted.length === 0 ? null : Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number));
  return { samples: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: at(1) };
}
