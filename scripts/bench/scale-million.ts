import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { controlRequest } from './bench-cluster.js';
import type { BenchCluster } from './bench-cluster.js';
import { benchKey } from './load.js';
import { round } from './measure-window.js';
import { HttpEndpoints, isRecord, keyPath, parseJson, statusError } from './target.js';
import type { OpResult } from './target.js';

/**
 * The "million keys" measurements of issue 7 on one 3-member cluster: load N keys of V bytes
 * fast (transactions of up to 64 writes, several in flight, all sent to the leader), then each
 * member's RSS, then restarts: SIGKILL one follower and start it again, then SIGKILL the whole
 * cluster and start it again, timing each restarted member until it is *ready*: it answers a
 * local read (`?stale` / serializable range) of the last key loaded with the right value, and
 * its applied index reached the commit index the cluster had before the kill. Both systems go
 * through the same code; a `MillionSubject` is the protocol-specific part.
 */

/** What the million step needs from a system, beyond its BenchCluster. */
export interface MillionSubject {
  readonly cluster: BenchCluster;
  /** Writes every key of `indexes` (value = millionValue) in one transaction on `endpoint`. */
  writeBatch(http: HttpEndpoints, endpoint: number, indexes: readonly number[], valueBytes: number): Promise<OpResult>;
  /** The value of key `index` read from the member's own state, or undefined (error, missing). */
  readLocal(member: number, index: number): Promise<string | undefined>;
  /** The member's Raft indexes, or undefined if it does not answer. */
  raftStatus(member: number): Promise<RaftStatus | undefined>;
  /** One write through the member; true when it was acknowledged. */
  probeWrite(member: number): Promise<boolean>;
  /** Per-member data directories (for their size on disk). */
  dataDirs(): string[];
  /**
   * Milestones of a restart read from the member's log, in ms after `sinceEpochMs` (the spawn):
   * what the process spent its start on. Empty when the log says nothing usable.
   */
  restartMilestones(member: number, sinceEpochMs: number): Record<string, number>;
}

/** Raft indexes as the member reports them, plus what the report shows of it. */
export interface RaftStatus {
  readonly commitIndex: number;
  readonly appliedIndex: number;
  /** Conclave: role, term, snapshotIndex, firstIndex, lastIndex, entriesApplied; etcd: dbSize. */
  readonly details: Readonly<Record<string, number | string>>;
}

/** Options of the million step. */
export interface MillionOptions {
  readonly keys: number;
  readonly valueBytes: number;
  /** Writes per transaction: Consul 1.10 accepts 64 (Conclave, like Consul ≥ 1.14, 128); etcd 128. */
  readonly opsPerTxn: number;
  readonly txnInFlight: number;
  /** Idle time after the load before RSS is read, so the figure is not a mid-GC peak. */
  readonly settleMs: number;
  readonly log: (message: string) => void;
}

/** One member after the load. */
export interface MemberMemory {
  readonly member: number;
  readonly role: string;
  /** RSS before the load (after the empty restart): the process with no data. */
  readonly rssEmptyMiB: number;
  readonly rssMiB: number;
  /** VmHWM: the highest RSS the process reached (during the load). */
  readonly peakRssMiB: number;
  readonly dataDirMiB: number;
  readonly raft: Readonly<Record<string, number | string>>;
}

/** One restarted member. */
export interface MemberRestart {
  readonly member: number;
  /** From the restart (spawn) to the first answer of the status endpoint: the process is serving. */
  readonly serveMs: number | null;
  /** Applied index when it first answered: what the snapshot (and any local replay) had restored. */
  readonly appliedAtServe: number | null;
  /** From the restart until its applied index reached the pre-kill commit index. */
  readonly appliedMs: number | null;
  /** From the restart until it was ready (applied, and the local read answered the right value). */
  readonly readyMs: number | null;
  readonly raftAfter: Readonly<Record<string, number | string>>;
  /** From the member's log: e.g. `server port listening`, `http listening`, in ms after the spawn. */
  readonly milestones: Readonly<Record<string, number>>;
}

