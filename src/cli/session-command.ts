/**
 * `conclave session list`: the sessions as a table (Consul has no session command; this one
 * follows its table style): ID, Name, Node, Behavior, TTL, LockDelay, Checks.
 */
import { formatGoDuration } from '../http/go-duration.js';
import type { CliIo } from './cli-io.js';
import { columnize } from './columns.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { ApiError, CLIENT_FLAGS, SERVER_FLAGS, jsonOf } from './http-client.js';
import { dispatcher } from './subcommands.js';

const FLAGS = { ...CLIENT_FLAGS, ...SERVER_FLAGS } as const satisfies FlagSpecs;

/** The Session fields the table shows. */
interface Session {
  readonly ID: string;
  readonly Name: string;
  readonly Node: string;
  readonly Behavior: string;
  readonly TTL: string;
  readonly LockDelay: number;
  readonly NodeChecks: string[] | null;
  readonly ServiceChecks: { ID: string }[] | null;
}

function sessionRow(session: Session): string[] {
  const checks = [...(session.NodeChecks ?? []), ...(session.ServiceChecks ?? []).map((check) => check.ID)];
  return [session.ID, session.Name === '' ? '-' : session.Name, session.Node, session.Behavior, session.TTL === '' ? '-' : session.TTL,
    formatGoDuration(BigInt(session.LockDelay)), checks.length === 0 ? '-' : checks.join(',')];
}

async function list(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, FLAGS, 'Usage: conclave session list [options]\n\n  Lists the sessions of the datacenter.', io);
  if (typeof parsed === 'number') return parsed;
  if (parsed.args.length > 0) {
    io.err(`Too many arguments (expected 0, got ${parsed.args.length})`);
    return 1;
  }
  return withClient(parsed.values, io, CONNECT_ERROR, async (client) => {
    let sessions: Session[];
    try {
      sessions = jsonOf(await client.call('GET', '/v1/session/list', parsed.values.stale ? [['stale', '']] : [])) as Session[];
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      io.err(`Error listing sessions: ${messageOf(error)}`);
      return 1;
    }
    if (sessions.length === 0) {
      io.err('No sessions found.');
      return 0;
    }
    io.out(columnize([['ID', 'Name', 'Node', 'Behavior', 'TTL', 'LockDelay', 'Checks'], ...sessions.map(sessionRow)]));
    return 0;
  });
}

/** `conclave session <subcommand>`. */
export const sessionCommand = dispatcher('session', 'Inspects sessions.', {
  list: { run: list, synopsis: 'Lists the sessions' },
});
