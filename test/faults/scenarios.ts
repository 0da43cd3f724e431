import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FaultCluster } from './fault-cluster.js';
import type { RaftSample } from './checks.js';
import { decodeValue, delay, httpCall, parseEntries } from './http-ops.js';
import type { HttpResult } from './http-ops.js';

/**
 * Scripted Tier 2 scenarios shared by the tests and their positive controls: the zombie leader,
 * leader-kill timing, and the crash-restart vote scenario. Each returns what it measured; the
 * test decides what must hold.
 */

/** Election timeout of FAULT_CONFIG, and its randomized maximum (2×). */
export const ELECTION_TIMEOUT_MS = 1000;
export const ELECTION_TIMEOUT_MAX_MS = 2 * ELECTION_TIMEOUT_MS;

/** Writes `value` to `key` through any running server until one acknowledges it. */
export async function writeUntilOk(fc: FaultCluster, key: string, value: string, among: readonly string[], deadlineMs = 30_000): Promise<string> {
  const deadline = Date.now() + deadlineMs;
  for (let k = 0; Date.now() < deadline; k++) {
    const node = among[k % among.length] as string;
    const result = await httpCall(fc.dispatcher, `${fc.url(node)}/v1/kv/${key}`, 'PUT', value, 3000);
    if (result.kind === 'reply' && result.status === 200 && result.body.trim() === 'true') return node;
    await delay(100);
  }
  throw new Error(`could not write ${key}=${value} through ${among.join(',')}`);
}

/** The value a GET reply carries: the string, null for 404, undefined when it failed. */
export function readValue(result: HttpResult): string | null | undefined {
  if (result.kind !== 'reply') return undefined;
  if (result.status === 404) return null;
  if (result.status !== 200) return undefined;
  const entry = parseEntries(result.body)?.[0];
  return entry === undefined ? undefined : decodeValue(entry.Value);
}

export interface ZombieTrial {
  readonly oldLeader: string;
  readonly newLeader: string | null;
  /** The last acknowledged value while the old leader was paused. */
  readonly latest: string;
  readonly defaultRead: string | null | undefined;
  readonly consistentRead: string | null | undefined;
  /** The read returned a value that an acknowledged write had replaced before the read began. */
  readonly staleDefault: boolean;
  readonly staleConsistent: boolean;
  readonly details: string;
}

/**
 * The zombie leader (RELIABILITY.md Tier 2): SIGSTOP the leader for `pauseMs` (3 election
 * timeouts) while the others elect a leader and take writes, then send the old leader a default
 * and a `?consistent` GET and SIGCONT it: the requests are already waiting in its socket when it
 * wakes ("at once" at its strongest). With `isolateInbound`, nothing reaches the old leader after
 * it wakes (its peers' higher-term messages are held by the proxy), so only its own leader check
 * can stop it from answering from its stale state.
 *
 * Stale means: the value was replaced by an acknowledged write before the reads were sent. A
 * write that timed out (it went to the paused leader) may still land after SIGCONT, so a read of
 * its value is not stale.
 */
export async function zombieTrial(fc: FaultCluster, key: string, trial: number, options: { pauseMs: number; isolateInbound: boolean }): Promise<ZombieTrial> {
  const leader = await fc.settle(60_000);
  const before = `before-${trial}`;
  await writeUntilOk(fc, key, before, [leader]);
  const others = fc.names.filter((n) => n !== leader);
  await fc.cluster.kill(leader, 'SIGSTOP');
  const acked: string[] = [before];
  const pausedAt = Date.now();
  let defaultResult: Promise<HttpResult>;
  let consistentResult: Promise<HttpResult>;
  try {
    let serial = 0;
    while (Date.now() - pausedAt < options.pauseMs || acked.length === 1) {
      if (Date.now() - pausedAt > options.pauseMs + 60_000) throw new Error('no write got through while the leader was paused');
      serial++;
      const value = `during-${trial}-${serial}`;
      const result = await httpCall(fc.dispatcher, `${fc.url(others[serial % others.length] as string)}/v1/kv/${key}`, 'PUT', value, 2000);
      if (result.kind === 'reply' && result.status === 200 && result.body.trim() === 'true') acked.push(value);
      await delay(50);
    }
    if (options.isolateInbound) for (const other of others) fc.proxy.setLink(other, leader, { kind: 'blackhole' });
    defaultResult = httpCall(fc.dispatcher, `${fc.url(leader)}/v1/kv/${key}`, 'GET', null, 10_000);
    consistentResult = httpCall(fc.dispatcher, `${fc.url(leader)}/v1/kv/${key}?consistent`, 'GET', null, 10_000);
    await delay(100); // the requests reach the paused process's socket
  } finally {
    await fc.cluster.kill(leader, 'SIGCONT');
  }
  const [defaultReply, consistentReply] = await Promise.all([defaultResult, consistentResult]);
  fc.proxy.heal();
  const latest = acked[acked.length - 1] as string;
  const replaced = new Set(acked.slice(0, -1));
  const defaultRead = readValue(defaultReply);
  const consistentRead = readValue(consistentReply);
  const newLeader = await fc.leader();
  const describe = (r: HttpResult): string => (r.kind === 'reply' ? `${r.status} ${r.body.slice(0, 120)}` : r.message);
  return {
    oldLeader: leader, newLeader, latest, defaultRead, consistentRead,
    staleDefault: typeof defaultRead === 'string' && replaced.has(defaultRead),
    staleConsistent: typeof consistentRead === 'string' && replaced.has(consistentRead),
    details: `old leader ${leader}, latest acknowledged ${latest}; default GET: ${describe(defaultReply)}; consistent GET: ${describe(consistentReply)}`,
  };
}

