import { Agent } from '../agent/agent.js';
import { loadAgentConfig } from '../agent/config.js';
import { ConfigError, CorruptionError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';

/**
 * `conclave agent [flags]`: runs an agent until SIGINT/SIGTERM. Configuration errors and corrupt
 * data stop start-up with a message and a non-zero exit status.
 */
export async function agentCommand(argv: readonly string[]): Promise<number> {
  let loaded;
  try {
    loaded = loadAgentConfig(argv);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`==> Error: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  const { config, warnings } = loaded;
  const log = createLogger({ level: config.logLevel, json: config.logJson });
  for (const warning of warnings) log.warn({ where: warning.where }, warning.message);
  let agent: Agent;
  try {
    agent = await Agent.start(config, log);
  } catch (error) {
    if (error instanceof CorruptionError) {
      log.error({ err: error }, 'refusing to start: the data directory is corrupt');
      process.stderr.write(`==> Error: refusing to start: ${error.message}\n`);
      return 2;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`==> Error: ${error.message}\n`);
      return 1;
    }
    log.error({ err: error }, 'agent failed to start');
    process.stderr.write(`==> Error: ${(error as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'caught signal, shutting down');
      agent.close().then(resolve, (error: unknown) => {
        log.error({ err: error }, 'error while shutting down');
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    void agent.stopped.then(resolve);
  });
  return 0;
}
