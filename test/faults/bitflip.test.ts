import t from 'tap';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Prng } from '../../src/lib/prng.js';
import { DATA_FILE_KINDS, flipBits, FLIPS_PER_FILE_MAX, FLIPS_PER_FILE_MIN, listDataFiles, pickDataFile } from './bitflip.js';
import type { BitFlip, DataFileKind } from './bitflip.js';
import { FaultCluster } from './fault-cluster.js';
import { decodeValue, delay, httpCall, parseEntries } from './http-ops.js';
import { reportSuiteTotals } from './suite-summary.js';

/**
 * Bit flips in a stopped server's data directory (RELIABILITY.md Tier 3 "Bitflip", here on the
 * Tier 2 harness; CORDS, FAST'17). Each round writes a batch of unique keys through the cluster,
 * kill -9s one server, flips 1–8 bits of one file of its data dir (LevelDB's write-ahead log,
 * tables, MANIFEST and CURRENT, snapshot files, node and cluster id...) and restarts it. The
 * server must either refuse to start with a message that names the problem, or come up and
 * never serve data that differs from what the cluster acknowledged; the other two keep taking
 * writes and `?consistent` reads throughout. A server that refused is wiped and rejoins as a new
 * member (cluster-formation.ts "replacing a server whose data was wiped"), so every round starts
 * from 3 healthy servers with equal state hashes.
 *
 * `CONCLAVE_BITFLIP_ROUNDS` (default 6) for a soak; `CONCLAVE_BITFLIP_SEED` replays a run's
 * choices of server, file and bits (the files themselves differ from run to run).
 */
const ROUNDS = Number(process.env.CONCLAVE_BITFLIP_ROUNDS ?? 6);
const SEED = BigInt(process.env.CONCLAVE_BITFLIP_SEED ?? `0x${randomUUID().replaceAll('-', '').slice(0, 12)}`);
const KEYS_PER_ROUND = 24;
const WRITE_CONCURRENCY = 6;
/** Small, so every server has snapshot files and a compacted log to flip bits in. */
const SNAPSHOT_CONFIG = { raft_snapshot_threshold: 32, raft_trailing_logs: 16, log_level: 'info' };
/** From restart to "serving /v1/debug/raft" or "exited", on a loaded 2-core box. */
const START_TIMEOUT_MS = 30_000;
const CATCH_UP_TIMEOUT_MS = 60_000;
const HEALTHY_TIMEOUT_MS = 90_000;
const LIVENESS_TIMEOUT_MS = 45_000;
/** Storage warnings that mean the server dropped some of its state at load and takes it from the leader. */
const RESYNC_WARNING = /passed over a corrupt snapshot|finishing a snapshot install/;

type Outcome =
  | 'refused' // exited at start, with a message naming the problem, and again at the next start
  | 'refused-then-up' // refused once, came up at the next start (data then checked like any)
  | 'up-clean' // came up with everything it had
  | 'up-resynced' // came up without some of its state and caught up from the leader
  | 'hung' // neither served nor exited within START_TIMEOUT_MS
  | 'exited-after-start' // served, then died during the round
  | 'stuck'; // served, but never caught up with the cluster

interface RoundFigures {
  readonly round: number;
  readonly victim: string;
  readonly victimRole: string;
  readonly file: string;
  readonly kind: DataFileKind;
  readonly fileBytes: number;
  readonly flips: readonly BitFlip[];
  outcome: Outcome | null;
  exitCode: number | null;
  /** The `==> Error:` line of a refusal. */
  message: string | null;
  /** Keys read back from the victim with ?stale (twice: as it came up, once caught up). */
  readsChecked: number;
  corruptReads: string[];
  clusterStayedUp: boolean;
  hashesEqual: boolean;
  wipedAndRejoined: boolean;
  durationMs: number;
}

const rounds: RoundFigures[] = [];
const figures: Record<string, unknown> = { seed: `0x${SEED.toString(16)}`, rounds };
reportSuiteTotals(t, 'faults-bitflip', figures);
t.setTimeout(600_000);

const ERROR_LINE = /^==> Error: .*$/m;

interface RaftConfigurationServer {
  readonly ID: string;
  readonly Address: string;
  readonly Voter: boolean;
}

/** A key's value on `name`: the string, null for 404, undefined when the read failed. */
async function readKey(fc: FaultCluster, name: string, key: string, mode: 'stale' | 'consistent'): Promise<string | null | undefined> {
  const result = await httpCall(fc.dispatcher, `${fc.url(name)}/v1/kv/${key}?${mode}`, 'GET', null, 5000);
  if (result.kind !== 'reply') return undefined;
  if (result.status === 404) return null;
  if (result.status !== 200) return undefined;
  const entry = parseEntries(result.body)?.[0];
  return entry === undefined ? undefined : decodeValue(entry.Value);
}

