import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { controlRequest } from './bench-cluster.js';
import type { BenchCluster } from './bench-cluster.js';
import { ManagedProcess, freePorts, waitUntil } from './processes.js';

/**
 * A 3-member etcd cluster on loopback, from Debian's `etcd-server` package (`/usr/bin/etcd`,
 * 3.4.x), with etcd's defaults: fsync on every commit (etcd has no switch to turn it off in
 * 3.4 short of `--unsafe-no-fsync`, which is not used), heartbeat 100 ms, election timeout
 * 1000 ms, snapshot count 100,000, no auto-compaction. Only the addresses, names and data dirs
 * are set. Install: `apt-get update && apt-get install -y etcd-server etcd-client`.
 */

const execFileAsync = promisify(execFile);

/** Debian's binary. */
export const ETCD_BINARY_DEFAULT = '/usr/bin/etcd';
/** The gateway paths the adapter uses are those of 3.4 (`/v3/…`); other versions are refused. */
const ETCD_VERSION_PREFIX = '3.4.';
/** Three members: the size the team's targets are set at. */
const MEMBER_COUNT = 3;
/** `members: 1` is a single-member etcd with the same flags, the peer of Conclave's dev agent. */
const MEMBER_COUNTS = [1, MEMBER_COUNT] as const;

/** Where and how to start etcd. */
export interface EtcdClusterOptions {
  readonly binary?: string;
  /** Parent of the temp dir holding the data dirs; default os.tmpdir(). */
  readonly parentDir?: string;
  /** 3 (default) or 1. */
  readonly members?: (typeof MEMBER_COUNTS)[number];
}

/** `etcd --version`'s version, checked to be 3.4.x. */
export async function etcdVersion(binary: string = ETCD_BINARY_DEFAULT): Promise<string> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(binary, ['--version']));
  } catch (error) {
    throw new Error(`${binary} not runnable (apt-get update && apt-get install -y etcd-server etcd-client)`, { cause: error });
  }
  const match = /etcd Version:\s*(\S+)/.exec(stdout);
  const version = match?.[1];
  if (version === undefined) throw new Error(`cannot read the version from: ${stdout}`);
  if (!version.startsWith(ETCD_VERSION_PREFIX)) throw new Error(`etcd ${version}: the harness speaks the 3.4 gateway`);
  return version;
}

interface Member {
  readonly name: string;
  readonly clientUrl: string;
  readonly process: ManagedProcess;
  /** etcd's member ID, as /v3/maintenance/status reports it (learned once healthy). */
  id: string;
}

/** An environment without ETCD_* variables: etcd reads them as flags, and none should leak in. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('ETCD_')));
}

/** Starts the cluster and waits until it is healthy. */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<BenchCluster> {
  const binary = options.binary ?? ETCD_BINARY_DEFAULT;
  const count = options.members ?? MEMBER_COUNT;
  if (!MEMBER_COUNTS.includes(count)) throw new Error(`members must be one of ${MEMBER_COUNTS.join(', ')}`);
  const version = await etcdVersion(binary);
  const root = mkdtempSync(join(options.parentDir ?? tmpdir(), 'conclave-bench-etcd-'));
  const ports = await freePorts(count * 2);
  const names = Array.from({ length: count }, (_, index) => `etcd-${index + 1}`);
  const peerUrl = (index: number): string => `http://127.0.0.1:${ports[count + index]}`;
  const initialCluster = names.map((name, index) => `${name}=${peerUrl(index)}`).join(',');
  const environment = cleanEnvironment();
  const members: Member[] = names.map((name, index) => {
    const clientUrl = `http://127.0.0.1:${ports[index]}`;
    const dataDir = join(root, name);
    mkdirSync(dataDir, { recursive: true });
    const args = [
      '--name', name, '--data-dir', dataDir,
      '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl(index), '--initial-advertise-peer-urls', peerUrl(index),
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new',
      '--initial-cluster-token', `conclave-bench-${ports[0]}`,
    ];
    return { name, clientUrl, process: new ManagedProcess(name, binary, args, join(root, `${name}.log`), environment), id: '' };
  });
  for (const member of members) member.process.start();
  const cluster = new EtcdCluster(version, root, members);
  try {
    await cluster.waitHealthy(30_000);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

interface MemberStatus {
  readonly memberId: string;
  readonly leaderId: string;
}

async function memberStatus(member: Member): Promise<MemberStatus | undefined> {
  const reply = await controlRequest(`${member.clientUrl}/v3/maintenance/status`, 'POST', '{}');
  if (reply.status !== 200) return undefined;
  const body = JSON.parse(reply.text) as { header?: { member_id?: string }; leader?: string };
  const memberId = body.header?.member_id;
  const leaderId = body.leader;
  if (memberId === undefined || leaderId === undefined || leaderId === '0') return undefined;
  return { memberId, leaderId };
}

class EtcdCluster implements BenchCluster {
  readonly name = 'etcd';
  readonly protocol = 'etcd';
  readonly supportsFailover = true;
  readonly version: string;
  readonly settings: Readonly<Record<string, string>>;
  readonly clientUrls: readonly string[];
  readonly #root: string;
  readonly #members: readonly Member[];

  constructor(version: string, root: string, members: readonly Member[]) {
    this.version = version;
    this.#root = root;
    this.#members = members;
    this.clientUrls = members.map((member) => member.clientUrl);
    this.settings = {
      members: String(members.length),
      binary: ETCD_BINARY_DEFAULT,
      fsync: 'on (etcd default; --unsafe-no-fsync not set)',
      'heartbeat-interval': '100 ms (default)',
      'election-timeout': '1000 ms (default)',
      'snapshot-count': '100000 (default)',
      'auto-compaction': 'off (default)',
      'data-dirs': root,
    };
  }

  pids(): number[] {
    return this.#members.flatMap((member) => (member.process.pid === undefined ? [] : [member.process.pid]));
  }

  async leaderMember(): Promise<number | undefined> {
    for (const member of this.#members) {
      if (!member.process.running) continue;
      const status = await memberStatus(member).catch(() => undefined);
      if (status === undefined) continue;
      const index = this.#members.findIndex((candidate) => candidate.id === status.leaderId);
      if (index !== -1 && this.#members[index]?.process.running === true) return index;
    }
    return undefined;
  }

  async killMember(member: number): Promise<void> {
    await this.#member(member).process.kill();
  }

  async restartMember(member: number): Promise<void> {
    // Same flags: with an existing data dir etcd ignores the --initial-* ones and rejoins.
    this.#member(member).process.start();
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    await waitUntil('a healthy etcd cluster with one leader', timeoutMs, async () => {
      const leaders = new Set<string>();
      for (const member of this.#members) {
        if (!member.process.running) throw new Error(`${member.name} exited (see ${member.process.logPath})`);
        const health = await controlRequest(`${member.clientUrl}/health`, 'GET');
        if (health.status !== 200 || !health.text.includes('"true"')) return false;
        const status = await memberStatus(member);
        if (status === undefined) return false;
        member.id = status.memberId;
        leaders.add(status.leaderId);
      }
      return leaders.size === 1;
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.#members.map(async (member) => member.process.stop()));
    rmSync(this.#root, { recursive: true, force: true });
  }

  #member(index: number): Member {
    const member = this.#members[index];
    if (member === undefined) throw new Error(`no member ${index}`);
    return member;
  }
}
