/**
 * Shared set-up of the CLI tests: a real HTTP listener on 127.0.0.1 (buildHttpApp over the
 * LocalAgent test double, in this process) and the real CLI run as a child process, the way a
 * user runs it. The CLI is the `src/main.js` next to this compiled test (`build/` under
 * `npm test`, another output folder when built elsewhere).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AgentApi } from '../../src/agent/agent-api.js';
import { buildHttpApp } from '../../src/http/app.js';
import { listenHttp } from '../../src/http/serve.js';
import type { Teardown } from '../http/helpers.js';
import { LocalAgent } from '../http/local-agent.js';

/** The compiled CLI entry point. */
export const MAIN_JS = fileURLToPath(new URL('../../src/main.js', import.meta.url));

/** A child CLI run's outcome. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** An agent's HTTP API listening on loopback, and the test double behind it. */
export interface ApiServer {
  readonly agent: LocalAgent;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `-http-addr=<url>` */
  readonly flag: string;
  /** Runs `conclave <args>` against this server (the flag goes right after the command words given in `command`). */
  cli(command: readonly string[], args?: readonly string[], options?: CliOptions): Promise<CliRun>;
}

/** Options of a CLI run. */
export interface CliOptions {
  readonly stdin?: string;
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * What the child does not inherit: CONSUL_* from the host (the tests set their own), and tap's
 * process-info loader (NODE_OPTIONS), which would triple every run's start-up time.
 */
const NOT_INHERITED = /^(CONSUL_|_TAPJS_|TAP|NODE_OPTIONS$|NODE_V8_COVERAGE$)/;

/** Runs `node main.js ...args` with a clean environment. */
export function runConclave(args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !NOT_INHERITED.test(key)) env[key] = value;
  }
  Object.assign(env, options.env ?? {});
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN_JS, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

/** Starts the API over a fresh LocalAgent (optionally wrapped); closed when `t` ends. */
export async function startApi(t: Teardown, wrap?: (agent: LocalAgent) => AgentApi): Promise<ApiServer> {
  const agent = new LocalAgent();
  const bugs: Error[] = [];
  const app = buildHttpApp({ agent: wrap === undefined ? agent : wrap(agent), options: { onBug: (error) => bugs.push(error) } });
  const { port } = await listenHttp(app, '127.0.0.1', 0);
  t.teardown(async () => {
    agent.close();
    await app.close();
    if (bugs.length > 0) throw new Error(`unexpected assertion failures: ${bugs.map((bug) => bug.message).join('; ')}`);
  });
  const url = `http://127.0.0.1:${port}`;
  const flag = `-http-addr=${url}`;
  return { agent, url, flag, cli: (command, args = [], options = {}) => runConclave([...command, flag, ...args], options) };
}
