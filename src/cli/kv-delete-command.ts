/**
 * `conclave kv delete [-recurse] [-cas -modify-index=N] KEY_OR_PREFIX`: Consul's `kv delete`
 * (command/kv/del), with its argument checks and messages.
 */
import type { CliIo } from './cli-io.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { ApiError, CLIENT_FLAGS, SERVER_FLAGS, requireStatus } from './http-client.js';

const FLAGS = {
  ...CLIENT_FLAGS,
  ...SERVER_FLAGS,
  cas: { kind: 'bool', usage: 'Perform a Check-And-Set operation; needs -modify-index.' },
  'modify-index': { kind: 'uint64', usage: 'The ModifyIndex of the key, for -cas.' },
  recurse: { kind: 'bool', usage: 'Recursively delete all keys with the path.' },
} as const satisfies FlagSpecs;

const HELP = `
Usage: conclave kv delete [options] KEY_OR_PREFIX

  Removes the value from the key-value store at the given path. If no key exists
  at the path, no action is taken. With -recurse, every key starting with the
  prefix is deleted ("foo" also deletes "food" and "foo/bar").`;

/** The argument checks Consul makes before connecting; an error text, or null. */
function argumentError(key: string, values: { cas: boolean; recurse: boolean; 'modify-index': bigint }): string | null {
  if (key === '' && !values.recurse) return 'Error! Missing KEY argument';
  if (values.cas && values['modify-index'] === 0n) return 'Cannot delete a key that does not exist. Provide a -modify-index greater than than 0.';
  if (values['modify-index'] !== 0n && !values.cas) return 'Cannot specify -modify-index without -cas!';
  if (values.recurse && values.cas) return 'Cannot specify both -cas and -recurse!';
  return null;
}

/** `conclave kv delete`. */
export async function kvDeleteCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, FLAGS, HELP, io);
  if (typeof parsed === 'number') return parsed;
  const { values, args } = parsed;
  if (args.length > 1) {
    io.err(`Too many arguments (expected 1, got ${args.length})`);
    return 1;
  }
  const key = (args[0] ?? '').replace(/^\//, '');
  const invalid = argumentError(key, values);
  if (invalid !== null) {
    io.err(invalid);
    return 1;
  }
  const path = `/v1/kv/${key}`;
  return withClient(values, io, CONNECT_ERROR, async (client) => {
    const failure = values.recurse ? `Error! Did not delete prefix ${key}: ` : values.cas ? `Error! Did not delete key ${key}: ` : `Error deleting key ${key}: `;
    try {
      if (values.recurse) {
        requireStatus(await client.call('DELETE', path, [['recurse', '']]));
        io.out(`Success! Deleted keys with prefix: ${key}`);
        return 0;
      }
      const answer = requireStatus(await client.call('DELETE', path, values.cas ? [['cas', String(values['modify-index'])]] : []));
      if (values.cas && !answer.body.toString('utf8').includes('true')) {
        io.err(`Error! Did not delete key ${key}: CAS failed`);
        return 1;
      }
      io.out(`Success! Deleted key: ${key}`);
      return 0;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      io.err(`${failure}${messageOf(error)}`);
      return 1;
    }
  });
}
