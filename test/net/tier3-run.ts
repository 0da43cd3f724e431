import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Prng } from '../../src/lib/prng.js';
import { checkIndexes, checkLocks, checkRegister, checkSet, countOps } from '../faults/checks.js';
import { History } from '../faults/history.js';
import { delay, httpCall, makeDispatcher, parseEntries } from '../faults/http-ops.js';
import { FencedResource, lockClient, registerClient, setClient, setPrefix } from '../faults/workloads.js';
import type { WorkloadContext } from '../faults/workloads.js';
import { CLOCK_TRUE, FAKETIME_LIBRARY, clockValue, faketimeEnv, removeFaketimeShm, setClock } from './clock-faults.js';

/**
 * One Tier 3 run (RELIABILITY.md "Tier 3"), executed by test/net/tier3.test.ts as
 * `nsenter --net=/var/run/netns/kvt-ctl node tier3-run.js '<json options>'`: this process has
 * kvt-ctl's network (10.77.0.100) but the root mount namespace, so the data images it mounts are
 * the ones the servers see. Servers run as `nsenter --net=/var/run/netns/kvt-nI node main.js
 * agent -bind 10.77.0.I ...` (nsenter execs, so the PID we hold is the agent's), each with its
 * data dir on a loop-mounted ext4 image (/var/tmp/kvt/nI.img).
 *
 * Scenarios: `partition` (iptables DROP between hosts in Jepsen shapes: isolated node,
 * majority/minority, one-way), `kill-pause` (kill -9 and SIGSTOP by PID), `power-loss` (kill -9,
 * `cp --sparse=always` of the image at once, remount the copy — the journal replays — restart;
 * one node, then all at once), `clock` (libfaketime: every server reads its time from
 * /var/tmp/kvt/nI.ft; bumps, strobes and rate changes on the leader or a random server, see
 * clockFault and test/net/clock-faults.ts). Prints `N passed, N failed` and writes summary.json.
 */
interface Options {
  readonly scenario: 'partition' | 'kill-pause' | 'power-loss' | 'clock';
  readonly servers: number;
  readonly timeS: number;
  readonly resultsDir: string;
  readonly seed: number;
  readonly env?: Record<string, string>;
  /** Workload mix: the ack-before-fsync control uses the set workload alone. */
  readonly workloads?: readonly ('register' | 'set' | 'lock')[];
  /** power-loss: every fault cuts every server's power at once. */
  readonly allAtOnce?: boolean;
  /**
   * clock: fake only the wall clock (`Date.now()`; FAKETIME_DONT_FAKE_MONOTONIC), with bumps and
   * strobes only — NTP steps, which a correct server must take without any anomaly at all.
   */
  readonly clockWallOnly?: boolean;
}

const ROOT = '/var/tmp/kvt';
const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));
const options = JSON.parse(process.argv[2] ?? '{}') as Options;

class Host {
  readonly name: string;
  readonly address: string;
  readonly id = randomUUID();
  process: ChildProcess | null = null;
  output = '';
  /**
   * Date.now() at the last start: libfaketime measures a rate from the process's start, and a
   * clock step back must stay within the uptime.
   */
  startedAtWallMs = 0;
  /** Set while we kill it: any other exit is the server's own doing. */
  killing = false;
  /** Exits we did not cause (a crash, an assertion, Node aborting), with the output's tail. */
  readonly unexpectedExits: string[] = [];
  constructor(readonly index: number) {
    this.name = `n${index}`;
    this.address = `10.77.0.${index}`;
  }
  get image(): string {
    return join(ROOT, `${this.name}.img`);
  }
  get mount(): string {
    return join(ROOT, 'mnt', this.name);
  }
  /** libfaketime's timestamp file (clock scenario). */
  get clockFile(): string {
    return join(ROOT, `${this.name}.ft`);
  }
}

const hosts = Array.from({ length: options.servers }, (_, k) => new Host(k + 1));
const sh = (command: string, args: string[]): string => execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function makeImage(host: Host): void {
  mkdirSync(host.mount, { recursive: true });
  sh('truncate', ['-s', '128M', host.image]);
  sh('mkfs.ext4', ['-q', '-F', host.image]);
  mountImage(host, host.image);
}

