import { writeFileSync, rmSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../lib/logger.js';
import { buildHttpApp } from '../http/app.js';
import { DnsServer } from '../dns/dns-server.js';
import type { AgentApi } from './agent-api.js';
import type { AgentConfig } from './config.js';
import { ClientAgent } from './client.js';
import { ServerAgent } from './server.js';

/**
 * One agent process: the mode-specific core (server: Raft + FSM; client: forwarding) behind the
 * HTTP API. Resources open in order and close in reverse (STYLE §2).
 */
export class Agent {
  readonly config: AgentConfig;
  readonly api: AgentApi & { close(): Promise<void> };
  readonly #http: FastifyInstance;
  readonly #log: Logger;
  #dns: DnsServer | null = null;
  #httpAddress = '';
  #closed = false;
  #resolveStopped: () => void = () => undefined;
  /** Resolves once the agent stopped (after close(), or after a graceful leave). */
  readonly stopped: Promise<void> = new Promise((resolve) => {
    this.#resolveStopped = resolve;
  });

  private constructor(config: AgentConfig, api: AgentApi & { close(): Promise<void> }, http: FastifyInstance, log: Logger) {
    this.config = config;
    this.api = api;
    this.#http = http;
    this.#log = log;
  }

  static async start(config: AgentConfig, log: Logger): Promise<Agent> {
    const api = config.server
      ? await ServerAgent.start(config, log.child?.({ component: 'server' }) ?? log)
      : await ClientAgent.start(config, log.child?.({ component: 'client' }) ?? log);
    let http: FastifyInstance;
    let self: Agent | null = null;
    // `PUT /v1/agent/leave` answers first, then the agent shuts down (Consul's graceful leave).
    const leave = async (): Promise<void> => {
      await api.leave();
      setTimeout(() => void self?.close(), 100);
    };
    const exposed: AgentApi = {
      info: api.info,
      local: api.local,
      write: (command, signal) => api.write(command, signal),
      query: (query, options) => api.query(query, options),
      renewSession: (id, signal) => api.renewSession(id, signal),
      leaderAddress: () => api.leaderAddress(),
      peerAddresses: () => api.peerAddresses(),
      members: () => api.members(),
      join: (address) => api.join(address),
      leave,
      forceLeave: (node, prune) => api.forceLeave(node, prune),
      raftConfiguration: () => api.raftConfiguration(),
      raftStatus: () => api.raftStatus(),
      removeRaftPeer: (id) => api.removeRaftPeer(id),
      transferLeader: (id) => api.transferLeader(id),
      snapshotSave: (stale) => api.snapshotSave(stale),
      snapshotRestore: (archive) => api.snapshotRestore(archive),
      stateDigest: () => api.stateDigest(),
    };
    try {
      http = buildHttpApp({
        agent: exposed,
        logger: log.child?.({ component: 'http' }) ?? log,
        options: { sessionTtlMinMs: config.sessionTtlMinMs, kvMaxValueSize: config.kvMaxValueSize, ui: config.ui },
      });
    } catch (error) {
      await api.close();
      throw error;
    }
    const agent = new Agent(config, api, http, log);
    self = agent;
    try {
      agent.#httpAddress = await http.listen({ host: config.clientAddr, port: config.httpPort });
    } catch (error) {
      await api.close();
      throw error;
    }
    agent.#dns = await startDns(config, exposed, log);
    if (config.pidFile !== null) writeFileSync(config.pidFile, `${process.pid}\n`);
    log.info({ http: agent.#httpAddress, node: config.nodeName, server: config.server, datacenter: config.datacenter }, 'agent started');
    return agent;
  }

  /** `host:port` of the server RPC port (what `/v1/status/leader` reports), null on a client agent. */
  get rpcAddress(): string | null {
    return this.api instanceof ServerAgent ? this.api.advertisedRpcAddress : null;
  }

  /** True while this agent is the Raft leader. */
  isLeader(): boolean {
    return this.api.raftStatus()?.['role'] === 'leader';
  }

  /** The DNS port (UDP and TCP), or null when DNS is off or could not listen. */
  get dnsPort(): number | null {
    return this.#dns?.port ?? null;
  }

  /** `http://host:port` the HTTP API listens on. */
  get httpAddress(): string {
    return this.#httpAddress;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#dns?.close();
    await this.#http.close();
    await this.api.close();
    if (this.config.pidFile !== null) rmSync(this.config.pidFile, { force: true });
    this.#log.info({}, 'agent stopped');
    this.#resolveStopped();
  }
}

/**
 * Starts DNS on client_addr when `dnsPort` > 0. A port that cannot be bound (several agents on
 * one host all defaulting to 8600) is logged as an error and the agent runs without DNS, where
 * Consul would refuse to start: HTTP and Raft matter more than DNS to every existing deployment.
 */
async function startDns(config: AgentConfig, agent: AgentApi, log: Logger): Promise<DnsServer | null> {
  if (config.dnsPort <= 0) return null;
  const logger = log.child?.({ component: 'dns' }) ?? log;
  try {
    const server = await DnsServer.start({ agent, logger, host: config.clientAddr, port: config.dnsPort });
    logger.info({ address: `${config.clientAddr}:${server.port}` }, 'DNS listening on UDP and TCP');
    return server;
  } catch (error) {
    logger.error({ err: error, port: config.dnsPort }, 'DNS could not listen: this agent runs without DNS (set ports.dns or -dns-port, -1 to disable)');
    return null;
  }
}
