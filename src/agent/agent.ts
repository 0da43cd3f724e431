import { writeFileSync, rmSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../lib/logger.js';
import { buildHttpApp } from '../http/app.js';
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
      stateDigest: () => api.stateDigest(),
    };
    try {
      http = buildHttpApp({
        agent: exposed,
        logger: log.child?.({ component: 'http' }) ?? log,
        options: { sessionTtlMinMs: config.sessionTtlMinMs, kvMaxValueSize: config.kvMaxValueSize },
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

  /** `http://host:port` the HTTP API listens on. */
  get httpAddress(): string {
    return this.#httpAddress;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#http.close();
    await this.api.close();
    if (this.config.pidFile !== null) rmSync(this.config.pidFile, { force: true });
    this.#log.info({}, 'agent stopped');
    this.#resolveStopped();
  }
}