/**
 * One kill-and-restart. `follower-empty` is the baseline: the same follower restart before the
 * load, so what the process start costs without data shows apart from what the data costs.
 */
export interface RestartReport {
  readonly kind: 'follower-empty' | 'follower' | 'cluster';
  readonly killedMembers: readonly number[];
  readonly preKillCommitIndex: number;
  readonly members: readonly MemberRestart[];
  /** The slowest member's readyMs; null if one never became ready. */
  readonly readyMs: number | null;
  /** Whole-cluster restart only: from the restart to the first acknowledged write. */
  readonly firstWriteMs: number | null;
}

/** The million step on one system. */
export interface MillionReport {
  readonly target: string;
  readonly keys: number;
  readonly valueBytes: number;
  readonly opsPerTxn: number;
  readonly txnInFlight: number;
  readonly loadSeconds: number;
  readonly keysPerSecond: number;
  readonly txnRetries: number;
  /** Why transactions were retried, by kind (`status:500`, `network:…`). */
  readonly txnErrorKinds: Readonly<Record<string, number>>;
  readonly members: readonly MemberMemory[];
  readonly restarts: readonly RestartReport[];
}

/** A restarted member that is not ready after this long is reported as not ready (null). */
const RESTART_TIMEOUT_MS = 120_000;
/** Readiness is polled this often: the resolution of a restart time. */
const READY_POLL_MS = 20;
/** A failed transaction is retried this many times (a leader change mid-load), then the step fails. */
const TXN_ATTEMPTS_MAX = 5;
const TXN_RETRY_BACKOFF_MS = 200;
/** How long all members get to apply everything before the memory figures and the kills. */
const CATCH_UP_TIMEOUT_MS = 120_000;
const MIB = 1024 * 1024;

/**
 * The value of key `index`: `<index>;` then `m` up to `valueBytes`, so a read can be checked
 * without remembering what was written.
 */
export function millionValue(index: number, valueBytes: number): string {
  const head = `${index};`;
  return head.length >= valueBytes ? head : head + 'm'.repeat(valueBytes - head.length);
}

/** VmRSS and VmHWM of a process from /proc/<pid>/status, in MiB; undefined if it is gone. */
export function processMemoryMiB(pid: number): { rss: number; peak: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    const rss = field('VmRSS');
    const peak = field('VmHWM');
    if (!Number.isFinite(rss) || !Number.isFinite(peak)) return undefined;
    return { rss: round(rss / 1024), peak: round(peak / 1024) };
  } catch {
    return undefined;
  }
}

/** Bytes under a directory (regular files, recursively); 0 if it is gone. */
export function directoryBytes(path: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(path);
  } catch {
    return 0;
  }
  for (const name of names) {
    const child = join(path, name);
    try {
      const stat = statSync(child);
      total += stat.isDirectory() ? directoryBytes(child) : stat.size;
    } catch {
      // removed meanwhile (LevelDB compaction)
    }
  }
  return total;
}

