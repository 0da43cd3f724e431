/**
 * `conclave force-leave [-prune] <node>`: forces a member into the "left" state
 * (command/forceleave); prints nothing on success, as Consul's.
 */
import type { CliIo } from './cli-io.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags, usageText } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { ApiError, CLIENT_FLAGS, requireStatus } from './http-client.js';

const FLAGS = {
  ...CLIENT_FLAGS,
  prune: { kind: 'bool', usage: 'Remove the agent forcibly from the list of members (and a server from the Raft configuration).' },
} as const satisfies FlagSpecs;

const HELP = `
Usage: conclave force-leave [options] name

  Forces a member of a Conclave cluster to enter the "left" state. This is most
  useful for cleaning out "failed" nodes that are never coming back.`;

/** `conclave force-leave`. */
export async function forceLeaveCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, FLAGS, HELP, io);
  if (typeof parsed === 'number') return parsed;
  const { values, args } = parsed;
  const node = args[0];
  if (args.length !== 1 || node === undefined) {
    io.err('A single node name must be specified to force leave.');
    io.err('');
    io.err(usageText(HELP, FLAGS));
    return 1;
  }
  return withClient(values, io, CONNECT_ERROR, async (client) => {
    try {
      requireStatus(await client.call('PUT', `/v1/agent/force-leave/${node}`, values.prune ? [['prune', '1']] : []));
      return 0;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      io.err(`Error force leaving: ${messageOf(error)}`);
      return 1;
    }
  });
}
