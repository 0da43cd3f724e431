import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';

/**
 * Real agents as child processes on loopback (Tier 2 of RELIABILITY.md): each has its own data
 * dir and ports; tests kill -9, pause and restart them and talk to them over HTTP with undici.
 * Only the PIDs started here are ever signalled.
 */
export const MAIN = resolve('build/src/main.js');

export interface AgentSpec {
  readonly name: string;
  readonly server: boolean;
  readonly httpPort: number;
  readonly serverPort: number;
  readonly dataDir: string;
  readonly args: readonly string[];
}

export interface RunningAgent extends AgentSpec {
  process: ChildProcess | null;
  output: string;
}

/**
 * The environment agents inherit: not tap's process-info loader (NODE_OPTIONS), which slows
 * every start-up, nor CONSUL_* / CONCLAVE_* settings of the host (tests set their own).
 */
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(CONSUL_|CONCLAVE_|_TAPJS_|TAP|NODE_OPTIONS$|NODE_V8_COVERAGE$)/.test(key)) env[key] = value;
  }
  return env;
}

/** Ports the OS says are free right now (bound to 0, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await new Promise<number>((resolvePort, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const found = typeof address === 'object' && address !== null ? address.port : 0;
        server.close(() => resolvePort(found));
      });
    });
    if (!ports.includes(port)) ports.push(port);
  }
  return ports;
}

export interface ClusterOptions {
  readonly servers: number;
  readonly clients?: number;
  /** Extra flags for every agent. */
  readonly extraArgs?: readonly string[];
  /** Extra environment (failpoints, test bugs). */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra arguments for node itself (e.g. --cpu-prof). */
  readonly nodeArgs?: readonly string[];
  /**
   * Config files for the roles (paths): when given, the role comes from the file (`server`,
   * `bootstrap_expect`, ...) and only per-agent flags (name, ports, dirs, joins) are added.
   */
  readonly configFiles?: { readonly server: string; readonly client: string };
  /** The agent's entry point; default `build/src/main.js` under the working directory. */
  readonly main?: string;
  /**
   * Per server (by index): the host it advertises to its peers (`-advertise`), which its peers'
   * retry_join dial too. A fault proxy listening there on the server's port (test/faults/)
   * then carries all server-to-server traffic. Absent: everyone dials 127.0.0.1 directly.
   */
  readonly advertiseHosts?: readonly string[];
  /** Per server (by index): a fixed node id (`-node-id`), so a proxy can name the dialer. */
  readonly nodeIds?: readonly string[];
}

export class Cluster {
  readonly agents: RunningAgent[] = [];
  readonly root: string;
  readonly #env: Record<string, string>;
  readonly #nodeArgs: readonly string[];
  #main = MAIN;

  private constructor(root: string, env: Record<string, string>, nodeArgs: readonly string[]) {
    this.root = root;
    this.#env = env;
    this.#nodeArgs = nodeArgs;
  }

  /** Lays out `servers` servers (bootstrap-expect, retry-join each other) and `clients` clients. */
  static async create(options: ClusterOptions): Promise<Cluster> {
    const root = mkdtempSync(join(tmpdir(), 'conclave-cluster-'));
    const cluster = new Cluster(root, { ...(options.env ?? {}) }, options.nodeArgs ?? []);
    if (options.main !== undefined) cluster.#main = options.main;
    const total = options.servers + (options.clients ?? 0);
    const ports = await freePorts(total * 2);
    const serverPorts = Array.from({ length: options.servers }, (_, k) => ports[2 * k + 1] as number);
    const peerHost = (k: number): string => options.advertiseHosts?.[k] ?? '127.0.0.1';
    const joinArgs = serverPorts.flatMap((port, k) => ['-retry-join', `${peerHost(k)}:${port}`]);
    for (let k = 0; k < total; k++) {
      const server = k < options.servers;
      const name = server ? `s${k + 1}` : `c${k - options.servers + 1}`;
      const dataDir = join(root, name);
      mkdirSync(dataDir, { recursive: true });
      const httpPort = ports[2 * k] as number;
      const serverPort = ports[2 * k + 1] as number;
      const roleArgs = options.configFiles !== undefined
        ? [`-config-file=${server ? options.configFiles.server : options.configFiles.client}`]
        : server ? ['-server', `-bootstrap-expect=${options.servers}`] : [];
      const args = [
        'agent',
        ...roleArgs,
        `-node=${name}`,
        `-data-dir=${dataDir}`,
        '-bind=127.0.0.1',
        '-client=127.0.0.1',
        // Many agents share this host: DNS stays off unless a test gives an agent its own port.
        '-dns-port=0',
        `-http-port=${httpPort}`,
        `-server-port=${serverPort}`,
        ...joinArgs,
        ...(server && options.advertiseHosts?.[k] !== undefined ? [`-advertise=${options.advertiseHosts[k]}`] : []),
        ...(server && options.nodeIds?.[k] !== undefined ? [`-node-id=${options.nodeIds[k]}`] : []),
        ...(options.extraArgs ?? []),
      ];
      cluster.agents.push({ name, server, httpPort, serverPort, dataDir, args, process: null, output: '' });
    }
    return cluster;
  }