/** Runs the whole step: load, memory, follower restart, cluster restart. */
export async function runMillion(subject: MillionSubject, options: MillionOptions): Promise<MillionReport> {
  const { cluster } = subject;
  const baseline = await restartFollower(subject, 'follower-empty', 0, null);
  options.log(`${cluster.name}: empty follower restart ready in ${baseline.readyMs ?? 'n/a'} ms`);
  await cluster.waitHealthy(60_000);
  const rssEmptyMiB = cluster.pids().map((pid) => processMemoryMiB(pid)?.rss ?? Number.NaN);
  const http = new HttpEndpoints({ urls: cluster.clientUrls, connections: options.txnInFlight, watchConnections: 1 });
  let load: { seconds: number; retries: number; errorKinds: Record<string, number> };
  try {
    load = await loadKeys(subject, http, options);
  } finally {
    await http.close();
  }
  options.log(`${cluster.name}: ${options.keys} keys in ${load.seconds} s (${round(options.keys / load.seconds)} keys/s, ${load.retries} txn retries)`);
  await waitCaughtUp(subject);
  await sleep(options.settleMs);
  const members = await memberMemory(subject, rssEmptyMiB);
  for (const member of members) options.log(`${cluster.name} member ${member.member} (${member.role}): RSS ${member.rssMiB} MiB (empty ${member.rssEmptyMiB}), peak ${member.peakRssMiB} MiB, data ${member.dataDirMiB} MiB`);
  const lastKey = options.keys - 1;
  const follower = await restartFollower(subject, 'follower', lastKey, millionValue(lastKey, options.valueBytes));
  options.log(`${cluster.name}: follower restart ready in ${follower.readyMs ?? 'n/a'} ms`);
  await cluster.waitHealthy(60_000);
  await waitCaughtUp(subject);
  const whole = await restartCluster(subject, lastKey, millionValue(lastKey, options.valueBytes));
  options.log(`${cluster.name}: whole-cluster restart ready in ${whole.readyMs ?? 'n/a'} ms (first write ${whole.firstWriteMs ?? 'n/a'} ms)`);
  await cluster.waitHealthy(60_000);
  return {
    target: cluster.name,
    keys: options.keys,
    valueBytes: options.valueBytes,
    opsPerTxn: options.opsPerTxn,
    txnInFlight: options.txnInFlight,
    loadSeconds: load.seconds,
    keysPerSecond: round(options.keys / load.seconds),
    txnRetries: load.retries,
    txnErrorKinds: load.errorKinds,
    members,
    restarts: [baseline, follower, whole],
  };
}

/** Writes every key in transactions of opsPerTxn, txnInFlight at a time, all to the leader. */
async function loadKeys(subject: MillionSubject, http: HttpEndpoints, options: MillionOptions): Promise<{ seconds: number; retries: number; errorKinds: Record<string, number> }> {
  const leader = await subject.cluster.leaderMember();
  if (leader === undefined) throw new Error(`${subject.cluster.name}: no leader before the load`);
  let next = 0;
  let retries = 0;
  const errorKinds: Record<string, number> = {};
  let lastReportMs = performance.now();
  const startedMs = performance.now();
  const lane = async (): Promise<void> => {
    while (next < options.keys) {
      const first = next;
      next = Math.min(options.keys, next + options.opsPerTxn);
      const indexes = Array.from({ length: next - first }, (_, offset) => first + offset);
      for (let attempt = 1; ; attempt++) {
        const result = await subject.writeBatch(http, leader, indexes, options.valueBytes);
        if (result.ok) break;
        if (attempt >= TXN_ATTEMPTS_MAX) throw new Error(`${subject.cluster.name}: txn of keys ${first}.. failed ${attempt} times: ${result.error}`);
        retries++;
        errorKinds[result.error] = (errorKinds[result.error] ?? 0) + 1;
        await sleep(TXN_RETRY_BACKOFF_MS);
      }
      if (performance.now() - lastReportMs > 10_000) {
        lastReportMs = performance.now();
        options.log(`${subject.cluster.name}: ${next} keys written, ${round((performance.now() - startedMs) / 1000)} s`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.txnInFlight }, lane));
  return { seconds: round((performance.now() - startedMs) / 1000), retries, errorKinds };
}

/** Waits until every member applied the leader's commit index. */
async function waitCaughtUp(subject: MillionSubject): Promise<void> {
  const count = subject.cluster.clientUrls.length;
  const deadline = performance.now() + CATCH_UP_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const statuses = await Promise.all(Array.from({ length: count }, async (_, member) => subject.raftStatus(member)));
    const commit = Math.max(...statuses.map((status) => status?.commitIndex ?? 0));
    if (statuses.every((status) => status !== undefined && status.appliedIndex >= commit)) return;
    await sleep(100);
  }
  throw new Error(`${subject.cluster.name}: members did not catch up within ${CATCH_UP_TIMEOUT_MS} ms`);
}

