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
    config: agent.config,
    api: agent.api,
    stopped: agent.stopped,
    close: () => agent.close(),
  };
}

/** No mode given: a dev server on loopback that bootstraps itself. */
function embeddedConfig(fields: Partial<AgentConfig>): AgentConfig {
  const clustered = fields.server !== undefined || (fields.retryJoin?.length ?? 0) > 0 || (fields.bootstrapExpect ?? 0) > 0;
  if (clustered) return finishConfig(fields);
  return finishConfig({ server: true, bootstrap: true, dev: true, bindAddr: '127.0.0.1', clientAddr: '127.0.0.1', ...fields });
}

export type { AgentConfig } from './agent/config.js';
export type { AgentApi } from './agent/agent-api.js';