  /** Lays out one more server that joins the running cluster (no bootstrap-expect). */
  async addServer(name: string, extraArgs: readonly string[] = []): Promise<RunningAgent> {
    const [httpPort, serverPort] = (await freePorts(2)) as [number, number];
    const dataDir = join(this.root, name);
    mkdirSync(dataDir, { recursive: true });
    const joinArgs = this.servers.flatMap((server) => ['-retry-join', `127.0.0.1:${server.serverPort}`]);
    const args = ['agent', '-server', `-node=${name}`, `-data-dir=${dataDir}`, '-bind=127.0.0.1', '-client=127.0.0.1', '-dns-port=0', `-http-port=${httpPort}`, `-server-port=${serverPort}`, ...joinArgs, ...extraArgs];
    const agent: RunningAgent = { name, server: true, httpPort, serverPort, dataDir, args, process: null, output: '' };
    this.agents.push(agent);
    return agent;
  }

  /**
   * Gives every server a new server port (as containers get new IPs after `down`/`up`): the
   * agents must be stopped; their data dirs stay.
   */
  async moveServers(): Promise<void> {
    const servers = this.servers;
    const ports = await freePorts(servers.length);
    const moved = new Map(servers.map((server, k) => [server.serverPort, ports[k] as number]));
    for (const agent of this.agents) {
      const args = agent.args.map((arg) => {
        const port = /^-server-port=(\d+)$/.exec(arg);
        if (port !== null) return `-server-port=${moved.get(Number(port[1])) ?? port[1]}`;
        const join = /^127\.0\.0\.1:(\d+)$/.exec(arg);
        if (join !== null) return `127.0.0.1:${moved.get(Number(join[1])) ?? join[1]}`;
        return arg;
      });
      const serverPort = moved.get(agent.serverPort) ?? agent.serverPort;
      Object.assign(agent, { args, serverPort });
    }
  }

  /** Appends flags to one agent's command line (e.g. its own config file); takes effect at its next start. */
  addArgs(name: string, ...args: string[]): void {
    const agent = this.agent(name);
    Object.assign(agent, { args: [...agent.args, ...args] });
  }

  /** The PID of a running agent, or null. */
  pid(name: string): number | null {
    return this.agent(name).process?.pid ?? null;
  }

  agent(name: string): RunningAgent {
    const agent = this.agents.find((a) => a.name === name);
    if (agent === undefined) throw new Error(`no agent ${name}`);
    return agent;
  }

  get servers(): RunningAgent[] {
    return this.agents.filter((agent) => agent.server);
  }

  startAll(): void {
    for (const agent of this.agents) this.start(agent.name);
  }

  start(name: string, extraEnv: Readonly<Record<string, string>> = {}): void {
    const agent = this.agent(name);
    if (agent.process !== null) throw new Error(`${name} is running`);
    const child = spawn(process.execPath, [...this.#nodeArgs, this.#main, ...agent.args], {
      env: { ...inheritedEnv(), ...this.#env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    agent.process = child;
    const keep = (chunk: Buffer): void => {
      agent.output = (agent.output + chunk.toString()).slice(-200_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('exit', () => {
      if (agent.process === child) agent.process = null;
    });
  }

  /** Sends `signal` to the agent's process (only ours) and, for kills, waits for it to exit. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const agent = this.agent(name);
    const child = agent.process;
    if (child === null) return;
    const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
    child.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') {
      await exited;
      agent.process = null;
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.agents.map((agent) => this.kill(agent.name, 'SIGKILL')));
  }

  async destroy(): Promise<void> {
    await this.stopAll();
    rmSync(this.root, { recursive: true, force: true });
  }

  url(name: string, path: string): string {
    return `http://127.0.0.1:${this.agent(name).httpPort}${path}`;
  }

  /** One HTTP call; never throws for status codes (returns them), throws on connection errors. */
  async http(name: string, method: 'GET' | 'PUT' | 'DELETE', path: string, body?: string | Uint8Array, timeoutMs = 10_000): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
    const response = await request(this.url(name, path), { method, body: body ?? null, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
  }

  /** The name of the server that currently leads, by asking the given live agents; null if none agree. */
  async leader(among: readonly string[] = this.servers.filter((s) => s.process !== null).map((s) => s.name)): Promise<string | null> {
    for (const name of among) {
      try {
        const { status, text } = await this.http(name, 'GET', '/v1/status/leader', undefined, 2000);
        if (status !== 200) continue;
        const address = JSON.parse(text) as string;
        const port = Number(address.split(':').pop());
        const leader = this.servers.find((s) => s.serverPort === port);
        if (leader !== undefined && leader.process !== null) return leader.name;
      } catch {
        // not reachable: ask the next one
      }
    }
    return null;
  }

  /** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes. */
  async waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown = null;
    while (Date.now() < deadline) {
      try {
        const value = await check();
        if (value !== undefined) return value;
      } catch (error) {
        lastError = error;
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    throw new Error(`timed out waiting for ${what}${lastError === null ? '' : `: ${String(lastError)}`}\n${this.agents.map((a) => `--- ${a.name}\n${a.output.slice(-3000)}`).join('\n')}`);
  }

  /** Waits until every live server names the same leader and a write through it commits. */
  async waitForLeader(timeoutMs = 30_000): Promise<string> {
    return this.waitFor('a leader', async () => {
      const live = this.servers.filter((s) => s.process !== null).map((s) => s.name);
      const leader = await this.leader(live);
      if (leader === null) return undefined;
      const { status, text } = await this.http(leader, 'PUT', '/v1/kv/conclave-test-ready', 'ok', 5000);
      return status === 200 && text === 'true' ? leader : undefined;
    }, timeoutMs);
  }
}
