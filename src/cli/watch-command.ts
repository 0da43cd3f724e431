/**
 * `conclave watch -type <type> ...`: Consul's `consul watch` without a handler: a blocking-query
 * loop that prints the result as indented JSON each time it changes, until SIGINT or SIGTERM
 * (exit 0). Types: `service` (-service, -tag, -passingonly: `/v1/health/service/<s>`), `services`,
 * `nodes`, `checks` (-service or -state). Errors are printed and retried with a growing pause.
 */
import type { CliIo } from './cli-io.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { ApiError, CLIENT_FLAGS, SERVER_FLAGS, requireStatus } from './http-client.js';
import type { ConsulClient, QueryParams } from './http-client.js';

const FLAGS = {
  ...CLIENT_FLAGS,
  ...SERVER_FLAGS,
  type: { kind: 'string', usage: 'Type of watch: service, services, nodes or checks.' },
  service: { kind: 'string', usage: 'Service to watch (type service; type checks).' },
  tag: { kind: 'list', usage: 'Service tag to filter on; repeatable (type service).' },
  passingonly: { kind: 'bool', usage: 'Only passing instances (type service).' },
  state: { kind: 'string', usage: 'Check state to watch (type checks).' },
} as const satisfies FlagSpecs;

const HELP = `Usage: conclave watch [options]

  Watches a view of the catalog and prints it as JSON each time it changes, until interrupted.`;

/** The blocking wait of each round: long enough to be cheap, short enough to notice a dead agent. */
const WATCH_WAIT = '60s';
/** Pauses after a failed round: doubling from the first to the last. */
const RETRY_MS_FIRST = 200;
const RETRY_MS_MAX = 30_000;

type Values = { readonly type: string; readonly service: string; readonly tag: string[]; readonly passingonly: boolean; readonly state: string; readonly stale: boolean };

/** The path and parameters of a watch, or the error text. */
function targetOf(values: Values): { path: string; params: [string, string][] } | string {
  const params: [string, string][] = values.stale ? [['stale', '']] : [];
  switch (values.type) {
    case 'service':
      if (values.service === '') return 'Must specify a single service to watch';
      for (const tag of values.tag) params.push(['tag', tag]);
      if (values.passingonly) params.push(['passing', '1']);
      return { path: `/v1/health/service/${values.service}`, params };
    case 'services':
      return { path: '/v1/catalog/services', params };
    case 'nodes':
      return { path: '/v1/catalog/nodes', params };
    case 'checks':
      if (values.service !== '' && values.state !== '') return 'Cannot specify service and state';
      return { path: values.service !== '' ? `/v1/health/checks/${values.service}` : `/v1/health/state/${values.state || 'any'}`, params };
    case '':
      return 'Watch type must be specified';
    default:
      return `Unsupported watch type: ${values.type}`;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/** The loop: block on the index, print on a change of the result. */
async function watchLoop(client: ConsulClient, target: { path: string; params: QueryParams }, io: CliIo, signal: AbortSignal): Promise<void> {
  let index = '0';
  let last: string | null = null;
  let retryMs = RETRY_MS_FIRST;
  while (!signal.aborted) {
    try {
      const params: QueryParams = [...target.params, ['index', index], ['wait', WATCH_WAIT]];
      const answer = requireStatus(await client.call('GET', target.path, params, undefined, signal));
      const text = JSON.stringify(JSON.parse(answer.body.toString('utf8')) as unknown, null, 4);
      // An index that went backwards (a restore, another server) restarts from 0 (Consul's watch).
      const next = answer.index ?? '0';
      index = BigInt(next) < BigInt(index) ? '0' : next;
      retryMs = RETRY_MS_FIRST;
      if (text !== last) {
        io.out(text);
        last = text;
      }
    } catch (error) {
      if (signal.aborted) return;
      if (!(error instanceof ApiError) && !(error instanceof SyntaxError)) throw error;
      io.err(`Error querying Consul agent: ${error instanceof ApiError ? messageOf(error) : (error as Error).message}`);
      await sleep(retryMs, signal);
      retryMs = Math.min(retryMs * 2, RETRY_MS_MAX);
    }
  }
}

/** `conclave watch`. */
export async function watchCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, FLAGS, HELP, io);
  if (typeof parsed === 'number') return parsed;
  if (parsed.args.length > 0) {
    io.err('This command takes no arguments; a handler is not supported: the result is printed');
    return 1;
  }
  const target = targetOf(parsed.values);
  if (typeof target === 'string') {
    io.err(target);
    return 1;
  }
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await withClient(parsed.values, io, CONNECT_ERROR, async (client) => {
      await watchLoop(client, target, io, controller.signal);
      return 0;
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
