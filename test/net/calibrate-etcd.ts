import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { Prng } from '../../src/lib/prng.js';
import { checkIndexes, checkRegister, countOps } from '../faults/checks.js';
import { History } from '../faults/history.js';
import type { OpRecord } from '../faults/history.js';
import { delay, httpCall, makeDispatcher } from '../faults/http-ops.js';
import { registerClient } from '../faults/workloads.js';
import type { WorkloadContext } from '../faults/workloads.js';

/**
 * Calibration of the Tier 3 checker against etcd (RELIABILITY.md "Tier 3", Calibration): Debian's
 * etcd 3.4 with `--enable-v2`, one member in each of kvt-n1..3, behind a small adapter per member
 * that speaks the part of Consul's KV API the register workload uses. Run by
 * test/net/calibrate-etcd.test.ts as `nsenter --net=/var/run/netns/kvt-ctl node
 * calibrate-etcd.js '<json options>'`; the adapters are node:http servers in this process, on
 * kvt-ctl's loopback (127.0.0.1:850I for member I). The register workload and the checks are
 * tier3-run.ts's; the nemesis isolates one member (majority/minority) with iptables.
 *
 * - `reads: 'quorum'` (run A): every GET is `?quorum=true`, which etcd orders through Raft. The
 *   checker must find nothing: default GETs are checked as linearizable.
 * - `reads: 'local'` (run B): every GET is etcd's default v2 read, served from the member's own
 *   store; a member cut off from the majority keeps answering with old values. The checker must
 *   find them, or it is blind (a positive control, like CONCLAVE_TEST_BUG).
 *
 * The adapter, Consul → etcd v2 (`/v2/keys/<key>`):
 * - GET → 200 `[{Key, Value (base64), ModifyIndex = modifiedIndex, CreateIndex = createdIndex}]`,
 *   or 404 for errorCode 100 (key not found); X-Consul-Index is X-Etcd-Index (never 0).
 * - PUT (form `value=`) → `true`; `?cas=0` → `prevExist=false`; `?cas=N` → `prevIndex=N`; a
 *   failed compare (101), an existing node (105) or a missing one (100) under a cas → `false`.
 * - DELETE → `true`, also for a missing key (Consul's answer); `?cas=N` → `prevIndex=N`, a failed
 *   compare → `false`; `?cas=0` → a quorum GET: `true` if absent, else `false` (Consul deletes
 *   nothing whose ModifyIndex is not 0).
 * - Anything else from etcd, and timeouts, → 5xx. For a write, `X-Conclave-Outcome: not-applied`
 *   only when etcd refused the connection (nothing was sent), otherwise `unknown`.
 * Prints `expectation met` or `expectation NOT met` and writes summary.json.
 */
interface Options {
  /** 'quorum': run A (must be linearizable); 'local': run B (must be caught). */
  readonly reads: 'quorum' | 'local';
  readonly timeS: number;
  readonly resultsDir: string;
  readonly seed: number;
  readonly binary?: string;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const ETCD_BINARY_DEFAULT = '/usr/bin/etcd';
const MEMBER_COUNT = 3;
const CLIENT_PORT = 2379;
const PEER_PORT = 2380;
/** Adapter I listens on 127.0.0.1:(ADAPTER_PORT_BASE + I), in kvt-ctl. */
const ADAPTER_PORT_BASE = 8500;
/**
 * The adapter gives up on etcd before the workload gives up on the adapter (5 s), so calls into a
 * cut-off member end in a 5xx with an outcome rather than a client timeout; and soon, so its
 * clients keep reading while it is cut off (each write there blocks this long).
 */
const ETCD_REQUEST_TIMEOUT_MS = 1500;
const WORKLOAD_TIMEOUT_MS = 5000;
/** The Porcupine search gets this long before its verdict is `unknown` (the test's budget). */
const CHECKER_TIMEOUT_MS = 60_000;
/** etcd's defaults are heartbeat 100 ms, election 1000 ms: 30 s is ample for a first leader. */
const STARTUP_TIMEOUT_MS = 30_000;
const ADAPTER_BODY_BYTES_MAX = 64 * 1024;

class Member {
  readonly name: string;
  readonly address: string;
  readonly adapterPort: number;
  process: ChildProcess | null = null;
  output = '';
  killing = false;
  readonly unexpectedExits: string[] = [];
  /** What the adapter saw from etcd, by kind (`get 200`, `put 412/101`, `timeout`...). */
  readonly etcdReplies: Record<string, number> = {};
  constructor(readonly index: number) {
    this.name = `n${index}`;
    this.address = `10.77.0.${index}`;
    this.adapterPort = ADAPTER_PORT_BASE + index;
  }
  get clientUrl(): string {
    return `http://${this.address}:${CLIENT_PORT}`;
  }
  get peerUrl(): string {
    return `http://${this.address}:${PEER_PORT}`;
  }
  count(kind: string): void {
    this.etcdReplies[kind] = (this.etcdReplies[kind] ?? 0) + 1;
  }
}

const members = Array.from({ length: MEMBER_COUNT }, (_, k) => new Member(k + 1));
const sh = (command: string, args: string[]): string => execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** etcd reads ETCD_* variables as flags: none may leak in. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('ETCD_')));
}

