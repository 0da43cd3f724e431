/**
 * `conclave join [-wan] <address>...`: asks the agent to join the cluster at each address
 * (command/join): `Successfully joined cluster by contacting N nodes.`, or an error per address
 * and `Failed to join any nodes.` with exit 1.
 */
import type { CliIo } from './cli-io.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags, usageText } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { ApiError, CLIENT_FLAGS, requireStatus } from './http-client.js';

const FLAGS = {
  ...CLIENT_FLAGS,
  wan: { kind: 'bool', usage: 'Joins a server to another server in the WAN pool (not supported by Conclave agents).' },
} as const satisfies FlagSpecs;

const HELP = `
Usage: conclave join [options] address ...

  Tells a running Conclave agent (with "conclave agent") to join the cluster
  by specifying at least one existing member.`;

/** `conclave join`. */
export async function joinCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, FLAGS, HELP, io);
  if (typeof parsed === 'number') return parsed;
  const { values, args } = parsed;
  if (args.length === 0) {
    io.err('At least one address to join must be specified.');
    io.err('');
    io.err(usageText(HELP, FLAGS));
    return 1;
  }
  return withClient(values, io, CONNECT_ERROR, async (client) => {
    let joins = 0;
    for (const address of args) {
      try {
        requireStatus(await client.call('PUT', `/v1/agent/join/${address}`, values.wan ? [['wan', '1']] : []));
        joins++;
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        io.err(`Error joining address '${address}': ${messageOf(error)}`);
      }
    }
    if (joins === 0) {
      io.err('Failed to join any nodes.');
      return 1;
    }
    io.out(`Successfully joined cluster by contacting ${joins} nodes.`);
    return 0;
  });
}
