import { Agent } from './agent/agent.js';
import type { AgentApi } from './agent/agent-api.js';
import type { AgentConfig } from './agent/config.js';
import { finishConfig, loadAgentConfig } from './agent/config.js';
import { createLogger } from './lib/log.js';
import type { LogLevelName } from './lib/log.js';
import type { Logger } from './lib/logger.js';

/**
 * The embeddable API: run a Conclave agent inside a Node application.
 *
 * ```ts
 * import { startAgent } from 'conclave';
 * const agent = await startAgent({ httpPort: 0 });          // a single-node dev server
 * await fetch(`${agent.httpAddress}/v1/kv/hello`, { method: 'PUT', body: 'world' });
 * await agent.close();
 * ```
 *
 * With no mode given it runs like `conclave agent -dev`: one server that bootstraps itself,
 * in memory unless `dataDir` is set. Any AgentConfig field may be given; `args` takes Consul
 * style flags instead (`['-server', '-bootstrap-expect=3', ...]`).
 */
export interface StartAgentOptions extends Partial<AgentConfig> {
  /** Consul-style command-line flags, parsed exactly as `conclave agent` parses them. */
  readonly args?: readonly string[];
  /** A logger to use (pino-compatible), or a level for the default stderr logger ('silent' to mute). */
  readonly logger?: Logger | LogLevelName;
}

export interface EmbeddedAgent {
  /** `http://host:port` of the HTTP API (the actual port when httpPort was 0). */
  readonly httpAddress: string;
  /** `host:port` of the server RPC port; null for a client agent. */
  readonly rpcAddress: string | null;
  /** True while this agent leads the cluster. */
  isLeader(): boolean;
  readonly config: AgentConfig;
  /** The agent seen from HTTP: the same calls the HTTP API makes (write, query, members, ...). */
  readonly api: AgentApi;
  /** Resolves when the agent stops (close, or a graceful leave). */
  readonly stopped: Promise<void>;
  /** Stops the agent: HTTP first, then Raft and storage. */
  close(): Promise<void>;
}

export async function startAgent(options: StartAgentOptions = {}): Promise<EmbeddedAgent> {
  const { args, logger, ...fields } = options;
  const config = args !== undefined ? loadAgentConfig(args, fields).config : embeddedConfig(fields);
  const log = typeof logger === 'object' ? logger : createLogger({ level: logger ?? 'warn', json: config.logJson });
  const agent = await Agent.start(config, log);
  return {
    httpAddress: agent.httpAddress,
    rpcAddress: agent.rpcAddress,
    isLeader: () => agent.isLeader(),
    config: agent.config,
    api: agent.api,
    stopped: agent.stopped,
    close: () => agent.close(),
  };
}

export interface DevClusterOptions {
  /** Servers (default 3). */
  readonly servers?: number;
  /** Client agents (default 0). */
  readonly clients?: number;
  /** A data directory root (one subdirectory per agent); in memory when absent. */
  readonly dataDir?: string;
  readonly logger?: Logger | LogLevelName;
  /** Fields given to every agent (e.g. `sessionTtlMinMs`). */
  readonly config?: Partial<AgentConfig>;
}

export interface DevCluster {
  readonly servers: readonly EmbeddedAgent[];
  readonly clients: readonly EmbeddedAgent[];
  /** Resolves with the leader once one is elected and a write through it commits. */
  leader(timeoutMs?: number): Promise<EmbeddedAgent>;
  /** Stops every agent (clients first). */
  close(): Promise<void>;
}

/**
 * A whole cluster inside this process, for other projects' tests: `servers` servers on
 * loopback with free ports that form a cluster (bootstrap_expect), and optional client agents.
 *
 * ```ts
 * const cluster = await startDevCluster({ servers: 3 });
 * const leader = await cluster.leader();
 * await cluster.close();
 * ```
 */
export async function startDevCluster(options: DevClusterOptions = {}): Promise<DevCluster> {
  const serverCount = options.servers ?? 3;
  const clientCount = options.clients ?? 0;
  const ports = await freeLoopbackPorts(serverCount);
  const retryJoin = ports.map((port) => `127.0.0.1:${port}`);
  const started: EmbeddedAgent[] = [];
  const close = async (): Promise<void> => {
    for (const agent of [...started].reverse()) await agent.close();
  };
  try {
    const servers = await Promise.all(ports.map((serverPort, k) => startAgent({
      ...options.config,
      server: true,
      bootstrapExpect: serverCount,
      retryJoin,
      nodeName: `server-${k + 1}`,
      bindAddr: '127.0.0.1',
      clientAddr: '127.0.0.1',
      httpPort: 0,
      serverPort,
      dnsPort: 0,
      dataDir: options.dataDir === undefined ? null : `${options.dataDir}/server-${k + 1}`,
      dev: options.dataDir === undefined,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    }).then((agent) => (started.push(agent), agent))));
    const clients: EmbeddedAgent[] = [];
    for (let k = 0; k < clientCount; k++) {
      const client = await startAgent({
        ...options.config,
        server: false,
        retryJoin,
        nodeName: `client-${k + 1}`,
        bindAddr: '127.0.0.1',
        clientAddr: '127.0.0.1',
        httpPort: 0,
        dnsPort: 0,
        ...(options.logger === undefined ? {} : { logger: options.logger }),
      });
      started.push(client);
      clients.push(client);
    }
    return { servers, clients, leader: (timeoutMs) => waitForLeader(servers, timeoutMs ?? 30_000), close };
  } catch (error) {
    await close();
    throw error;
  }
}

async function waitForLeader(servers: readonly EmbeddedAgent[], timeoutMs: number): Promise<EmbeddedAgent> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const leader = servers.find((server) => server.isLeader());
    if (leader !== undefined) {
      try {
        await leader.api.write({ type: 'kv-set', nowMs: 0, key: 'conclave/dev-cluster-ready', value: null, flags: 0n, verb: { kind: 'set' } });
        return leader;
      } catch {
        // leadership moved on: look again
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no leader elected within ${timeoutMs} ms`);
}

/** Ports free on 127.0.0.1 right now (bound to 0, then released). */
async function freeLoopbackPorts(count: number): Promise<number[]> {
  const { createServer } = await import('node:net');
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
      });
    });
    if (!ports.includes(port)) ports.push(port);
  }
  return ports;
}

/** No mode given: a dev server on loopback that bootstraps itself. */
function embeddedConfig(fields: Partial<AgentConfig>): AgentConfig {
  const clustered = fields.server !== undefined || (fields.retryJoin?.length ?? 0) > 0 || (fields.bootstrapExpect ?? 0) > 0;
  if (clustered) return finishConfig(fields);
  return finishConfig({ server: true, bootstrap: true, dev: true, bindAddr: '127.0.0.1', clientAddr: '127.0.0.1', ...fields });
}

export type { AgentConfig } from './agent/config.js';
export type { AgentApi } from './agent/agent-api.js';
