/**
 * `conclave leave`: the agent leaves the cluster gracefully and shuts down (command/leave):
 * `Graceful leave complete`.
 */
import type { CliIo } from './cli-io.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags, usageText } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { ApiError, CLIENT_FLAGS, requireStatus } from './http-client.js';

const FLAGS = { ...CLIENT_FLAGS } as const satisfies FlagSpecs;

const HELP = `
Usage: conclave leave [options]

  Causes the agent to gracefully leave the Conclave cluster and shutdown.`;

/** `conclave leave`. */
export async function leaveCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, FLAGS, HELP, io);
  if (typeof parsed === 'number') return parsed;
  if (parsed.args.length > 0) {
    // Go's %v of a []string.
    io.err(`Error found unexpected args: [${parsed.args.join(' ')}]`);
    io.out(usageText(HELP, FLAGS));
    return 1;
  }
  return withClient(parsed.values, io, CONNECT_ERROR, async (client) => {
    try {
      requireStatus(await client.call('PUT', '/v1/agent/leave'));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      io.err(`Error leaving: ${messageOf(error)}`);
      return 1;
    }
    io.out('Graceful leave complete');
    return 0;
  });
}