function startMember(member: Member, dataRoot: string): void {
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const args = [
    `--net=/var/run/netns/kvt-${member.name}`, options.binary ?? ETCD_BINARY_DEFAULT,
    '--name', member.name, '--data-dir', join(dataRoot, member.name), '--enable-v2',
    '--listen-client-urls', member.clientUrl, '--advertise-client-urls', member.clientUrl,
    '--listen-peer-urls', member.peerUrl, '--initial-advertise-peer-urls', member.peerUrl,
    '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', `kvt-calibrate-${options.seed}`,
  ];
  // nsenter execs, so the PID we hold is etcd's.
  const child = spawn('nsenter', args, { env: cleanEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
  member.process = child;
  const keep = (chunk: Buffer): void => {
    member.output = (member.output + chunk.toString()).slice(-200_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', (code, signal) => {
    if (member.process === child) member.process = null;
    if (!member.killing) member.unexpectedExits.push(`${member.name} exited by itself (code ${code}, signal ${signal}): ${member.output.slice(-1500)}`);
  });
}

async function killMember(member: Member): Promise<void> {
  const child = member.process;
  if (child === null) return;
  member.killing = true;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

// ---------------------------------------------------------------------------------------------
// The adapter

/** One exchange with etcd; never throws. */
type EtcdResult =
  | { readonly kind: 'reply'; readonly status: number; readonly body: string; readonly etcdIndex: number | null }
  | { readonly kind: 'error'; readonly refused: boolean; readonly message: string };

interface EtcdNode {
  readonly key: string;
  readonly value?: string;
  readonly dir?: boolean;
  readonly modifiedIndex: number;
  readonly createdIndex: number;
}

const etcdDispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 64, connect: { timeout: 2000 } });

function etcdKeyUrl(member: Member, key: string, query: Record<string, string>): string {
  const path = key.split('/').map(encodeURIComponent).join('/');
  const search = new URLSearchParams(query).toString();
  return `${member.clientUrl}/v2/keys/${path}${search === '' ? '' : `?${search}`}`;
}

async function etcdCall(url: string, method: 'GET' | 'PUT' | 'DELETE', form: string | null): Promise<EtcdResult> {
  try {
    const response = await request(url, {
      method, dispatcher: etcdDispatcher, headersTimeout: ETCD_REQUEST_TIMEOUT_MS, bodyTimeout: ETCD_REQUEST_TIMEOUT_MS,
      ...(form === null ? {} : { body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
    });
    const body = await response.body.text();
    const header = response.headers['x-etcd-index'];
    return { kind: 'reply', status: response.statusCode, body, etcdIndex: typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : null };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return { kind: 'error', refused: code === 'ECONNREFUSED', message: `${String(code ?? '')} ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** etcd's v2 error code (100 key not found, 101 compare failed, 105 node exists...), or null. */
function errorCode(result: EtcdResult): number | null {
  if (result.kind !== 'reply') return null;
  try {
    const code = (JSON.parse(result.body) as { errorCode?: unknown }).errorCode;
    return typeof code === 'number' ? code : null;
  } catch {
    return null;
  }
}

function describe(method: string, result: EtcdResult): string {
  if (result.kind === 'error') return `${method.toLowerCase()} ${result.refused ? 'refused' : 'no-reply'}`;
  const code = errorCode(result);
  return `${method.toLowerCase()} ${result.status}${code === null ? '' : `/${code}`}`;
}

function reply(response: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': status === 200 && body.startsWith('[') ? 'application/json' : 'text/plain', ...headers });
  response.end(body);
}

/** A write etcd did not answer with a verdict: 5xx, and whether it could have been applied. */
function replyWriteError(response: ServerResponse, result: EtcdResult): void {
  const outcome = result.kind === 'error' && result.refused ? 'not-applied' : 'unknown';
  const text = result.kind === 'error' ? result.message : `etcd ${result.status}: ${result.body.slice(0, 200)}`;
  reply(response, result.kind === 'error' && !result.refused ? 504 : 500, text, { 'X-Conclave-Outcome': outcome });
}

function consulIndexHeader(result: EtcdResult): Record<string, string> {
  // Consul never sends X-Consul-Index: 0 (agent/http.go setIndex).
  const index = result.kind === 'reply' && result.etcdIndex !== null ? Math.max(1, result.etcdIndex) : 1;
  return { 'X-Consul-Index': String(index) };
}

async function adapterGet(member: Member, key: string, response: ServerResponse): Promise<void> {
  const query = options.reads === 'quorum' ? { quorum: 'true' } : {};
  const result = await etcdCall(etcdKeyUrl(member, key, query), 'GET', null);
  member.count(describe('GET', result));
  if (result.kind === 'reply' && result.status === 404 && errorCode(result) === 100) {
    reply(response, 404, '', consulIndexHeader(result));
    return;
  }
  if (result.kind !== 'reply' || result.status !== 200) {
    reply(response, 500, result.kind === 'error' ? result.message : `etcd ${result.status}: ${result.body.slice(0, 200)}`);
    return;
  }
  const node = (JSON.parse(result.body) as { node?: EtcdNode }).node;
  if (node === undefined || node.dir === true || typeof node.value !== 'string' || !Number.isSafeInteger(node.modifiedIndex) || node.modifiedIndex < 1) {
    throw new Error(`GET ${key}: etcd sent ${result.body.slice(0, 200)}`);
  }
  const entry = {
    LockIndex: 0, Key: key, Flags: 0, Value: Buffer.from(node.value, 'utf8').toString('base64'),
    CreateIndex: node.createdIndex, ModifyIndex: node.modifiedIndex,
  };
  reply(response, 200, JSON.stringify([entry]), consulIndexHeader(result));
}

async function adapterPut(member: Member, key: string, value: string, cas: number | null, response: ServerResponse): Promise<void> {
  const query: Record<string, string> = cas === null ? {} : cas === 0 ? { prevExist: 'false' } : { prevIndex: String(cas) };
  const result = await etcdCall(etcdKeyUrl(member, key, query), 'PUT', new URLSearchParams({ value }).toString());
  member.count(describe('PUT', result));
  if (result.kind === 'reply' && (result.status === 200 || result.status === 201)) {
    reply(response, 200, 'true', consulIndexHeader(result));
    return;
  }
  const code = errorCode(result);
  // Under a cas: the compare failed (101), the key exists (105, prevExist=false), or it is
  // missing (100, prevIndex): Consul answers `false` to all three.
  if (cas !== null && result.kind === 'reply' && (code === 101 || code === 105 || code === 100)) {
    reply(response, 200, 'false', consulIndexHeader(result));
    return;
  }
  replyWriteError(response, result);
}

async function adapterDelete(member: Member, key: string, cas: number | null, response: ServerResponse): Promise<void> {
  if (cas === 0) {
    // Nothing has ModifyIndex 0: Consul deletes nothing, and says whether the key was absent.
    const read = await etcdCall(etcdKeyUrl(member, key, { quorum: 'true' }), 'GET', null);
    member.count(describe('GET', read));
    if (read.kind === 'reply' && read.status === 404 && errorCode(read) === 100) reply(response, 200, 'true', consulIndexHeader(read));
    else if (read.kind === 'reply' && read.status === 200) reply(response, 200, 'false', consulIndexHeader(read));
    else reply(response, 500, 'etcd read failed', { 'X-Conclave-Outcome': 'not-applied' }); // a read changes nothing
    return;
  }
  const result = await etcdCall(etcdKeyUrl(member, key, cas === null ? {} : { prevIndex: String(cas) }), 'DELETE', null);
  member.count(describe('DELETE', result));
  const code = errorCode(result);
  if (result.kind === 'reply' && (result.status === 200 || code === 100)) {
    reply(response, 200, 'true', consulIndexHeader(result)); // deleting a missing key is true in Consul
    return;
  }
  if (cas !== null && result.kind === 'reply' && code === 101) {
    reply(response, 200, 'false', consulIndexHeader(result));
    return;
  }
  replyWriteError(response, result);
}

async function readBody(incoming: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of incoming) {
    const buffer = chunk as Buffer;
    bytes += buffer.length;
    if (bytes > ADAPTER_BODY_BYTES_MAX) throw new Error(`body larger than ${ADAPTER_BODY_BYTES_MAX} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function handle(member: Member, incoming: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(incoming.url ?? '/', 'http://adapter');
  if (!url.pathname.startsWith('/v1/kv/') || url.pathname.length === '/v1/kv/'.length) {
    reply(response, 404, 'only /v1/kv/<key>');
    return;
  }
  const key = decodeURIComponent(url.pathname.slice('/v1/kv/'.length));
  const casText = url.searchParams.get('cas');
  const cas = casText === null ? null : Number(casText);
  if (cas !== null && (!Number.isSafeInteger(cas) || cas < 0)) {
    reply(response, 400, 'bad cas');
    return;
  }
  switch (incoming.method) {
    case 'GET':
      await adapterGet(member, key, response);
      return;
    case 'PUT':
      await adapterPut(member, key, await readBody(incoming), cas, response);
      return;
    case 'DELETE':
      await adapterDelete(member, key, cas, response);
      return;
    default:
      reply(response, 405, 'method not allowed');
  }
}

async function startAdapter(member: Member): Promise<Server> {
  const server = createServer((incoming, response) => {
    handle(member, incoming, response).catch((error: unknown) => {
      // A body etcd should never send: say so loudly, in the summary and the reply.
      member.count('adapter-error');
      member.unexpectedExits.push(`adapter ${member.name}: ${error instanceof Error ? error.message : String(error)}`);
      if (!response.headersSent) reply(response, 500, String(error), { 'X-Conclave-Outcome': 'unknown' });
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(member.adapterPort, '127.0.0.1', () => resolve());
  });
  return server;
}

// ---------------------------------------------------------------------------------------------
// Nemesis

function iptables(member: Member, args: string[]): void {
  sh('ip', ['netns', 'exec', `kvt-${member.name}`, 'iptables', ...args]);
}

/** Member to member only, so the adapters on kvt-ctl keep their access (Jepsen's partitions). */
function cut(from: Member, to: Member): void {
  iptables(to, ['-A', 'INPUT', '-s', from.address, '-j', 'DROP']);
}

function healNetwork(): void {
  for (const member of members) iptables(member, ['-F', 'INPUT']);
}

function healNetworkQuietly(): void {
  try {
    healNetwork();
  } catch {
    // the namespaces may be gone already
  }
}

const controlDispatcher = makeDispatcher();

/** The member whose /v2/stats/self says StateLeader, or null. */
async function leader(): Promise<Member | null> {
  for (const member of members) {
    const result = await httpCall(controlDispatcher, `${member.clientUrl}/v2/stats/self`, 'GET', null, 1000);
    if (result.kind !== 'reply' || result.status !== 200) continue;
    if ((JSON.parse(result.body) as { state?: string }).state === 'StateLeader') return member;
  }
  return null;
}

/**
 * Every 3–6 s, one member is cut off from the other two for 4–8 s: the leader or a follower
 * (etcd's CheckQuorum makes a cut-off leader step down within an election timeout).
 */
async function nemesis(stop: { done: boolean }, history: History, prng: Prng, counts: Record<string, number>): Promise<void> {
  while (!stop.done) {
    const faultAtMs = performance.now() + prng.between(3000, 6000);
    while (!stop.done && performance.now() < faultAtMs) await delay(100);
    if (stop.done) break;
    const current = await leader();
    const onLeader = current !== null && prng.chance(0.5);
    const lone = onLeader ? current : prng.pick(members.filter((m) => m !== current));
    for (const other of members) if (other !== lone) {
      cut(lone, other);
      cut(other, lone);
    }
    const shape = onLeader ? 'isolate-leader' : 'isolate-follower';
    counts[shape] = (counts[shape] ?? 0) + 1;
    history.event('partition', { shape, lone: lone.name });
    // Held 4–8 s, or until the run ends, so a run lasts what it was asked to.
    const healAtMs = performance.now() + prng.between(4000, 8000);
    while (!stop.done && performance.now() < healAtMs) await delay(100);
    healNetwork();
    history.event('heal', {});
  }
}

// ---------------------------------------------------------------------------------------------
// Checks beyond checkRegister

function readValueOf(op: OpRecord): string | null {
  if (op.status !== 200 || op.body === null) return null;
  try {
    const value = (JSON.parse(op.body) as { Value: string | null }[])[0]?.Value;
    return value === undefined ? null : value === null ? '' : Buffer.from(value, 'base64').toString('utf8');
  } catch {
    return null;
  }
}

/**
 * Reads (default and `?consistent`) that are certainly stale, by member and mode: a value whose
 * write was followed, in real time, by another acknowledged write of the key that completed
 * before the read began (checks.ts countStaleReads, over every checked read mode); or a 404
 * after an acknowledged write of the key completed, with no DELETE of it that could have landed
 * begun before the read ended (a fresh key the cut-off member has not heard of).
 */
function certainlyStaleReads(ops: readonly OpRecord[]): Record<string, number> {
  const writesByKey = new Map<string, OpRecord[]>();
  const deletesByKey = new Map<string, OpRecord[]>();
  for (const op of ops) {
    if (op.f === 'delete' && op.type !== 'fail') deletesByKey.set(op.key, [...(deletesByKey.get(op.key) ?? []), op]);
    if (!['write', 'cas'].includes(op.f) || op.type !== 'ok' || op.value === null || op.body?.trim() !== 'true') continue;
    writesByKey.set(op.key, [...(writesByKey.get(op.key) ?? []), op]);
  }
  const stale: Record<string, number> = {};
  for (const read of ops) {
    if (read.f !== 'read' || read.type !== 'ok' || read.mode === 'stale' || read.completeT === null) continue;
    const readDone = read.completeT;
    const writes = writesByKey.get(read.key) ?? [];
    let isStale: boolean;
    if (read.status === 404) {
      const deleted = (deletesByKey.get(read.key) ?? []).some((d) => d.invokeT < readDone);
      isStale = !deleted && writes.some((w) => (w.completeT ?? Infinity) < read.invokeT);
    } else {
      const value = readValueOf(read);
      const source = writes.find((w) => w.value === value);
      const sourceDone = source?.completeT ?? null;
      isStale = source !== undefined && sourceDone !== null
        && writes.some((w) => w !== source && w.invokeT > sourceDone && (w.completeT ?? Infinity) < read.invokeT);
    }
    if (isStale) {
      const label = `${read.node}/${read.mode ?? 'default'}`;
      stale[label] = (stale[label] ?? 0) + 1;
    }
  }
  return stale;
}

// ---------------------------------------------------------------------------------------------

const url = (name: string): string => `http://127.0.0.1:${ADAPTER_PORT_BASE + Number(name.slice(1))}`;

/** Every member up and a PUT through every adapter answered `true`. */
async function settle(dispatcher: Agent): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  const ready = new Set<string>();
  while (Date.now() < deadline && ready.size < members.length) {
    for (const member of members) {
      if (ready.has(member.name)) continue;
      if (member.process === null) throw new Error(`etcd ${member.name} is not running: ${member.unexpectedExits.join('\n')}`);
      const result = await httpCall(dispatcher, `${url(member.name)}/v1/kv/calibrate-ready`, 'PUT', 'ok', 5000);
      if (result.kind === 'reply' && result.status === 200 && result.body === 'true') ready.add(member.name);
    }
    if (ready.size < members.length) await delay(200);
  }
  if (ready.size < members.length) throw new Error(`etcd not ready:\n${members.map((m) => `--- ${m.name}\n${m.output.slice(-2000)}`).join('\n')}`);
}

async function main(): Promise<number> {
  const startedMs = performance.now();
  mkdirSync(options.resultsDir, { recursive: true });
  const dataRoot = mkdtempSync(join(tmpdir(), 'kvt-calibrate-etcd-'));
  const history = new History(options.resultsDir);
  const prng = new Prng(options.seed);
  const counts: Record<string, number> = {};
  const dispatcher = makeDispatcher();
  const adapters: Server[] = [];
  const runId = `cal-${options.reads}-${Date.now().toString(36)}`;
  let summary: Record<string, unknown> = {};
  let expectationMet = false;
  try {
    healNetwork();
    for (const member of members) adapters.push(await startAdapter(member));
    for (const member of members) startMember(member, dataRoot);
    await settle(dispatcher);
    const stop = { done: false };
    const context: WorkloadContext = { history, dispatcher, url, runId, stop };
    const shared = { ops: 0 };
    const clients: Promise<void>[] = [];
    // As tier3-run.ts: ten register clients, pinned round-robin to the members.
    for (let k = 0; k < 10; k++) {
      const member = members[k % members.length] as Member;
      clients.push(registerClient(context, `r${k}`, member.name, options.seed + k, { keys: 4, keyEvery: 300, timeoutMs: WORKLOAD_TIMEOUT_MS, thinkMs: 60, readModes: ['default', 'consistent', 'consistent', 'stale'] }, shared));
    }
    const nemesisStop = { done: false };
    const faults = nemesis(nemesisStop, history, prng, counts);
    await delay(options.timeS * 1000);
    nemesisStop.done = true;
    await faults;
    healNetwork();
    await delay(3000);
    stop.done = true;
    await Promise.all(clients);
    await history.close();
    const workloadMs = performance.now() - startedMs;
    // Default GETs are checked as linearizable (no defaultReadsMayBeStale): etcd's quorum reads are.
    const register = checkRegister(history.ops, options.resultsDir, { defaultReadsMayBeStale: false, timeoutMs: CHECKER_TIMEOUT_MS });
    const indexes = checkIndexes(history.ops);
    const stale = certainlyStaleReads(history.ops);
    const staleTotal = Object.values(stale).reduce((a, b) => a + b, 0);
    const anomalies = register.verdict === 'illegal' ? 1 : 0;
    const adapterErrors = members.flatMap((m) => m.unexpectedExits);
    expectationMet = register.verdict !== 'unknown' && adapterErrors.length === 0 && (options.reads === 'quorum' ? anomalies === 0 && staleTotal === 0 : anomalies > 0);
    summary = {
      run: `calibrate-etcd-${options.reads}`, reads: options.reads, seconds: options.timeS, expectationMet,
      figures: {
        verdict: register.verdict, linearizabilityAnomalies: anomalies, certainlyStaleReads: staleTotal, certainlyStaleReadsByMemberAndMode: stale,
        staleModeReadsOfUnwrittenValues: register.staleModeUnwritten, indexConflicts: indexes.conflicts.length,
        opsChecked: register.checked, indeterminate: register.indeterminate, opsByType: countOps(history.ops),
        checkerMs: register.checkerMs, checkerSteps: register.checkerSteps, keys: register.keys,
        workloadMs: Math.round(workloadMs), totalMs: Math.round(performance.now() - startedMs),
      },
      reported: {
        seed: options.seed, faults: counts, etcdReplies: Object.fromEntries(members.map((m) => [m.name, m.etcdReplies])),
        violationReport: register.reportPath, adapterErrors: adapterErrors.map((e) => e.slice(0, 300)), indexConflictExamples: indexes.conflicts.slice(0, 5),
      },
    };
    if (register.reportText !== null) summary['violation'] = register.reportText.slice(0, 3000);
  } finally {
    await Promise.all(members.map((member) => killMember(member)));
    healNetworkQuietly();
    for (const member of members) writeFileSync(join(options.resultsDir, `${member.name}.log`), member.output);
    await Promise.all(adapters.map((server) => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    })));
    await Promise.all([dispatcher, controlDispatcher, etcdDispatcher].map((d) => d.close().catch(() => undefined)));
    rmSync(dataRoot, { recursive: true, force: true });
  }
  writeFileSync(join(options.resultsDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(summary['figures'])}\nexpectation ${expectationMet ? 'met' : 'NOT met'} (reads=${options.reads})\n`);
  return expectationMet ? 0 : 1;
}

if (!existsSync('/var/run/netns/kvt-ctl')) {
  process.stderr.write('run test/net/net.sh up 3 first\n');
  process.exit(2);
}
// Killed from outside (the test's timeout): take the etcd members down with us.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const member of members) member.process?.kill('SIGKILL');
    process.exit(130);
  });
}
main().then((code) => process.exit(code), (error: unknown) => {
  for (const member of members) member.process?.kill('SIGKILL');
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(3);
});
