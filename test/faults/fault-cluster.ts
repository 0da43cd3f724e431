import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster } from '../cluster/harness.js';
import type { RaftSample } from './checks.js';
import { FaultProxy } from './fault-proxy.js';
import { httpCall, makeDispatcher } from './http-ops.js';
import type { Agent } from 'undici';

/**
 * Tier 2's cluster: real agent processes (test/cluster/harness.ts) whose server-to-server traffic
 * all crosses a FaultProxy. Server k binds 127.0.0.1:<port> and advertises 127.0.1.<k+1>, where
 * the proxy listens on the same port (see fault-proxy.ts for why that routes every peer byte
 * through it). Each server gets a fixed node id so the proxy can name dialers.
 */

/** The agent of the same build as these tests: src/main.js two levels above this file. */
export const AGENT_MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

/** Timings that keep a 2-core CI box out of spurious elections (RELIABILITY: ≥ 1 s). */
export const FAULT_CONFIG: Readonly<Record<string, unknown>> = {
  raft_tick: '100ms',
  raft_election_timeout: '1s',
  rpc_hold_timeout: '3s',
  session_ttl_min: '1s',
  report_interval: '1s',
  node_timeout: '20s',
  log_level: 'warn',
};

export interface FaultClusterOptions {
  readonly servers: number;
  /** Environment for every server (failpoints, test bugs). */
  readonly env?: Readonly<Record<string, string>>;
  /** JSON config for every server, over FAULT_CONFIG. */
  readonly config?: Readonly<Record<string, unknown>>;
  /** JSON config for single servers by name (`s1`...), over the shared one. */
  readonly serverConfig?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Loopback /24 whose .1, .2... the servers advertise; default 127.0.1. */
  readonly advertiseNet?: string;
}

export class FaultCluster {
  readonly cluster: Cluster;
  readonly proxy: FaultProxy;
  readonly names: string[];
  readonly nodeIds: ReadonlyMap<string, string>;
  readonly dispatcher: Agent;
  readonly #configDir: string;

  private constructor(cluster: Cluster, proxy: FaultProxy, nodeIds: Map<string, string>, configDir: string) {
    this.cluster = cluster;
    this.proxy = proxy;
    this.names = cluster.servers.map((server) => server.name);
    this.nodeIds = nodeIds;
    this.dispatcher = makeDispatcher();
    this.#configDir = configDir;
  }

  static async create(options: FaultClusterOptions): Promise<FaultCluster> {
    const configDir = mkdtempSync(join(tmpdir(), 'conclave-faults-'));
    const net = options.advertiseNet ?? '127.0.1';
    const hosts = Array.from({ length: options.servers }, (_, k) => `${net}.${k + 1}`);
    const ids = Array.from({ length: options.servers }, () => randomUUID());
    const shared = join(configDir, 'shared.json');
    writeFileSync(shared, JSON.stringify({ ...FAULT_CONFIG, ...(options.config ?? {}) }));
    const cluster = await Cluster.create({
      servers: options.servers,
      main: AGENT_MAIN,
      advertiseHosts: hosts,
      nodeIds: ids,
      extraArgs: [`-config-file=${shared}`],
      ...(options.env === undefined ? {} : { env: options.env }),
    });
    for (const [name, config] of Object.entries(options.serverConfig ?? {})) {
      const file = join(configDir, `${name}.json`);
      writeFileSync(file, JSON.stringify(config));
      cluster.addArgs(name, `-config-file=${file}`);
    }
    const nodeIds = new Map<string, string>();
    const routes = cluster.servers.map((server, k) => {
      nodeIds.set(server.name, ids[k] as string);
      return { name: server.name, nodeId: ids[k] as string, listenHost: hosts[k] as string, port: server.serverPort, targetHost: '127.0.0.1', targetPort: server.serverPort };
    });
    let proxy: FaultProxy;
    try {
      proxy = await FaultProxy.start(routes);
    } catch (error) {
      await cluster.destroy();
      rmSync(configDir, { recursive: true, force: true });
      throw error;
    }
    return new FaultCluster(cluster, proxy, nodeIds, configDir);
  }

  /** Server name of a Raft id. */
  nameOf(id: string | null): string | null {
    if (id === null) return null;
    for (const [name, nodeId] of this.nodeIds) if (nodeId === id) return name;
    return null;
  }

  url(name: string): string {
    return `http://127.0.0.1:${this.cluster.agent(name).httpPort}`;
  }