/** commit=60: the journal commits rarely, so whatever was not fsynced is really at risk. */
function mountImage(host: Host, image: string): void {
  sh('mount', ['-o', 'loop,commit=60', image, host.mount]);
}

function unmount(host: Host): void {
  sh('umount', [host.mount]);
}

function start(host: Host): void {
  const config = join(ROOT, 'config.json');
  const args = [
    `--net=/var/run/netns/kvt-${host.name}`, process.execPath, MAIN, 'agent', '-server', `-bootstrap-expect=${hosts.length}`,
    `-node=${host.name}`, `-node-id=${host.id}`, `-data-dir=${join(host.mount, 'data')}`, `-bind=${host.address}`, `-client=${host.address}`,
    '-http-port=8500', '-server-port=8300', `-config-file=${config}`,
    ...hosts.flatMap((h) => ['-retry-join', `${h.address}:8300`]),
  ];
  const clock = options.scenario === 'clock';
  if (clock) setClock(host.clockFile, CLOCK_TRUE);
  const env = { ...process.env, ...(options.env ?? {}), ...(clock ? faketimeEnv(host.clockFile, { wallClockOnly: options.clockWallOnly === true }) : {}) };
  host.startedAtWallMs = Date.now();
  const child = spawn('nsenter', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  host.process = child;
  host.killing = false;
  const keep = (chunk: Buffer): void => {
    host.output = (host.output + chunk.toString()).slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', (code, signal) => {
    if (host.process === child) host.process = null;
    if (!host.killing) host.unexpectedExits.push(`${host.name} exited by itself (code ${code}, signal ${signal}): ${host.output.slice(-1500)}`);
    // libfaketime leaves its shared memory behind when the process does not exit cleanly.
    if (clock && child.pid !== undefined) removeFaketimeShm(child.pid);
  });
}

async function kill(host: Host, signal: NodeJS.Signals): Promise<void> {
  const child = host.process;
  if (child === null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (signal === 'SIGKILL') host.killing = true;
  child.kill(signal);
  if (signal === 'SIGKILL') {
    await exited;
    host.process = null;
  }
}

const dispatcher = makeDispatcher();
const url = (name: string): string => `http://10.77.0.${name.slice(1)}:8500`;

async function leader(): Promise<Host | null> {
  for (const host of hosts) {
    if (host.process === null) continue;
    const reply = await httpCall(dispatcher, `${url(host.name)}/v1/status/leader`, 'GET', null, 1000);
    if (reply.kind !== 'reply' || reply.status !== 200) continue;
    const address = (JSON.parse(reply.body) as string).split(':')[0];
    const found = hosts.find((h) => h.address === address);
    if (found !== undefined) return found;
  }
  return null;
}

async function settle(timeoutMs = 90_000): Promise<Host> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = await leader();
    if (found !== null) {
      const reply = await httpCall(dispatcher, `${url(found.name)}/v1/kv/tier3-ready`, 'PUT', 'ok', 5000);
      if (reply.kind === 'reply' && reply.status === 200) return found;
    }
    await delay(200);
  }
  throw new Error(`no leader:\n${hosts.map((h) => `--- ${h.name}\n${h.output.slice(-2000)}`).join('\n')}`);
}

function iptables(host: Host, args: string[]): void {
  sh('ip', ['netns', 'exec', `kvt-${host.name}`, 'iptables', ...args]);
}

/** Node to node only, so the clients on kvt-ctl keep their access (Jepsen's partitions). */
function cut(from: Host, to: Host): void {
  iptables(to, ['-A', 'INPUT', '-s', from.address, '-j', 'DROP']);
}

function healNetwork(): void {
  for (const host of hosts) iptables(host, ['-F', 'INPUT']);
}

async function powerLoss(victims: readonly Host[], history: History): Promise<string[]> {
  await Promise.all(victims.map((host) => kill(host, 'SIGKILL')));
  // At once: the copy is what a power cut would have left on the disk.
  for (const host of victims) sh('cp', ['--sparse=always', host.image, `${host.image}.snap`]);
  const notes: string[] = [];
  for (const host of victims) {
    unmount(host);
    sh('mv', [`${host.image}.snap`, host.image]);
    try {
      mountImage(host, host.image);
    } catch (error) {
      // RELIABILITY: a copy that will not mount is inconclusive (the copy is not atomic).
      notes.push(`${host.name}: snapshot did not mount: ${String(error)}`);
      throw new Error(`inconclusive: ${notes.join('; ')}`);
    }
  }
  history.event('power-loss', { nodes: victims.map((h) => h.name) });
  for (const host of victims) start(host);
  return notes;
}

