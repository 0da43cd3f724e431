import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlRequest } from './bench-cluster.js';
import type { BenchCluster } from './bench-cluster.js';
import { ManagedProcess, freePorts, waitUntil } from './processes.js';

/**
 * A 3-server Conclave cluster on loopback, started through the agent CLI with Consul's flag
 * names (`agent -server -node … -bootstrap-expect 3 -retry-join …`). Ready when every server
 * names a leader on `/v1/status/leader` and a `PUT /v1/kv/bench-ready` answers `true`.
 * Also the stand-in: one fake-consul process (see fake-consul.ts), clearly labelled, for
 * developing the harness before the CLI exists.
 */

/** Three servers: the size the team's targets are set at. */
const SERVER_COUNT = 3;
/** `servers: 1` is the single-server dev agent (`agent -dev` with a data dir, so fsync stays on). */
const SERVER_COUNTS = [1, SERVER_COUNT] as const;
/** The agent entry point next to this script's build output: build/scripts/bench → build/src/main.js. */
export const CONCLAVE_MAIN_DEFAULT = fileURLToPath(new URL('../../src/main.js', import.meta.url));
/** The stand-in's entry point, built beside this file. */
const FAKE_CONSUL_MAIN = fileURLToPath(new URL('./fake-consul.js', import.meta.url));
/** The repository root, for the version recorded in reports. */
const REPOSITORY_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Where and how to start the servers. */
export interface ConclaveClusterOptions {
  /** Path of the built `main.js`. */
  readonly main?: string;
  /** Parent of the temp dir holding the data dirs; default os.tmpdir(). */
  readonly parentDir?: string;
  /** How long formation (election + first write) may take. */
  readonly readyTimeoutMs?: number;
  /** 3 (default): `-bootstrap-expect 3 -retry-join …`; 1: the dev agent, `agent -dev -data-dir …`. */
  readonly servers?: (typeof SERVER_COUNTS)[number];
  /** Node options before the script (`--single-threaded-gc`, …): what `node <options> main.js` gets. */
  readonly nodeArgs?: readonly string[];
}

