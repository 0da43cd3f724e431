import { InternalError, NoLeaderError, withOutcome } from '../lib/errors.js';
import type { AgentError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { fromRpcError } from '../rpc/errors.js';
import { RPC_METHODS } from '../rpc/methods.js';
import type { StatusReport } from '../rpc/methods.js';
import type { Command } from '../state/commands.js';
import { encodeCommand } from '../state/commands.js';
import type { Session } from '../state/sessions.js';
import { RpcError } from '../transport/rpc.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import type { AgentApi, AgentInfo, MemberInfo, QueryMeta, QueryOptions, RaftConfigurationInfo, WriteResult } from './agent-api.js';
import { withPort } from './cluster-formation.js';
import type { AgentConfig } from './config.js';
import { agentInfo, ensureDataDir, loadNodeId } from './identity.js';
import type { Query, QueryValue } from './queries.js';
import { FIRST_REPORT_RETRY_MS, neverSent, packResult, resultPackr, unpackResult } from './server.js';
// Services issue: this agent's services and checks, and their anti-entropy sync.
import { LocalState } from './local-state.js';
import { ServiceSyncer, parseReportReply } from './service-sync.js';

/**
 * Client mode: no Raft and no data. Every call goes over RPC to a server (which forwards to the
 * leader if it must); when a server cannot be reached the next one is tried. The server list
 * starts from retry_join/-join and is refreshed from the servers' own peer list.
 */
const CALL_MARGIN_MS = 5000;
const WRITE_TIMEOUT_MS = 35_000;
const PEERS_REFRESH_MS = 30_000;
/** Servers remembered at most (the peer list of a cluster is small). */
const SERVERS_MAX = 64;

export class ClientAgent implements AgentApi {
  readonly info: AgentInfo;
  /** Services issue: the services and checks registered with this agent. */
  readonly local: LocalState;
  readonly #sync: ServiceSyncer;
  readonly #config: AgentConfig;
  readonly #log: Logger;
  readonly #transport: TcpTransport;
  #servers: string[];
  /** Index into #servers of the server used last; a failure moves on to the next. */
  #current = 0;
  #reportTimer: NodeJS.Timeout | null = null;
  #peersTimer: NodeJS.Timeout | null = null;
  #reported = false;
  #closed = false;
  /** Services issue: set once leave() starts, so no periodic report re-registers the node afterwards. */
  #leaving = false;

  private constructor(config: AgentConfig, nodeId: string, log: Logger) {
    this.#config = config;
    this.#log = log;
    this.info = agentInfo(config, nodeId, false);
    this.#servers = [...new Set([...config.retryJoin, ...config.startJoin].map(withPort))];
    this.#current = this.#servers.length > 0 ? Math.floor(Math.random() * this.#servers.length) : 0;
    this.local = new LocalState({ nodeName: config.nodeName, dataDir: config.dataDir, enableScriptChecks: config.enableScriptChecks, logger: log });
    this.#sync = new ServiceSyncer(this.local);
    this.local.onChange(() => void this.#report(false));
    this.#transport = new TcpTransport({ role: 'client', serverId: null, datacenter: config.datacenter, logger: log.child?.({ component: 'transport' }) ?? log });
  }

  static async start(config: AgentConfig, log: Logger): Promise<ClientAgent> {
    if (config.dataDir !== null) ensureDataDir(config.dataDir);
    const agent = new ClientAgent(config, loadNodeId(config.dataDir, config.nodeId), log);
    agent.#reportTimer = setInterval(() => void agent.#report(false), config.reportIntervalMs);
    agent.#peersTimer = setInterval(() => void agent.#refreshServers(), PEERS_REFRESH_MS);
    void agent.#report(false);
    void agent.#refreshServers();
    return agent;
  }

  /** Known server addresses (for tests and /v1/agent/self). */
  get servers(): readonly string[] {
    return this.#servers;
  }

  // ---------------------------------------------------------------------------------------
  // AgentApi: everything goes to a server

  async write(command: Command): Promise<WriteResult> {
    const reply = await this.#call(RPC_METHODS.apply, { command: encodeCommand(command), hop: 1 }, WRITE_TIMEOUT_MS, true);
    return unpackResult(reply) as WriteResult;
  }

  async query<Q extends Query>(query: Q, options: QueryOptions): Promise<{ value: QueryValue<Q>; meta: QueryMeta }> {
    const payload = { query, consistency: options.consistency, minIndex: options.minIndex, waitMs: options.waitMs, maxStaleMs: options.maxStaleMs, hop: 1 };
    const reply = await this.#call(RPC_METHODS.query, packResult(payload), Math.ceil(options.waitMs * 1.0625) + CALL_MARGIN_MS, false);
    return unpackResult(reply) as { value: QueryValue<Q>; meta: QueryMeta };
  }

  async renewSession(id: string): Promise<Session | null> {
    return unpackResult(await this.#call(RPC_METHODS.renew, { id, hop: 1 }, CALL_MARGIN_MS * 2, false)) as Session | null;
  }

  async leaderAddress(): Promise<string> {
    return (await this.#call(RPC_METHODS.leader, {}, CALL_MARGIN_MS, false)) as string;
  }

  async peerAddresses(): Promise<string[]> {
    return (await this.#call(RPC_METHODS.peers, {}, CALL_MARGIN_MS, false)) as string[];
  }

  async members(): Promise<MemberInfo[]> {
    return unpackResult(await this.#call(RPC_METHODS.members, {}, CALL_MARGIN_MS, false)) as MemberInfo[];
  }

  async join(address: string): Promise<void> {
    const server = withPort(address);
    await this.#transport.call(server, RPC_METHODS.leader, {}, { timeoutMs: CALL_MARGIN_MS }).catch((error: unknown) => {
      throw fromRpcError(error);
    });
    if (!this.#servers.includes(server)) this.#servers = [server, ...this.#servers].slice(0, SERVERS_MAX);
  }

  async leave(): Promise<void> {
    this.#leaving = true;
    await this.#report(true);
  }

  async forceLeave(node: string): Promise<void> {
    await this.write({ type: 'node-deregister', nowMs: 0, node });
  }

  async raftConfiguration(): Promise<RaftConfigurationInfo> {
    return unpackResult(await this.#call(RPC_METHODS.raftConfiguration, {}, CALL_MARGIN_MS, false)) as RaftConfigurationInfo;
  }

  raftStatus(): null {
    return null;
  }

  stateDigest(): null {
    return null;
  }

  async transferLeader(id: string | null): Promise<void> {
    await this.#call(RPC_METHODS.transferLeader, { id: id ?? '', hop: 1 }, WRITE_TIMEOUT_MS, true);
  }

  async snapshotSave(stale: boolean): Promise<{ index: number; archive: Uint8Array }> {
    void stale; // a client agent holds no state: the server it reaches takes the snapshot from its leader
    return unpackResult(await this.#call(RPC_METHODS.snapshotSave, { hop: 1 }, WRITE_TIMEOUT_MS, false)) as { index: number; archive: Uint8Array };
  }

  async snapshotRestore(archive: Uint8Array): Promise<void> {
    await this.#call(RPC_METHODS.snapshotRestore, { archive, hop: 1 }, WRITE_TIMEOUT_MS * 4, true);
  }

  async removeRaftPeer(id: string): Promise<void> {
    await this.#call(RPC_METHODS.leaveCluster, { id, hop: 1 }, WRITE_TIMEOUT_MS, true);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reportTimer !== null) clearInterval(this.#reportTimer);
    if (this.#peersTimer !== null) clearInterval(this.#peersTimer);
    await this.local.close();
    await this.#transport.close();
  }

  // ---------------------------------------------------------------------------------------

  /**
   * Calls a server, failing over to the next when one cannot be reached. A write is retried on
   * another server only if it certainly never left (the connection could not be made): once sent,
   * its outcome is unknown and a retry could apply it twice.
   */
  async #call(method: string, payload: unknown, timeoutMs: number, isWrite: boolean): Promise<unknown> {
    if (this.#servers.length === 0) throw withOutcome(new InternalError('No known Consul servers'), 'not-applied');
    let lastError: AgentError | null = null;
    for (let attempt = 0; attempt < this.#servers.length; attempt++) {
      const address = this.#servers[this.#current % this.#servers.length] as string;
      try {
        return await this.#transport.call(address, method, payload, { timeoutMs });
      } catch (error) {
        const retryable = neverSent(error) || (!isWrite && error instanceof RpcError && !error.remote);
        lastError = fromRpcError(error);
        if (!retryable) throw lastError;
        this.#log.debug({ server: address, err: error }, 'server unreachable: trying the next one');
        this.#current++;
      }
    }
    throw lastError ?? withOutcome(new NoLeaderError(), 'not-applied');
  }

  async #report(leaving: boolean): Promise<void> {
    if (this.#leaving && !leaving) return;
    if (this.#closed && !leaving) return;
    const report: StatusReport = {
      node: this.info.nodeName,
      id: this.info.nodeId,
      address: this.#config.advertiseAddr,
      datacenter: this.#config.datacenter,
      meta: { ...this.#config.nodeMeta },
      server: false,
      leaving,
      // Services issue: anti-entropy fields (service-sync.ts).
      ...(leaving ? {} : this.#sync.fields()),
    };
    try {
      const reply = parseReportReply(await this.#call(RPC_METHODS.report, { ...report, hop: 1 }, CALL_MARGIN_MS, false));
      this.#reported = true;
      // Services issue: the leader asked for our services and checks; send them now.
      if (!leaving && this.#sync.onReply(report, reply)) void this.#report(false);
    } catch (error) {
      this.#log.debug({ err: error }, 'status report not delivered');
      if (!this.#reported && !leaving) setTimeout(() => void this.#report(false), FIRST_REPORT_RETRY_MS).unref();
    }
  }

  /** Learns the servers' addresses from the cluster itself, keeping the configured ones too. */
  async #refreshServers(): Promise<void> {
    try {
      const peers = await this.peerAddresses();
      const configured = [...this.#config.retryJoin, ...this.#config.startJoin].map(withPort);
      this.#servers = [...new Set([...peers, ...configured])].slice(0, SERVERS_MAX);
    } catch (error) {
      this.#log.debug({ err: error }, 'could not refresh the server list');
    }
  }
}

export { resultPackr };