/** Clock faults step by 2 s: several election timeouts (1 s), the lock-delay (2 s). */
const CLOCK_STEP_S = 2;

/** From a clock fault's first write to its reset (wall time of this process). */
interface ClockFaultWindow {
  readonly node: string;
  readonly kind: string;
  readonly fromWallMs: number;
  toWallMs: number;
}
const clockFaultWindows: ClockFaultWindow[] = [];

/**
 * One clock fault on one server, held `holdMs`, then its clock is true again. What each does to
 * the server's Node process (every clock and timer follows; test/net/clock-faults.ts):
 * - bump: a step of ±2 s. Forward, timers due within 2 s fire at once (the lease and election
 *   timers run out early); back, every timer freezes for 2 s while sockets are still served (a
 *   leader that still believes its lease). The reset is the opposite step.
 * - strobe: the clock flips between +2 s and the truth every 0.2–1 s, so the timers fire in bursts
 *   and freeze in between (Jepsen's strobe).
 * - rate: every clock runs ×1.5 or ×0.7 from the fault's start; the reset steps back by what the
 *   rate gained (up to 4 s), or forward by what it lost.
 * A step back further than the server's uptime would abort Node (`now >= timer_base()`), so a
 * backward bump is only made on a server up for longer than twice the step.
 */
async function clockFault(target: Host, onLeader: boolean, holdMs: number, history: History, prng: Prng, counts: Record<string, number>): Promise<void> {
  const kind = prng.pick(options.clockWallOnly === true ? ['bump', 'strobe'] as const : ['bump', 'strobe', 'rate'] as const);
  let label: string;
  let value: string;
  const window: ClockFaultWindow = { node: target.name, kind, fromWallMs: Date.now(), toWallMs: Number.POSITIVE_INFINITY };
  clockFaultWindows.push(window);
  if (kind === 'bump') {
    const back = prng.chance(0.5) && Date.now() - target.startedAtWallMs > 2 * CLOCK_STEP_S * 1000;
    value = clockValue(back ? -CLOCK_STEP_S : CLOCK_STEP_S);
    label = `clock-bump${back ? '-' : '+'}${CLOCK_STEP_S}s`;
    setClock(target.clockFile, value);
    history.event('clock', { node: target.name, kind, value, onLeader, wall: Date.now() });
    await delay(holdMs);
  } else if (kind === 'strobe') {
    const periodMs = prng.between(200, 1000);
    value = clockValue(CLOCK_STEP_S);
    label = 'clock-strobe';
    history.event('clock', { node: target.name, kind, value, periodMs, onLeader, wall: Date.now() });
    const end = performance.now() + holdMs;
    for (let flip = 0; performance.now() < end; flip++) {
      setClock(target.clockFile, flip % 2 === 0 ? value : CLOCK_TRUE);
      await delay(periodMs);
    }
  } else {
    const rate = prng.pick([1.5, 0.7]);
    value = clockValue(0, rate, target.startedAtWallMs);
    label = `clock-rate-x${rate}`;
    setClock(target.clockFile, value);
    history.event('clock', { node: target.name, kind, value, onLeader, wall: Date.now() });
    await delay(holdMs);
  }
  setClock(target.clockFile, CLOCK_TRUE);
  window.toWallMs = Date.now();
  history.event('clock-reset', { node: target.name, wall: Date.now() });
  counts[label] = (counts[label] ?? 0) + 1;
  if (onLeader) counts['clock-on-leader'] = (counts['clock-on-leader'] ?? 0) + 1;
}

/**
 * Splits lock-delay (L2) violations into those a clock fault explains and the rest. Lock-delay is
 * a time bound kept by the leader's clock: one that stepped forward or ran fast between the
 * invalidation and the acquisition shortens it. With every clock faked that holds for Consul as
 * well (it measures lock-delay on the leader's monotonic clock, which these faults move too), so
 * such violations are only counted, like stale default reads. A violation whose interval no
 * fault overlaps, or whose text does not parse, stays a failure.
 */