/** `conclave <package version> (<git commit>[-dirty])`, best effort. */
export function conclaveVersion(): string {
  let version = 'unknown';
  try {
    version = (JSON.parse(readFileSync(join(REPOSITORY_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? version;
  } catch {
    // not run from the repository
  }
  try {
    const commit = execFileSync('git', ['-C', REPOSITORY_ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', REPOSITORY_ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return `${version} (${commit}${dirty ? '-dirty' : ''})`;
  } catch {
    return version;
  }
}

interface Server {
  readonly name: string;
  readonly httpUrl: string;
  /** The Raft/RPC address `/v1/status/leader` names. */
  readonly serverAddress: string;
  readonly process: ManagedProcess;
}

/** Starts the servers (3, or the single dev agent) and waits until the cluster takes writes. */
export async function startConclaveCluster(options: ConclaveClusterOptions = {}): Promise<BenchCluster> {
  const main = options.main ?? CONCLAVE_MAIN_DEFAULT;
  const count = options.servers ?? SERVER_COUNT;
  if (!SERVER_COUNTS.includes(count)) throw new Error(`servers must be one of ${SERVER_COUNTS.join(', ')}`);
  if (!existsSync(main)) throw new Error(`${main} does not exist: build the agent first (npm run build)`);
  const root = mkdtempSync(join(options.parentDir ?? tmpdir(), 'conclave-bench-servers-'));
  const ports = await freePorts(count * 2);
  const serverPort = (index: number): number => ports[count + index] ?? 0;
  const retryJoin = Array.from({ length: count }, (_, index) => ['-retry-join', `127.0.0.1:${serverPort(index)}`]).flat();
  // The dev agent bootstraps itself at once; -data-dir keeps LevelDB storage (fsync on), not memory.
  const formation = count === 1 ? ['-dev'] : ['-bootstrap-expect', String(count), ...retryJoin];
  const servers: Server[] = Array.from({ length: count }, (_, index) => {
    const name = count === 1 ? 'conclave-dev' : `conclave-${index + 1}`;
    const dataDir = join(root, name);
    mkdirSync(dataDir, { recursive: true });
    const args = [
      ...(options.nodeArgs ?? []), main, 'agent', '-server', '-node', name, '-data-dir', dataDir,
      '-bind', '127.0.0.1', '-client', '127.0.0.1', '-dns-port', '0',
      '-http-port', String(ports[index]), '-server-port', String(serverPort(index)),
      ...formation,
    ];
    return {
      name,
      httpUrl: `http://127.0.0.1:${ports[index]}`,
      serverAddress: `127.0.0.1:${serverPort(index)}`,
      process: new ManagedProcess(name, process.execPath, args, join(root, `${name}.log`)),
    };
  });
  for (const server of servers) server.process.start();
  const settings: Record<string, string> = count === 1
    ? { servers: '1', mode: 'agent -dev -data-dir (LevelDB, fsync on)', main, 'data-dirs': root, node: process.version }
    : { servers: String(count), main, 'bootstrap-expect': String(count), 'data-dirs': root, node: process.version };
  if (options.nodeArgs !== undefined && options.nodeArgs.length > 0) settings['node options'] = options.nodeArgs.join(' ');
  const cluster = new ConclaveCluster(root, servers, settings, 'conclave', true);
  try {
    await cluster.waitHealthy(options.readyTimeoutMs ?? 60_000);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/** Starts the STAND-IN: one fake-consul process, no Raft, no disk. Reports call it `fake-consul (stand-in)`. */
export async function startFakeConsulCluster(options: { readonly parentDir?: string } = {}): Promise<BenchCluster> {
  const root = mkdtempSync(join(options.parentDir ?? tmpdir(), 'conclave-bench-fake-'));
  const [port] = await freePorts(1);
  const server: Server = {
    name: 'fake-consul',
    httpUrl: `http://127.0.0.1:${port}`,
    serverAddress: `127.0.0.1:${port}`,
    process: new ManagedProcess('fake-consul', process.execPath, [FAKE_CONSUL_MAIN, '--port', String(port)], join(root, 'fake-consul.log')),
  };
  server.process.start();
  const cluster = new ConclaveCluster(root, [server], {
    'STAND-IN': 'single-process in-memory Consul-shaped server (scripts/bench/fake-consul.ts): no Raft, no disk, no replication',
  }, 'fake-consul (stand-in)', false);
  try {
    await cluster.waitHealthy(15_000);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

class ConclaveCluster implements BenchCluster {
  readonly protocol = 'consul';
  readonly name: string;
  readonly version: string;
  readonly settings: Readonly<Record<string, string>>;
  readonly clientUrls: readonly string[];
  readonly supportsFailover: boolean;
  readonly #root: string;
  readonly #servers: readonly Server[];

  constructor(root: string, servers: readonly Server[], settings: Record<string, string>, name: string, supportsFailover: boolean) {
    this.#root = root;
    this.#servers = servers;
    this.settings = settings;
    this.name = name;
    this.version = supportsFailover ? conclaveVersion() : `stand-in, ${conclaveVersion()}`;
    this.supportsFailover = supportsFailover;
    this.clientUrls = servers.map((server) => server.httpUrl);
  }

  pids(): number[] {
    return this.#servers.flatMap((server) => (server.process.pid === undefined ? [] : [server.process.pid]));
  }

  /** §9: `/v1/status/leader` is the leader's Raft address; map it back to the server that has it. */
  async leaderMember(): Promise<number | undefined> {
    for (const server of this.#servers) {
      if (!server.process.running) continue;
      const address = await this.#leaderAddress(server).catch(() => '');
      const index = this.#servers.findIndex((candidate) => candidate.serverAddress === address);
      if (index !== -1 && this.#servers[index]?.process.running === true) return index;
    }
    return undefined;
  }

  async killMember(member: number): Promise<void> {
    await this.#server(member).process.kill();
  }

  async restartMember(member: number): Promise<void> {
    this.#server(member).process.start();
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    await waitUntil(`${this.name}: a leader on every server and a write`, timeoutMs, async () => {
      const leaders = new Set<string>();
      for (const server of this.#servers) {
        if (!server.process.running) throw new Error(`${server.name} exited (see ${server.process.logPath})`);
        const leader = await this.#leaderAddress(server);
        if (leader === '') return false;
        leaders.add(leader);
      }
      if (leaders.size !== 1) return false;
      const first = this.#servers[0];
      if (first === undefined) return false;
      const write = await controlRequest(`${first.httpUrl}/v1/kv/bench-ready`, 'PUT', 'ready');
      return write.status === 200 && write.text.trim() === 'true';
    }, 200);
  }

  async stop(): Promise<void> {
    await Promise.all(this.#servers.map(async (server) => server.process.stop()));
    rmSync(this.#root, { recursive: true, force: true });
  }

  async #leaderAddress(server: Server): Promise<string> {
    const reply = await controlRequest(`${server.httpUrl}/v1/status/leader`, 'GET');
    if (reply.status !== 200) return '';
    const leader: unknown = JSON.parse(reply.text);
    return typeof leader === 'string' ? leader : '';
  }

  #server(index: number): Server {
    const server = this.#servers[index];
    if (server === undefined) throw new Error(`no server ${index}`);
    return server;
  }
}