  running(name: string): boolean {
    return this.cluster.agent(name).process !== null;
  }

  startAll(): void {
    for (const name of this.names) if (!this.running(name)) this.cluster.start(name);
  }

  /** One server's /v1/debug/raft, or null (down, paused, slow). */
  async raft(name: string, timeoutMs = 1000): Promise<RaftSample | null> {
    if (!this.running(name)) return null;
    const result = await httpCall(this.dispatcher, `${this.url(name)}/v1/debug/raft`, 'GET', null, timeoutMs);
    if (result.kind !== 'reply' || result.status !== 200) return null;
    const status = JSON.parse(result.body) as { id: string; role: string; term: number; leaderId: string | null; commitIndex: number; appliedIndex: number; lastIndex: number };
    return { t: 0, node: name, id: status.id, role: status.role, term: status.term, leaderId: status.leaderId, commitIndex: status.commitIndex, appliedIndex: status.appliedIndex, lastIndex: status.lastIndex };
  }

  /** The server that says it leads (highest term wins), among running ones. */
  async leader(): Promise<string | null> {
    const samples = await Promise.all(this.names.map((name) => this.raft(name)));
    const leaders = samples.filter((s): s is RaftSample => s !== null && s.role === 'leader').sort((a, b) => b.term - a.term);
    return leaders[0]?.node ?? null;
  }

  /**
   * Waits until the running servers agree on a leader that commits a write, and all of them
   * have applied its commit index. Returns the leader.
   */
  async settle(timeoutMs = 60_000): Promise<string> {
    const leader = await this.cluster.waitForLeader(timeoutMs);
    const target = await this.raft(leader, 5000);
    const commit = target?.commitIndex ?? 0;
    await this.cluster.waitFor(`every server to apply index ${commit}`, async () => {
      const samples = await Promise.all(this.names.filter((n) => this.running(n)).map((n) => this.raft(n, 2000)));
      return samples.every((s) => s !== null && s.appliedIndex >= commit) ? true : undefined;
    }, timeoutMs, 200);
    return leader;
  }

  /**
   * Compares every running server's state digest at one applied index (/v1/debug/loghash).
   * Returns the distinct hashes seen at the common index (1 is good), after waiting for the
   * servers to reach the same index.
   */
  async compareLogHashes(timeoutMs = 30_000): Promise<{ index: number; hashes: Record<string, string> }> {
    return this.cluster.waitFor('servers at one applied index with their state hashes', async () => {
      const names = this.names.filter((n) => this.running(n));
      const replies = await Promise.all(names.map(async (name) => {
        const result = await httpCall(this.dispatcher, `${this.url(name)}/v1/debug/loghash`, 'GET', null, 5000);
        return result.kind === 'reply' && result.status === 200 ? JSON.parse(result.body) as { Index: number; Hash: string } : null;
      }));
      if (replies.some((r) => r === null)) return undefined;
      const indexes = new Set(replies.map((r) => r?.Index));
      if (indexes.size !== 1) return undefined;
      const hashes: Record<string, string> = {};
      names.forEach((name, k) => {
        hashes[name] = replies[k]?.Hash ?? '';
      });
      return { index: replies[0]?.Index ?? 0, hashes };
    }, timeoutMs, 300);
  }

  async destroy(keep = false): Promise<void> {
    await this.cluster.stopAll();
    // Paused agents ignore SIGKILL until... they don't: SIGKILL ends a stopped process too.
    await this.proxy.close();
    await this.dispatcher.close().catch(() => undefined);
    if (!keep) {
      await this.cluster.destroy();
    }
    rmSync(this.#configDir, { recursive: true, force: true });
  }
}

/** Polls /v1/debug/raft on every running server (P6 from outside: one leader per term). */
export class RaftMonitor {
  readonly samples: RaftSample[] = [];
  #timer: NodeJS.Timeout | null = null;
  #busy = false;

  constructor(readonly fc: FaultCluster, readonly now: () => number, readonly intervalMs = 200) {}

  start(): void {
    this.#timer = setInterval(() => void this.#poll(), this.intervalMs);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  async #poll(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const t = this.now();
      const samples = await Promise.all(this.fc.names.map((name) => this.fc.raft(name, 1000)));
      for (const sample of samples) if (sample !== null) this.samples.push({ ...sample, t });
    } finally {
      this.#busy = false;
    }
  }
}