async function memberMemory(subject: MillionSubject, rssEmptyMiB: readonly number[]): Promise<MemberMemory[]> {
  const leader = await subject.cluster.leaderMember();
  const pids = subject.cluster.pids();
  const dirs = subject.dataDirs();
  return Promise.all(pids.map(async (pid, member) => {
    const memory = processMemoryMiB(pid);
    const status = await subject.raftStatus(member);
    return {
      member,
      role: member === leader ? 'leader' : 'follower',
      rssEmptyMiB: rssEmptyMiB[member] ?? Number.NaN,
      rssMiB: memory?.rss ?? Number.NaN,
      peakRssMiB: memory?.peak ?? Number.NaN,
      dataDirMiB: round(directoryBytes(dirs[member] ?? '') / MIB),
      raft: status?.details ?? {},
    };
  }));
}

/** The highest commit index any live member reports. */
async function commitIndex(subject: MillionSubject): Promise<number> {
  const count = subject.cluster.clientUrls.length;
  const statuses = await Promise.all(Array.from({ length: count }, async (_, member) => subject.raftStatus(member).catch(() => undefined)));
  return Math.max(0, ...statuses.map((status) => status?.commitIndex ?? 0));
}

/** Kills and restarts one follower; `expected` null: readiness needs no key (the empty baseline). */
async function restartFollower(subject: MillionSubject, kind: 'follower-empty' | 'follower', key: number, expected: string | null): Promise<RestartReport> {
  const { cluster } = subject;
  const leader = await cluster.leaderMember();
  if (leader === undefined) throw new Error(`${cluster.name}: no leader before the follower kill`);
  const member = (leader + 1) % cluster.clientUrls.length;
  const preKillCommitIndex = await commitIndex(subject);
  await cluster.killMember(member);
  const started = { ms: performance.now(), epochMs: Date.now() };
  await cluster.restartMember(member);
  const restart = await timeRestart(subject, member, started, preKillCommitIndex, key, expected);
  return { kind, killedMembers: [member], preKillCommitIndex, members: [restart], readyMs: restart.readyMs, firstWriteMs: null };
}

async function restartCluster(subject: MillionSubject, key: number, expected: string): Promise<RestartReport> {
  const { cluster } = subject;
  const members = cluster.clientUrls.map((_, member) => member);
  const preKillCommitIndex = await commitIndex(subject);
  await Promise.all(members.map(async (member) => cluster.killMember(member)));
  const started = { ms: performance.now(), epochMs: Date.now() };
  for (const member of members) await cluster.restartMember(member);
  const firstWrite = timeFirstWrite(subject, started.ms);
  const restarts = await Promise.all(members.map(async (member) => timeRestart(subject, member, started, preKillCommitIndex, key, expected)));
  const readies = restarts.map((restart) => restart.readyMs);
  const readyMs = readies.some((ready) => ready === null) ? null : Math.max(...readies.map((ready) => ready ?? 0));
  return { kind: 'cluster', killedMembers: members, preKillCommitIndex, members: restarts, readyMs, firstWriteMs: await firstWrite };
}

/** Polls a restarted member until it serves, has applied `targetIndex`, and reads `key` right. */
async function timeRestart(subject: MillionSubject, member: number, started: { ms: number; epochMs: number }, targetIndex: number, key: number, expected: string | null): Promise<MemberRestart> {
  const startedMs = started.ms;
  const elapsed = (): number => round(performance.now() - startedMs);
  let serveMs: number | null = null;
  let appliedAtServe: number | null = null;
  let appliedMs: number | null = null;
  let readyMs: number | null = null;
  let last: RaftStatus | undefined;
  while (performance.now() - startedMs < RESTART_TIMEOUT_MS) {
    last = await subject.raftStatus(member).catch(() => undefined);
    if (last !== undefined) {
      if (serveMs === null) {
        serveMs = elapsed();
        appliedAtServe = last.appliedIndex;
      }
      if (appliedMs === null && last.appliedIndex >= targetIndex) appliedMs = elapsed();
      if (appliedMs !== null && (expected === null || (await subject.readLocal(member, key).catch(() => undefined)) === expected)) {
        readyMs = elapsed();
        break;
      }
    }
    await sleep(READY_POLL_MS);
  }
  return { member, serveMs, appliedAtServe, appliedMs, readyMs, raftAfter: last?.details ?? {}, milestones: subject.restartMilestones(member, started.epochMs) };
}