/** PUTs `key=value` through the servers in turn until one acknowledges it; false at the deadline. */
async function writeAcknowledged(fc: FaultCluster, key: string, value: string, among: readonly string[], deadlineMs: number): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    const name = among[attempt % among.length] as string;
    const result = await httpCall(fc.dispatcher, `${fc.url(name)}/v1/kv/${key}`, 'PUT', value, 5000);
    if (result.kind === 'reply' && result.status === 200 && result.body.trim() === 'true') return true;
    await delay(200);
  }
  return false;
}

/** Writes KEYS_PER_ROUND unique keys through the running servers; the acknowledged ones go into `acknowledged`. */
async function writeBatch(fc: FaultCluster, round: number, acknowledged: Map<string, string>): Promise<number> {
  const running = fc.names.filter((name) => fc.running(name));
  let next = 0;
  let count = 0;
  const worker = async (): Promise<void> => {
    while (next < KEYS_PER_ROUND) {
      const k = next++;
      const key = `bitflip/r${round}/k${k}`;
      const value = `r${round}-k${k}-${randomUUID()}`;
      // One value per key, resent as is: a retry of an unknown outcome cannot make two values.
      if (await writeAcknowledged(fc, key, value, [...running.slice(k % running.length), ...running.slice(0, k % running.length)], 30_000)) {
        acknowledged.set(key, value);
        count++;
      }
    }
  };
  await Promise.all(Array.from({ length: WRITE_CONCURRENCY }, () => worker()));
  return count;
}

/**
 * Reads every acknowledged key from `name` with `?stale` (its local state). A value that is not
 * the acknowledged one is corrupt at any time (each key was written once, with one value); a
 * missing key is corrupt once the server has applied past every acknowledgement (`caughtUp`).
 */