function splitByClockFaults(violations: readonly string[]): { explained: string[]; unexplained: string[] } {
  const explained: string[] = [];
  const unexplained: string[] = [];
  for (const violation of violations) {
    // checks.ts: "<key>: <proc> acquired at wall <ms>, <n> ms inside ... (<f> at wall <ms>)"
    const match = /acquired at wall (\d+),.*\(\S+ at wall (\d+)\)$/.exec(violation);
    const acquiredWallMs = Number(match?.[1]);
    const invalidatedWallMs = Number(match?.[2]);
    const overlaps = match !== null && clockFaultWindows.some((w) => w.fromWallMs <= acquiredWallMs && invalidatedWallMs <= w.toWallMs);
    (overlaps ? explained : unexplained).push(violation);
  }
  return { explained, unexplained };
}

/** A clock run whose servers did not load libfaketime would test nothing: refuse it. */
function assertClocksFaked(): void {
  for (const host of hosts) {
    const pid = host.process?.pid;
    const maps = pid === undefined ? '' : readFileSync(`/proc/${pid}/maps`, 'utf8');
    if (!maps.includes(FAKETIME_LIBRARY)) throw new Error(`${host.name} (pid ${pid}) has not loaded ${FAKETIME_LIBRARY}`);
  }
}

/** Every clock true again (clock scenario): the end of the run and its cleanup. */
function resetClocks(): void {
  if (options.scenario !== 'clock') return;
  for (const host of hosts) setClock(host.clockFile, CLOCK_TRUE);
}

async function nemesis(stop: { done: boolean }, history: History, prng: Prng, counts: Record<string, number>): Promise<void> {
  let round = 0;
  while (!stop.done) {
    await delay(prng.between(3000, 6000));
    if (stop.done) break;
    round++;
    const current = await leader();
    const others = hosts.filter((h) => h !== current);
    const hold = prng.between(4000, 8000);
    if (options.scenario === 'partition') {
      const shape = prng.pick(['isolate', 'halves', 'one-way'] as const);
      if (shape === 'isolate') {
        const lone = current ?? prng.pick(hosts);
        for (const other of hosts) if (other !== lone) {
          cut(lone, other);
          cut(other, lone);
        }
      } else if (shape === 'halves') {
        const shuffled = prng.shuffle([...hosts]);
        const minority = shuffled.slice(0, Math.floor(hosts.length / 2));
        for (const a of minority) for (const b of shuffled.slice(minority.length)) {
          cut(a, b);
          cut(b, a);
        }
      } else {
        const target = current ?? prng.pick(hosts);
        for (const other of hosts) if (other !== target) cut(other, target);
      }
      counts[`partition-${shape}`] = (counts[`partition-${shape}`] ?? 0) + 1;
      history.event('partition', { shape });
      await delay(hold);
      healNetwork();
      history.event('heal', {});
    } else if (options.scenario === 'kill-pause') {
      if (round % 2 === 1 && current !== null) {
        await kill(current, 'SIGSTOP');
        counts['pause-leader'] = (counts['pause-leader'] ?? 0) + 1;
        history.event('pause', { node: current.name });
        await delay(hold);
        await kill(current, 'SIGCONT');
        history.event('resume', { node: current.name });
      } else {
        const victim = prng.pick(hosts);
        await kill(victim, 'SIGKILL');
        counts['kill'] = (counts['kill'] ?? 0) + 1;
        history.event('kill', { node: victim.name });
        await delay(hold);
        start(victim);
        history.event('restart', { node: victim.name });
      }
    } else if (options.scenario === 'clock') {
      const onLeader = current !== null && prng.chance(0.5);
      await clockFault(onLeader ? current : prng.pick(hosts), onLeader, hold, history, prng, counts);
    } else {
      const all = options.allAtOnce === true || round % 2 === 0;
      const victims = all ? hosts : [prng.pick(others.length > 0 ? others : hosts)];
      await powerLoss(victims, history);
      counts[all ? 'power-loss-all' : 'power-loss-one'] = (counts[all ? 'power-loss-all' : 'power-loss-one'] ?? 0) + 1;
      await delay(hold);
    }
  }
}