async function timeFirstWrite(subject: MillionSubject, startedMs: number): Promise<number | null> {
  const count = subject.cluster.clientUrls.length;
  for (let attempt = 0; performance.now() - startedMs < RESTART_TIMEOUT_MS; attempt++) {
    if (await subject.probeWrite(attempt % count).catch(() => false)) return round(performance.now() - startedMs);
    await sleep(READY_POLL_MS);
  }
  return null;
}

// ------------------------------------------------------------------------------------------
// The two subjects

/** A log line's leading timestamp (Conclave: ISO with Z; etcd 3.4's capnslog: `YYYY-MM-DD HH:MM:SS.ffffff`, UTC here). */
const LOG_TIMESTAMP = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d(?:\.\d+)?)Z?/;

/** For each milestone, ms after `sinceEpochMs` of the first log line after it that matches. */
export function logMilestones(logPath: string, sinceEpochMs: number, patterns: Readonly<Record<string, RegExp>>): Record<string, number> {
  let text: string;
  try {
    text = readFileSync(logPath, 'utf8');
  } catch {
    return {};
  }
  const found: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const stamp = LOG_TIMESTAMP.exec(line);
    if (stamp === null) continue;
    const atMs = Date.parse(`${stamp[1]}T${(stamp[2] ?? '').slice(0, 12)}Z`);
    if (!(atMs >= sinceEpochMs)) continue;
    for (const [name, pattern] of Object.entries(patterns)) {
      if (found[name] === undefined && pattern.test(line)) found[name] = atMs - sinceEpochMs;
    }
  }
  return found;
}

/** What a Conclave server's start looks like in its log. */
const CONCLAVE_MILESTONES: Readonly<Record<string, RegExp>> = {
  'server port listening (storage loaded, snapshot restored)': /transport: listening on the server port/,
  'http listening': /http: Server listening at/,
  'raft role changed': /raft role changed/,
};

/** etcd 3.4's. */
const ETCD_MILESTONES: Readonly<Record<string, RegExp>> = {
  'recovered store from snapshot': /recovered store from snapshot/,
  'ready to serve client requests': /ready to serve client requests/,
  'raft leader known': /elected leader|became leader/,
};

/** Conclave (Consul API): `/v1/txn` sets, `?stale` reads, `/v1/debug/raft`. */
export function conclaveSubject(cluster: BenchCluster, dataDirs: readonly string[]): MillionSubject {
  const url = (member: number): string => cluster.clientUrls[member] ?? '';
  return {
    cluster,
    dataDirs: () => [...dataDirs],
    async writeBatch(http, endpoint, indexes, valueBytes) {
      const body = JSON.stringify(indexes.map((index) => ({
        KV: { Verb: 'set', Key: benchKey(index), Value: Buffer.from(millionValue(index, valueBytes), 'latin1').toString('base64') },
      })));
      const reply = await http.request(endpoint, 'PUT', '/v1/txn', body);
      if ('error' in reply) return { ok: false, error: reply.error };
      // The text says why (no leader, leadership lost, overloaded): worth a kind of its own here.
      if (reply.status !== 200) return { ok: false, error: `${statusError(reply)} ${reply.text.trim().slice(0, 80)}` };
      const parsed = parseJson(reply.text);
      if (!isRecord(parsed) || !Array.isArray(parsed['Results']) || parsed['Results'].length !== indexes.length) return { ok: false, error: 'body:not-txn-results' };
      return { ok: true };
    },
    async readLocal(member, index) {
      const reply = await controlRequest(`${url(member)}/v1/kv/${keyPath(benchKey(index))}?stale`, 'GET');
      if (reply.status !== 200) return undefined;
      const entries = parseJson(reply.text);
      const entry: unknown = Array.isArray(entries) ? entries[0] : undefined;
      if (!isRecord(entry) || typeof entry['Value'] !== 'string') return undefined;
      return Buffer.from(entry['Value'], 'base64').toString('latin1');
    },
    async raftStatus(member) {
      const reply = await controlRequest(`${url(member)}/v1/debug/raft`, 'GET');
      if (reply.status !== 200) return undefined;
      const status = parseJson(reply.text);
      if (!isRecord(status) || typeof status['commitIndex'] !== 'number' || typeof status['appliedIndex'] !== 'number') return undefined;
      const stats = isRecord(status['stats']) ? status['stats'] : {};
      const details: Record<string, number | string> = {};
      for (const name of ['role', 'term', 'commitIndex', 'appliedIndex', 'snapshotIndex', 'firstIndex', 'lastIndex']) {
        const value = status[name];
        if (typeof value === 'number' || typeof value === 'string') details[name] = value;
      }
      if (typeof stats['entriesApplied'] === 'number') details['entriesAppliedSinceStart'] = stats['entriesApplied'];
      return { commitIndex: status['commitIndex'], appliedIndex: status['appliedIndex'], details };
    },
    async probeWrite(member) {
      const reply = await controlRequest(`${url(member)}/v1/kv/bench-scale-probe`, 'PUT', 'probe');
      return reply.status === 200 && reply.text.trim() === 'true';
    },
    // conclave.ts writes each server's log beside its data dir: <root>/<name>.log.
    restartMilestones: (member, sinceEpochMs) => logMilestones(`${dataDirs[member] ?? ''}.log`, sinceEpochMs, CONCLAVE_MILESTONES),
  };
}