async function checkServedData(fc: FaultCluster, name: string, acknowledged: ReadonlyMap<string, string>, caughtUp: boolean): Promise<{ checked: number; corrupt: string[]; unread: number }> {
  const keys = [...acknowledged.keys()];
  const corrupt: string[] = [];
  let checked = 0;
  let unread = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++] as string;
      const expected = acknowledged.get(key);
      const value = await readKey(fc, name, key, 'stale');
      if (value === undefined) {
        unread++;
        continue;
      }
      checked++;
      if (value === null && caughtUp) corrupt.push(`${name} ${key}: missing, acknowledged ${String(expected)}`);
      if (value !== null && value !== expected) corrupt.push(`${name} ${key}: served ${JSON.stringify(value)}, acknowledged ${String(expected)}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, () => worker()));
  return { checked, corrupt, unread };
}

/**
 * The cluster stays up: through each of `survivors`, a write and a `?consistent` read of it
 * succeed within LIVENESS_TIMEOUT_MS (an election after killing the leader included).
 */
async function clusterServes(fc: FaultCluster, survivors: readonly string[], label: string, acknowledged: Map<string, string>): Promise<string[]> {
  const failures: string[] = [];
  for (const name of survivors) {
    const key = `bitflip/live/${label}/${name}`;
    const value = `${label}-${name}-${randomUUID()}`;
    if (!(await writeAcknowledged(fc, key, value, [name], LIVENESS_TIMEOUT_MS))) {
      failures.push(`${label}: no write acknowledged through ${name}`);
      continue;
    }
    acknowledged.set(key, value);
    const deadline = Date.now() + LIVENESS_TIMEOUT_MS;
    let read: string | null | undefined;
    while (Date.now() < deadline) {
      read = await readKey(fc, name, key, 'consistent');
      if (read !== undefined) break;
      await delay(200);
    }
    if (read !== value) failures.push(`${label}: ?consistent read through ${name} gave ${JSON.stringify(read)}, wrote ${value}`);
  }
  return failures;
}

type StartResult = { readonly kind: 'up' } | { readonly kind: 'exited'; readonly code: number | null } | { readonly kind: 'hung' };

/** Starts `name` with fresh output capture and waits until it serves /v1/debug/raft or exits. */
async function startAndObserve(fc: FaultCluster, name: string): Promise<{ result: StartResult; exited: Promise<number | null> }> {
  const agent = fc.cluster.agent(name);
  agent.output = '';
  fc.cluster.start(name);
  const child = agent.process;
  if (child === null) throw new Error(`${name} did not spawn`);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    exitCode = code;
    resolve(code);
  }));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) return { result: { kind: 'exited', code: exitCode }, exited };
    if ((await fc.raft(name, 2000)) !== null) return { result: { kind: 'up' }, exited };
    await delay(100);
  }
  if (exitCode !== undefined) return { result: { kind: 'exited', code: exitCode }, exited };
  return { result: { kind: 'hung' }, exited };
}

/** The leader's commit index: every write acknowledged before this call is at or below it. */
async function clusterCommitIndex(fc: FaultCluster): Promise<number> {
  return fc.cluster.waitFor('a leader reporting its commit index', async () => {
    const leader = await fc.leader();
    if (leader === null) return undefined;
    return (await fc.raft(leader, 3000))?.commitIndex;
  }, HEALTHY_TIMEOUT_MS, 200);
}

/** Waits until `name` has applied `index`; false at the deadline or if it stopped running. */
async function waitApplied(fc: FaultCluster, name: string, index: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && fc.running(name)) {
    const sample = await fc.raft(name, 2000);
    if (sample !== null && sample.appliedIndex >= index) return true;
    await delay(200);
  }
  return false;
}

async function raftConfiguration(fc: FaultCluster, via: string): Promise<RaftConfigurationServer[] | null> {
  const result = await httpCall(fc.dispatcher, `${fc.url(via)}/v1/operator/raft/configuration`, 'GET', null, 5000);
  if (result.kind !== 'reply' || result.status !== 200) return null;
  return (JSON.parse(result.body) as { Servers: RaftConfigurationServer[] }).Servers;
}

/**
 * Wipes `name`'s data dir and restarts it under a new node id, as an operator replaces a server
 * whose disk went bad: the leader sees a new id at a known address, removes the old identity and
 * adds the new one (cluster-formation.ts). The old id must not come back with an empty log: it
 * could vote again in a term it already voted in (hashicorp/raft #661, Tier 1 "amnesia").
 */
async function wipeAndRejoin(fc: FaultCluster, name: string): Promise<void> {
  await fc.cluster.kill(name, 'SIGKILL');
  const agent = fc.cluster.agent(name);
  rmSync(agent.dataDir, { recursive: true, force: true });
  mkdirSync(agent.dataDir, { recursive: true });
  const nodeId = randomUUID();
  Object.assign(agent, { args: agent.args.map((arg) => (arg.startsWith('-node-id=') ? `-node-id=${nodeId}` : arg)) });
  agent.output = '';
  fc.cluster.start(name);
}

/** Each running server's /v1/debug/raft id, role, term, commit and applied index, for failure messages. */
async function raftStates(fc: FaultCluster): Promise<string> {
  const samples = await Promise.all(fc.names.map(async (name) => ({ name, sample: await fc.raft(name, 3000) })));
  return samples.map(({ name, sample }) => (sample === null ? `${name}: down` : `${name}: ${sample.id} ${sample.role} term ${sample.term} commit ${sample.commitIndex} applied ${sample.appliedIndex} last ${sample.lastIndex}`)).join('; ');
}

/** The cluster id a server recorded (first line of `<dataDir>/cluster-id`), or null. */
function recordedClusterId(fc: FaultCluster, name: string): string | null {
  try {
    return readFileSync(join(fc.cluster.agent(name).dataDir, 'cluster-id'), 'utf8').split('\n')[0] ?? null;
  } catch {
    return null;
  }
}

/**
 * Three running servers whose ids are the three voters of the configuration and which all
 * recorded the cluster id (a wiped server can rejoin only through servers that know it), every
 * server applied the leader's commit index, equal state hashes. Returns false on a timeout.
 */
async function waitHealthy(fc: FaultCluster): Promise<boolean> {
  try {
    await fc.cluster.waitFor('the running servers to be the three voters of the configuration, with one cluster id', async () => {
      const samples = await Promise.all(fc.names.map((name) => fc.raft(name, 2000)));
      if (samples.some((sample) => sample === null)) return undefined;
      const clusterIds = new Set(fc.names.map((name) => recordedClusterId(fc, name)));
      if (clusterIds.size !== 1 || clusterIds.has(null)) return undefined;
      const servers = await raftConfiguration(fc, fc.names[0] as string);
      const ids = new Set(samples.map((sample) => sample?.id));
      return servers !== null && servers.length === ids.size && servers.every((s) => s.Voter && ids.has(s.ID)) ? true : undefined;
    }, HEALTHY_TIMEOUT_MS, 300);
    await fc.settle(HEALTHY_TIMEOUT_MS);
    const { hashes } = await fc.compareLogHashes(HEALTHY_TIMEOUT_MS);
    return Object.keys(hashes).length === fc.names.length && new Set(Object.values(hashes)).size === 1;
  } catch (error) {
    const configuration = await raftConfiguration(fc, fc.names.find((name) => fc.running(name)) ?? 's1');
    const clusterIds = fc.names.map((name) => `${name}: ${String(recordedClusterId(fc, name))}`).join(', ');
    t.comment(`not healthy: ${(error as Error).message.split('\n')[0] ?? ''}\nraft: ${await raftStates(fc)}\nconfiguration: ${JSON.stringify(configuration)}\ncluster ids: ${clusterIds}`);
    for (const name of fc.names) t.comment(`--- ${name}\n${fc.cluster.agent(name).output.slice(-6000)}`);
    return false;
  }
}

/** One round: batch, kill, flip, restart, check, repair. Returns what it saw; asserts nothing. */
async function bitflipRound(fc: FaultCluster, prng: Prng, round: number, acknowledged: Map<string, string>): Promise<RoundFigures> {
  const started = Date.now();
  await writeBatch(fc, round, acknowledged);
  const victim = prng.pick(fc.names);
  const before = await fc.raft(victim, 5000);
  await fc.cluster.kill(victim, 'SIGKILL');
  const dataDir = fc.cluster.agent(victim).dataDir;
  const file = pickDataFile(listDataFiles(dataDir), prng);
  const flips = flipBits(join(dataDir, file.path), prng, prng.between(FLIPS_PER_FILE_MIN, FLIPS_PER_FILE_MAX));
  const seen: RoundFigures = {
    round, victim, victimRole: before?.role ?? 'unknown', file: file.path, kind: file.kind, fileBytes: file.bytes, flips,
    outcome: null, exitCode: null, message: null, readsChecked: 0, corruptReads: [], clusterStayedUp: false, hashesEqual: false,
    wipedAndRejoined: false, durationMs: 0,
  };
  const survivors = fc.names.filter((name) => name !== victim);
  const livenessFailures = await clusterServes(fc, survivors, `r${round}-down`, acknowledged);

  let { result, exited } = await startAndObserve(fc, victim);
  if (result.kind === 'exited') {
    seen.exitCode = result.code;
    seen.message = ERROR_LINE.exec(fc.cluster.agent(victim).output)?.[0] ?? null;
    // A refusal must be sticky: LevelDB may have rewritten its files at the first open.
    ({ result, exited } = await startAndObserve(fc, victim));
    seen.outcome = result.kind === 'exited' ? 'refused' : result.kind === 'up' ? 'refused-then-up' : 'hung';
  } else if (result.kind === 'hung') {
    seen.outcome = 'hung';
  }
  livenessFailures.push(...(await clusterServes(fc, survivors, `r${round}-restarted`, acknowledged)));
  seen.clusterStayedUp = livenessFailures.length === 0;

  if (result.kind === 'up') {
    const output = (): string => fc.cluster.agent(victim).output;
    const first = await fc.raft(victim, 5000);
    const asItCameUp = await checkServedData(fc, victim, acknowledged, false);
    const target = await clusterCommitIndex(fc);
    const caughtUp = await waitApplied(fc, victim, target, CATCH_UP_TIMEOUT_MS);
    const once = caughtUp ? await checkServedData(fc, victim, acknowledged, true) : { checked: 0, corrupt: [], unread: 0 };
    seen.readsChecked = asItCameUp.checked + once.checked;
    seen.corruptReads = [...asItCameUp.corrupt, ...once.corrupt];
    if (!fc.running(victim)) seen.outcome = 'exited-after-start';
    else if (!caughtUp) seen.outcome = 'stuck';
    else if (seen.outcome === null) {
      const lostState = first !== null && before !== null && first.lastIndex < before.lastIndex;
      seen.outcome = lostState || RESYNC_WARNING.test(output()) ? 'up-resynced' : 'up-clean';
    }
    if (seen.outcome === 'exited-after-start') seen.exitCode = await exited;
  }
  if (seen.outcome !== 'up-clean' && seen.outcome !== 'up-resynced') {
    if (seen.outcome !== 'refused') t.comment(`round ${round}: ${seen.outcome}; ${victim}'s output:\n${fc.cluster.agent(victim).output.slice(-4000)}`);
    await wipeAndRejoin(fc, victim);
    seen.wipedAndRejoined = true;
  }
  seen.hashesEqual = await waitHealthy(fc);
  seen.durationMs = Date.now() - started;
  if (livenessFailures.length > 0) t.comment(livenessFailures.join('\n'));
  return seen;
}