async function main(): Promise<number> {
  mkdirSync(options.resultsDir, { recursive: true });
  mkdirSync(join(ROOT, 'mnt'), { recursive: true });
  writeFileSync(join(ROOT, 'config.json'), JSON.stringify({ raft_election_timeout: '1s', rpc_hold_timeout: '3s', session_ttl_min: '1s', node_timeout: '30s', log_level: 'warn' }));
  for (const host of hosts) makeImage(host);
  const history = new History(options.resultsDir);
  const prng = new Prng(options.seed);
  const counts: Record<string, number> = {};
  const runId = `t3-${options.scenario}-${Date.now().toString(36)}`;
  const resource = new FencedResource();
  const workloads = options.workloads ?? ['register', 'set', 'lock'];
  let problems: string[] = [];
  let summary: Record<string, unknown> = {};
  try {
    for (const host of hosts) start(host);
    await settle();
    if (options.scenario === 'clock') assertClocksFaked();
    const stop = { done: false };
    const context: WorkloadContext = { history, dispatcher, url, runId, stop };
    const clients: Promise<void>[] = [];
    const node = (k: number): string => (hosts[k % hosts.length] as Host).name;
    if (workloads.includes('register')) for (let k = 0; k < 10; k++) clients.push(registerClient(context, `r${k}`, node(k), options.seed + k, { keys: 4, keyEvery: 300, timeoutMs: 5000, thinkMs: 60, readModes: ['default', 'consistent', 'consistent', 'stale'] }, { ops: 0 }));
    if (workloads.includes('set')) for (let k = 0; k < 3; k++) clients.push(setClient(context, `s${k}`, node(k), options.seed + 100 + k, { timeoutMs: 5000, thinkMs: 20 }));
    if (workloads.includes('lock')) for (let k = 0; k < 4; k++) clients.push(lockClient(context, `l${k}`, node(k), options.seed + 200 + k, { keys: 2, ttlS: 10, lockDelayS: 2, timeoutMs: 5000, destroyChance: 0.15, holdMs: 100 }, resource));
    const nemesisStop = { done: false };
    // A nemesis failure (an inconclusive power-loss copy) ends the run at once, through the
    // cleanup below, instead of as an unhandled rejection that would leave servers running.
    let nemesisError: unknown = null;
    const faults = nemesis(nemesisStop, history, prng, counts).catch((error: unknown) => { nemesisError = error; });
    const runEnd = Date.now() + options.timeS * 1000;
    while (Date.now() < runEnd && nemesisError === null) await delay(200);
    nemesisStop.done = true;
    await faults;
    if (nemesisError !== null) {
      stop.done = true;
      await Promise.all(clients);
      throw nemesisError;
    }
    healNetwork();
    resetClocks();
    for (const host of hosts) {
      if (host.process === null) start(host);
      else await kill(host, 'SIGCONT');
    }
    await delay(5000);
    stop.done = true;
    await Promise.all(clients);
    const final = await settle();
    history.event('final', { leader: final.name });
    const finalSet = new Map<string, Set<string>>();
    // A node that cannot answer the final read (e.g. it refused to start on an inconsistent disk)
    // is counted, and must be 0 in a correct run; the others are still checked.
    const finalReadFailures: string[] = [];
    for (const host of hosts) {
      const reply = await httpCall(dispatcher, `${url(host.name)}/v1/kv/${setPrefix(runId)}?recurse&consistent`, 'GET', null, 30_000);
      if (reply.kind !== 'reply' || (reply.status !== 200 && reply.status !== 404)) {
        finalReadFailures.push(host.name);
        continue;
      }
      finalSet.set(host.name, new Set(reply.status === 404 ? [] : (parseEntries(reply.body) ?? []).map((e) => e.Key)));
    }
    if (finalSet.size === 0) throw new Error('the final read failed on every node');
    await history.close();
    // P1's caveat: a paused leader, or one whose clock runs slow or stops (clock faults), may
    // answer a default GET from its lease after it was deposed; such reads are only counted.
    // Wall-clock steps alone must not matter: the lease counts ticks of the monotonic clock.
    const defaultReadsMayBeStale = options.scenario === 'kill-pause' || (options.scenario === 'clock' && options.clockWallOnly !== true);
    const register = workloads.includes('register') ? checkRegister(history.ops, options.resultsDir, { defaultReadsMayBeStale }) : null;
    const set = checkSet(history.ops, finalSet);
    const lock = workloads.includes('lock') ? checkLocks(history.ops, { ttlMs: 10_000, lockDelayMs: 2000, resourceStale: resource.stale }) : null;
    const indexes = checkIndexes(history.ops);
    const unexpectedExits = hosts.flatMap((h) => h.unexpectedExits);
    // Every clock faked: lock-delay, a time bound, cannot hold under these faults (splitByClockFaults).
    const l2 = options.scenario === 'clock' && options.clockWallOnly !== true ? splitByClockFaults(lock?.l2 ?? []) : { explained: [], unexplained: lock?.l2 ?? [] };
    const lost = Math.max(0, ...Object.values(set.lost).map((l) => l.length));
    const mustBeZero = {
      linearizabilityAnomalies: register === null || register.verdict === 'ok' ? 0 : 1,
      staleModeReadsOfUnwrittenValues: register?.staleModeUnwritten ?? 0,
      indexConflicts: indexes.conflicts.length,
      acknowledgedWritesLost: lost,
      finalReadFailures: finalReadFailures.length,
      notAppliedWritesPresent: Math.max(0, ...Object.values(set.unexpected).map((l) => l.length)),
      lockL1: lock?.l1.length ?? 0, lockL2: l2.unexplained.length, lockEarlyTtlExpiry: lock?.earlyExpiry.length ?? 0, lockL3StaleTokens: lock?.l3 ?? 0,
      // Only clock faults leave every server running: there, a server that exits is a crash.
      ...(options.scenario === 'clock' ? { serverCrashes: unexpectedExits.length } : {}),
    };
    summary = {
      run: `tier3-${options.scenario}`, servers: hosts.length, seconds: options.timeS, mustBeZero,
      reported: {
        seed: options.seed, env: options.env ?? {}, opsByType: countOps(history.ops), opsChecked: register?.checked ?? {}, faults: counts,
        staleDefaultReads: register?.staleDefaultReads ?? 0, setAcknowledged: set.acknowledged, lostExamples: Object.fromEntries(Object.entries(set.lost).map(([n, l]) => [n, l.slice(0, 5)])),
        unfencedOverlaps: lock?.unfencedOverlaps ?? 0, checkerMs: register?.checkerMs ?? 0,
        ...(options.scenario === 'clock' ? { lockDelayViolationsDuringClockFaults: l2.explained.length, clockWallOnly: options.clockWallOnly === true } : {}),
        unexpectedExits: unexpectedExits.map((e) => e.slice(0, 300)),
      },
    };
    problems = Object.entries(mustBeZero).filter(([, v]) => v !== 0).map(([k, v]) => `${k} = ${v}`);
    if (register?.reportText != null) problems.push(register.reportText.slice(0, 3000));
    const lockViolations = lock === null ? [] : [...lock.l1, ...lock.l2, ...lock.earlyExpiry];
    if (lockViolations.length > 0) writeFileSync(join(options.resultsDir, 'lock-violations.txt'), `${lockViolations.join('\n')}\n`);
    if (lock !== null) problems.push(...lock.l1.slice(0, 3), ...l2.unexplained.slice(0, 3), ...lock.earlyExpiry.slice(0, 3));
    if (options.scenario === 'clock') problems.push(...unexpectedExits.slice(0, 3));
  } finally {
    await Promise.all(hosts.map((host) => kill(host, 'SIGKILL')));
    healNetworkQuietly();
    resetClocks();
    for (const host of hosts) {
      writeFileSync(join(options.resultsDir, `${host.name}.log`), host.output);
      try {
        unmount(host);
      } catch {
        // net.sh down unmounts lazily
      }
    }
    await dispatcher.close().catch(() => undefined);
  }
  writeFileSync(join(options.resultsDir, 'summary.json'), `${JSON.stringify({ ...summary, problems }, null, 2)}\n`);
  process.stdout.write(`${problems.length === 0 ? 1 : 0} passed, ${problems.length === 0 ? 0 : 1} failed\n`);
  return problems.length === 0 ? 0 : 1;
}

function healNetworkQuietly(): void {
  try {
    healNetwork();
  } catch {
    // the namespaces may be gone already
  }
}

if (!existsSync('/var/run/netns/kvt-ctl')) {
  process.stderr.write('run test/net/net.sh up N first\n');
  process.exit(2);
}
main().then((code) => process.exit(code), (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(3);
});
