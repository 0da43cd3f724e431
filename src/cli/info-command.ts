/**
 * `conclave info`: the agent's `/v1/agent/self` Stats as Consul's `info` prints them
 * (command/info): each section as `name:`, then `\tkey = value` lines, all sorted.
 */
import type { CliIo } from './cli-io.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { ApiError, CLIENT_FLAGS, jsonOf } from './http-client.js';

const FLAGS = { ...CLIENT_FLAGS } as const satisfies FlagSpecs;

const HELP = `
Usage: conclave info [options]

  Provides debugging information for operators.`;

/** Go's `%s` of a decoded JSON value (strings as they are). */
function goText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** `conclave info`. */
export async function infoCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, FLAGS, HELP, io);
  if (typeof parsed === 'number') return parsed;
  return withClient(parsed.values, io, CONNECT_ERROR, async (client) => {
    let self: Record<string, unknown>;
    try {
      self = jsonOf(await client.call('GET', '/v1/agent/self')) as Record<string, unknown>;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      io.err(`Error querying agent: ${messageOf(error)}`);
      return 1;
    }
    const stats = self['Stats'];
    if (typeof stats !== 'object' || stats === null) {
      io.err(`Agent response did not contain 'Stats' key: ${JSON.stringify(self)}`);
      return 1;
    }
    for (const section of Object.keys(stats).sort()) {
      io.out(`${section}:`);
      const values = (stats as Record<string, unknown>)[section];
      if (typeof values !== 'object' || values === null) {
        io.err(`Got invalid subkey in stats: ${JSON.stringify(values)}`);
        return 1;
      }
      for (const key of Object.keys(values).sort()) io.out(`\t${key} = ${goText((values as Record<string, unknown>)[key])}`);
    }
    return 0;
  });
}