export interface IsolatedLeaderTrial {
  /** The isolated server still called itself leader after the majority took a newer write. */
  readonly staged: boolean;
  readonly consistentRead: string | null | undefined;
  /** The `?consistent` read returned the value the majority's acknowledged write had replaced. */
  readonly staleConsistent: boolean;
  readonly defaultRead: string | null | undefined;
  /**
   * The default (lease) read returned it: the zombie's lease outlived the others' guards (its
   * election timeout is longer than theirs; the lease must follow theirs).
   */
  readonly staleDefault: boolean;
  readonly details: string;
}

/**
 * A zombie leader without timing races, for the read-without-leader-check control: `zombie` is
 * configured with a long election timeout (so its check-quorum step-down is far away: nothing in
 * this scenario waits for it), made leader by a leadership transfer, and then cut off in both
 * directions. The majority elects a leader among itself (short timeouts) and acknowledges a newer
 * write; the zombie, still leader in its own view, gets a `?consistent` GET. A correct server
 * must confirm leadership with a quorum round first, which cannot succeed — an error or a hang,
 * never the replaced value. Only `?consistent` is judged: the leader lease is counted in the
 * leader's own election timeout, which is only safe when every server uses the same one.
 */
export async function isolatedLeaderTrial(fc: FaultCluster, zombie: string, key: string): Promise<IsolatedLeaderTrial> {
  const others = fc.names.filter((n) => n !== zombie);
  const zombieId = fc.nodeIds.get(zombie) as string;
  await fc.settle(60_000);
  await fc.cluster.waitFor(`${zombie} to lead after a transfer`, async () => {
    const status = await fc.raft(zombie, 1000);
    if (status?.role === 'leader') return true;
    await httpCall(fc.dispatcher, `${fc.url(others[0] as string)}/v1/operator/raft/transfer-leader?id=${zombieId}`, 'PUT', '', 5000);
    await delay(300);
    return undefined;
  }, 60_000);
  const before = 'before-isolation';
  await writeUntilOk(fc, key, before, [zombie]);
  await fc.settle(30_000); // every server applied `before`
  for (const other of others) fc.proxy.setPair(zombie, other, { kind: 'blackhole' });
  const after = 'after-isolation';
  await writeUntilOk(fc, key, after, others, 60_000);
  const status = await fc.raft(zombie, 2000);
  const staged = status?.role === 'leader';
  const [reply, defaultReply] = await Promise.all([
    httpCall(fc.dispatcher, `${fc.url(zombie)}/v1/kv/${key}?consistent`, 'GET', null, 8000),
    httpCall(fc.dispatcher, `${fc.url(zombie)}/v1/kv/${key}`, 'GET', null, 8000),
  ]);
  fc.proxy.heal();
  const consistentRead = readValue(reply);
  const defaultRead = readValue(defaultReply);
  const describe = (r: typeof reply): string => (r.kind === 'reply' ? `${r.status} ${r.body.slice(0, 120)}` : r.message);
  return {
    staged, consistentRead, defaultRead,
    staleConsistent: consistentRead === before,
    staleDefault: defaultRead === before,
    details: `${zombie} ${staged ? 'still led' : `was ${status?.role ?? 'unreachable'}`} (term ${status?.term}) after the majority acknowledged ${after}; its ?consistent GET: ${describe(reply)}; its default GET: ${describe(defaultReply)}`,
  };
}

export interface FailoverTrial {
  readonly killed: string;
  /** SIGKILL → a survivor names a new leader and a `?consistent` GET succeeds there. */
  readonly timeToLeaderMs: number;
  /** Last acknowledged write before the kill → first one after it. */
  readonly unavailableMs: number;
}