/** etcd (v3 JSON gateway): txn of puts, serializable range, `/v3/maintenance/status`. */
export function etcdSubject(cluster: BenchCluster, dataDirs: readonly string[]): MillionSubject {
  const url = (member: number): string => cluster.clientUrls[member] ?? '';
  const base64 = (text: string): string => Buffer.from(text, 'latin1').toString('base64');
  return {
    cluster,
    dataDirs: () => [...dataDirs],
    async writeBatch(http, endpoint, indexes, valueBytes) {
      const body = JSON.stringify({
        success: indexes.map((index) => ({ request_put: { key: base64(benchKey(index)), value: base64(millionValue(index, valueBytes)) } })),
      });
      const reply = await http.request(endpoint, 'POST', '/v3/kv/txn', body);
      if ('error' in reply) return { ok: false, error: reply.error };
      if (reply.status !== 200) return { ok: false, error: statusError(reply) };
      const parsed = parseJson(reply.text);
      if (!isRecord(parsed) || parsed['succeeded'] !== true) return { ok: false, error: 'body:not-succeeded' };
      return { ok: true };
    },
    async readLocal(member, index) {
      const reply = await controlRequest(`${url(member)}/v3/kv/range`, 'POST', JSON.stringify({ key: base64(benchKey(index)), serializable: true }));
      if (reply.status !== 200) return undefined;
      const parsed = parseJson(reply.text);
      const kvs = isRecord(parsed) ? parsed['kvs'] : undefined;
      const kv: unknown = Array.isArray(kvs) ? kvs[0] : undefined;
      if (!isRecord(kv) || typeof kv['value'] !== 'string') return undefined;
      return Buffer.from(kv['value'], 'base64').toString('latin1');
    },
    async raftStatus(member) {
      const reply = await controlRequest(`${url(member)}/v3/maintenance/status`, 'POST', '{}');
      if (reply.status !== 200) return undefined;
      const status = parseJson(reply.text);
      if (!isRecord(status)) return undefined;
      const commitIndex = Number(status['raftIndex']);
      const appliedIndex = Number(status['raftAppliedIndex']);
      if (!Number.isSafeInteger(commitIndex) || !Number.isSafeInteger(appliedIndex)) return undefined;
      const details: Record<string, number | string> = { commitIndex, appliedIndex };
      if (status['dbSize'] !== undefined) details['dbSizeMiB'] = round(Number(status['dbSize']) / MIB);
      return { commitIndex, appliedIndex, details };
    },
    async probeWrite(member) {
      const reply = await controlRequest(`${url(member)}/v3/kv/put`, 'POST', JSON.stringify({ key: base64('bench-scale-probe'), value: base64('probe') }));
      return reply.status === 200;
    },
    restartMilestones: (member, sinceEpochMs) => logMilestones(`${dataDirs[member] ?? ''}.log`, sinceEpochMs, ETCD_MILESTONES),
  };
}