/** Per file kind: rounds that flipped it and what the server did. */
function summarizeByKind(all: readonly RoundFigures[]): Record<string, Record<string, number>> {
  const byKind: Record<string, Record<string, number>> = {};
  for (const kind of DATA_FILE_KINDS) {
    const ofKind = all.filter((r) => r.kind === kind);
    if (ofKind.length === 0) continue;
    const counts: Record<string, number> = { rounds: ofKind.length, bits: ofKind.reduce((sum, r) => sum + r.flips.length, 0) };
    for (const r of ofKind) counts[r.outcome ?? 'none'] = (counts[r.outcome ?? 'none'] ?? 0) + 1;
    byKind[kind] = counts;
  }
  return byKind;
}

t.test(`bit flips in a stopped server's data dir ×${ROUNDS} (seed 0x${SEED.toString(16)})`, { timeout: 600_000 }, async (t) => {
  const replay = `replay with CONCLAVE_BITFLIP_SEED=0x${SEED.toString(16)} CONCLAVE_BITFLIP_ROUNDS=${ROUNDS}`;
  const fc = await FaultCluster.create({ servers: 3, config: SNAPSHOT_CONFIG });
  t.teardown(() => fc.destroy());
  fc.startAll();
  if (!t.ok(await waitHealthy(fc), 'three healthy servers to start with')) return;
  const prng = new Prng(SEED);
  const acknowledged = new Map<string, string>();
  const started = Date.now();
  for (let round = 1; round <= ROUNDS; round++) {
    const r = await bitflipRound(fc, prng, round, acknowledged);
    rounds.push(r);
    const where = `round ${round}: ${r.victim} (${r.victimRole}) ${r.file} [${r.kind}, ${r.fileBytes} B] bits ${r.flips.map((f) => `${f.offset}:${f.bit}`).join(',')}`;
    t.comment(`${where} -> ${r.outcome ?? 'none'}${r.message === null ? '' : ` (exit ${String(r.exitCode)}: ${r.message})`}, ${r.readsChecked} reads checked, ${r.durationMs} ms`);
    t.ok(r.outcome === 'refused' || r.outcome === 'refused-then-up' || r.outcome === 'up-clean' || r.outcome === 'up-resynced', `${where}: refused or came up and caught up (${replay})`);
    if (r.exitCode !== null && r.outcome !== 'exited-after-start') {
      // A refusal names the problem and where: the data dir's path is in the error line.
      t.ok(r.exitCode !== 0 && r.message !== null && r.message.includes(fc.cluster.agent(r.victim).dataDir), `${where}: the refusal names the file (exit ${String(r.exitCode)}: ${String(r.message)})`);
    }
    t.same(r.corruptReads, [], `${where}: no corrupt data served (${replay})`);
    t.ok(r.clusterStayedUp, `${where}: the other two servers kept taking writes and ?consistent reads`);
    if (!t.ok(r.hashesEqual, `${where}: three healthy servers with equal state hashes afterwards (${replay})`)) break;
  }
  // Every acknowledged write, on every server, at the end.
  const target = await clusterCommitIndex(fc);
  const finalCorrupt: string[] = [];
  for (const name of fc.names) {
    t.ok(await waitApplied(fc, name, target, CATCH_UP_TIMEOUT_MS), `${name} applied ${target}`);
    const check = await checkServedData(fc, name, acknowledged, true);
    finalCorrupt.push(...check.corrupt);
    t.equal(check.unread, 0, `${name}: every acknowledged key readable at the end`);
  }
  t.same(finalCorrupt, [], `every acknowledged write on every server at the end (${replay})`);
  const corruptReadsServed = rounds.reduce((sum, r) => sum + r.corruptReads.length, 0) + finalCorrupt.length;
  const outcomes: Record<string, number> = {};
  for (const r of rounds) outcomes[r.outcome ?? 'none'] = (outcomes[r.outcome ?? 'none'] ?? 0) + 1;
  const refusedKinds = [...new Set(rounds.filter((r) => r.outcome === 'refused' || r.outcome === 'refused-then-up').map((r) => r.kind))];
  Object.assign(figures, {
    roundsRun: rounds.length,
    acknowledgedWrites: acknowledged.size,
    flipsByKind: summarizeByKind(rounds),
    outcomes,
    refusedKinds,
    corruptReadsServed,
    runtimeMs: Date.now() - started,
  });
  t.comment(`outcomes ${JSON.stringify(outcomes)}; by kind ${JSON.stringify(figures.flipsByKind)}; corrupt reads served ${corruptReadsServed}; ${acknowledged.size} acknowledged writes`);
  t.equal(corruptReadsServed, 0, 'corrupt reads served');
});