/**
 * Leader-kill timing (RELIABILITY.md Tier 2): a PUT every 20 ms (500 ms timeout), round-robin to
 * the survivors; kill -9 the leader; measure time to a usable leader and the write gap; restart
 * the old leader and wait until it caught up.
 */
export async function failoverTrial(fc: FaultCluster, trial: number): Promise<FailoverTrial> {
  const leader = await fc.settle(90_000);
  const survivors = fc.names.filter((n) => n !== leader);
  const acks: number[] = [];
  const stop = { done: false };
  const writer = (async () => {
    for (let k = 0; !stop.done; k++) {
      const node = survivors[k % survivors.length] as string;
      const started = performance.now();
      const result = await httpCall(fc.dispatcher, `${fc.url(node)}/v1/kv/failover/t${trial}`, 'PUT', String(k), 500);
      if (result.kind === 'reply' && result.status === 200 && result.body.trim() === 'true') acks.push(performance.now());
      const spent = performance.now() - started;
      if (spent < 20) await delay(20 - spent);
    }
  })();
  // Writes must be flowing before the kill.
  const warm = Date.now();
  while (acks.length < 5 && Date.now() - warm < 20_000) await delay(20);
  const killedAt = performance.now();
  await fc.cluster.kill(leader, 'SIGKILL');
  let timeToLeaderMs = Number.NaN;
  const deadline = Date.now() + 60_000;
  const leaderAddress = `127.0.1.${fc.names.indexOf(leader) + 1}:${fc.cluster.agent(leader).serverPort}`;
  while (Date.now() < deadline) {
    const named = await Promise.all(survivors.map(async (node) => {
      const reply = await httpCall(fc.dispatcher, `${fc.url(node)}/v1/status/leader`, 'GET', null, 500);
      return reply.kind === 'reply' && reply.status === 200 ? (JSON.parse(reply.body) as string) : '';
    }));
    const candidate = named.find((address) => address !== '' && address !== leaderAddress);
    if (candidate !== undefined) {
      const port = Number(candidate.split(':').pop());
      const newLeader = fc.names.find((n) => fc.cluster.agent(n).serverPort === port);
      if (newLeader !== undefined) {
        const read = await httpCall(fc.dispatcher, `${fc.url(newLeader)}/v1/kv/failover/t${trial}?consistent`, 'GET', null, 1000);
        if (read.kind === 'reply' && (read.status === 200 || read.status === 404)) {
          timeToLeaderMs = performance.now() - killedAt;
          break;
        }
      }
    }
    await delay(20);
  }
  // Let the writer see the first acknowledgement after the kill.
  const waitAck = Date.now();
  while (!acks.some((t) => t > killedAt) && Date.now() - waitAck < 30_000) await delay(20);
  stop.done = true;
  await writer;
  const before = acks.filter((t) => t <= killedAt).pop() ?? killedAt;
  const after = acks.find((t) => t > killedAt) ?? Number.NaN;
  fc.cluster.start(leader);
  return { killed: leader, timeToLeaderMs, unavailableMs: after - before };
}

/** p-th percentile (nearest rank) of finite values. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = values.filter(Number.isFinite).slice().sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export interface Distribution {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export function distribution(values: readonly number[]): Distribution {
  const finite = values.filter(Number.isFinite);
  return {
    n: finite.length,
    p50: Math.round(percentile(finite, 50)),
    p90: Math.round(percentile(finite, 90)),
    p99: Math.round(percentile(finite, 99)),
    max: Math.round(Math.max(...finite)),
  };
}

/**
 * vote-not-persisted's stage (engineered: a random schedule hits it too rarely). Servers A, B and
 * C, where C (the third server) has a long election timeout so it rarely campaigns itself:
 * 1. the cluster forms under leader B (one of the other two; if C leads, the run is not staged);
 *    then A↔B is cut both ways and C→B one way: B hears nobody, so its term stays put while its
 *    pre-votes still reach C;
 * 2. A becomes leader in a new term T with C's vote;
 * 3. A→C is cut, C is killed (-9) and restarted, and C→B healed.
 * A C that remembers its vote for A refuses B's pre-vote in T (B then moves to T+1: no harm); a
 * C that forgot it (CONCLAVE_TEST_BUG=vote-not-persisted) grants B's pre-vote and vote in T —
 * two leaders in one term, which checkLeaders reports from the /v1/debug/raft samples.
 */
