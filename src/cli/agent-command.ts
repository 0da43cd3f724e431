import { Agent } from '../agent/agent.js';
import { loadAgentConfig } from '../agent/config.js';
import { ConfigError, CorruptionError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';

/** What `conclave agent` prints once it listens: where, and how to try it (Consul prints the same kind). */
function banner(agent: Agent): string {
  const config = agent.config;
  const lines = [
    '==> Conclave agent running!',
    `           Version: 0.1.0 (Consul API 1.16)`,
    `         Node name: ${config.nodeName}`,
    `        Datacenter: ${config.datacenter}`,
    `            Server: ${config.server}${config.server ? ` (bootstrap: ${config.bootstrap}, bootstrap_expect: ${config.bootstrapExpect})` : ''}`,
    `       Client Addr: ${agent.httpAddress} (HTTP)`,
    ...(config.server ? [`      Cluster Addr: ${config.advertiseAddr}:${config.serverPort} (RPC)`] : []),
    `          Data dir: ${config.dataDir ?? '(in memory)'}`,
    '',
    '==> Try it:',
    `    curl -X PUT -d hello ${agent.httpAddress}/v1/kv/greeting`,
    `    curl ${agent.httpAddress}/v1/kv/greeting?raw`,
    '',
  ];
  return `${lines.join('\n')}\n`;
}

/** Causes followed into the start-up error line; a longer chain is a loop or noise. */
const CAUSE_DEPTH_MAX = 5;

/**
 * An error's message followed by its causes'. LevelDB's open failure says only "Database failed
 * to open"; its cause names the file ("IO error: …/raft/log/MANIFEST-000102: No such file or
 * directory" after a flipped bit in CURRENT, found by test/faults/bitflip.test.ts).
 */
export function messageWithCauses(error: unknown): string {
  const messages: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < CAUSE_DEPTH_MAX; depth++) {
    if (current.message !== '' && !messages.includes(current.message)) messages.push(current.message);
    current = current.cause;
  }
  return messages.length > 0 ? messages.join(': ') : String(error);
}

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
    process.stderr.write(`==> Error: ${messageWithCauses(error)}\n`);
    return 1;
  }
  process.stdout.write(banner(agent));
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: 'SIGINT' | 'SIGTERM'): void => {
      if (stopping) return;
      stopping = true;
      // Consul's defaults: a client agent leaves on either signal; a server on neither, unless
      // leave_on_terminate / skip_leave_on_interrupt say otherwise.
      const leave = signal === 'SIGTERM' ? config.leaveOnTerminate : !config.skipLeaveOnInterrupt;
      log.info({ signal, leave }, 'caught signal, shutting down');
      const leaving = leave ? agent.api.leave().catch((error: unknown) => log.warn({ err: error }, 'graceful leave failed')) : Promise.resolve();
      leaving.then(() => agent.close()).then(resolve, (error: unknown) => {
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