export async function voteScenario(fc: FaultCluster, options: { sampleEveryMs?: number; holdMs?: number } = {}): Promise<{ samples: RaftSample[]; notes: string[]; staged: boolean; bLedInATerm?: boolean }> {
  const [s1, s2, c] = fc.names as [string, string, string];
  const samples: RaftSample[] = [];
  const notes: string[] = [];
  const t0 = performance.now();
  const stop = { done: false };
  const sampler = (async () => {
    while (!stop.done) {
      const polled = await Promise.all(fc.names.map((n) => fc.raft(n, 500)));
      for (const s of polled) if (s !== null) samples.push({ ...s, t: performance.now() - t0 });
      await delay(options.sampleEveryMs ?? 50);
    }
  })();
  const waitFor = async (what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (await check()) return;
      await delay(50);
    }
    throw new Error(`vote scenario: timed out waiting for ${what}`);
  };
  try {
    fc.startAll();
    const first = await fc.settle(90_000);
    await delay(1000); // every log catches up
    const startTerm = (await fc.raft(first))?.term ?? 0;
    if (first === c) {
      notes.push('C led first: not staged');
      return { samples, notes, staged: false };
    }
    // The first leader is B: cut off, it stays in its term while A wins the next one. (Killing
    // the first leader to force an election closed its connections, and C, told its leader's
    // connection closed, campaigned as soon as its guard allowed and split the vote with A.)
    const b = first;
    const a = first === s1 ? s2 : s1;
    fc.proxy.setPair(a, b, { kind: 'blackhole' });
    fc.proxy.setLink(c, b, { kind: 'blackhole' });
    // A's messages to C arrive late, so A's first entry of the new term can be held back before
    // C sees it (else C's log would be ahead of B's and refuse B for that reason alone).
    fc.proxy.setLink(a, c, { kind: 'delay', ms: 600, jitterMs: 0 });
    let term = 0;
    try {
      await waitFor(`${a} to lead in a term above ${startTerm}`, async () => {
        const status = await fc.raft(a, 300);
        term = status?.term ?? 0;
        return status?.role === 'leader' && term > startTerm;
      }, 30_000);
    } catch {
      notes.push(`${a} did not win a new term in time: not staged`);
      return { samples, notes, staged: false };
    }
    fc.proxy.setLink(a, c, { kind: 'blackhole' });
    const bStatus = await fc.raft(b);
    const bTerm = bStatus?.term ?? 0;
    const cStatus = await fc.raft(c);
    // Staged only if C holds no entry of A's new term (B's log is as long as C's): otherwise C
    // would refuse B on the up-to-date rule alone and the bug could not show.
    const logsEven = cStatus !== null && bStatus !== null && cStatus.lastIndex <= bStatus.lastIndex;
    notes.push(`first leader ${first} (term ${startTerm}); ${a} leads term ${term} with ${c}'s vote; ${b} is at term ${bTerm}; ${c} at term ${cStatus?.term} applied ${cStatus?.appliedIndex}`);
    await fc.cluster.kill(c, 'SIGKILL');
    fc.cluster.start(c);
    fc.proxy.setLink(c, b, { kind: 'pass' });
    notes.push(`${c} killed and restarted with ${a}→${c} cut; ${c}→${b} healed`);
    // Hold until B or C leads (A, cut off, cannot lead past its term). Only B's candidacy in A's
    // term tests C's vote; if C's own timer won the race (it campaigns for the next term), the
    // run is not staged and the caller tries a fresh cluster — on a loaded machine C's restart
    // can take longer than B's election timeout.
    const newLeader = await (async (): Promise<string | null> => {
      const deadline = Date.now() + (options.holdMs ?? 30_000);
      while (Date.now() < deadline) {
        for (const name of [b, c]) {
          const status = await fc.raft(name, 500);
          if (status?.role === 'leader') return name;
        }
        await delay(50);
      }
      return null;
    })();
    await delay(500); // the sampler sees the new leader's followers too
    notes.push(newLeader === null ? `neither ${b} nor ${c} led within the hold` : `${newLeader} led next`);
    const bLedIn = newLeader === b ? ((await fc.raft(b, 500))?.term ?? null) : null;
    if (bLedIn !== null) notes.push(`${b} led in term ${bLedIn} (${a}'s term ${term})`);
    return { samples, notes, staged: bTerm === term - 1 && logsEven && newLeader === b, bLedInATerm: bLedIn === term };
  } finally {
    stop.done = true;
    await sampler;
    fc.proxy.heal();
  }
}

/** Writes a small JSON file of figures next to a suite's summary. */
export function writeJson(dir: string, name: string, value: unknown): void {
  writeFileSync(join(dir, name), `${JSON.stringify(value, null, 2)}\n`);
}
