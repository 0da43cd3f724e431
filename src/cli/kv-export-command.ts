/**
 * `conclave kv export [PREFIX]`: every entry under the prefix as Consul's export JSON
 * (command/kv/exp: `[{"key","flags","value"}]`, value in base64, tab-indented like Go's
 * MarshalIndent), which `kv import` reads back.
 */
import type { CliIo } from './cli-io.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { ApiError, CLIENT_FLAGS, SERVER_FLAGS, requireStatus } from './http-client.js';
import { decodeKvPairs } from './kv-json.js';
import type { KvPair } from './kv-json.js';

const FLAGS = { ...CLIENT_FLAGS, ...SERVER_FLAGS } as const satisfies FlagSpecs;

const HELP = `
Usage: conclave kv export [KEY_OR_PREFIX]

  Retrieves key-value pairs for the given prefix from the key-value store, and
  writes a JSON representation to stdout. "conclave kv import" reads it back.

      $ conclave kv export vault`;

/** A JSON string as Go's encoding/json writes it (HTML characters and U+2028/9 escaped). */
export function goJsonString(text: string): string {
  return JSON.stringify(text).replace(/[<>&\u2028\u2029]/g, (char) => `\\u${(char.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`);
}

/** `json.MarshalIndent(entries, "", "\t")` of Consul's impexp.Entry list. */
export function exportJson(pairs: readonly KvPair[]): string {
  if (pairs.length === 0) return '[]';
  const entries = pairs.map((pair) => [
    '\t{',
    `\t\t"key": ${goJsonString(pair.key)},`,
    `\t\t"flags": ${pair.flags},`,
    `\t\t"value": ${goJsonString(pair.value.toString('base64'))}`,
    '\t}',
  ].join('\n'));
  return `[\n${entries.join(',\n')}\n]`;
}

/** `conclave kv export`. */
export async function kvExportCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, FLAGS, HELP, io);
  if (typeof parsed === 'number') return parsed;
  const { values, args } = parsed;
  if (args.length > 1) {
    io.err(`Too many arguments (expected 1, got ${args.length})`);
    return 1;
  }
  const prefix = (args[0] ?? '').replace(/^\//, '');
  return withClient(values, io, CONNECT_ERROR, async (client) => {
    try {
      const answer = requireStatus(await client.call('GET', `/v1/kv/${prefix}`, [['recurse', ''], ...(values.stale ? [['stale', ''] as const] : [])]), 200, 404);
      io.out(exportJson(answer.status === 404 ? [] : decodeKvPairs(answer)));
      return 0;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      io.err(`Error querying Consul agent: ${messageOf(error)}`);
      return 1;
    }
  });
}
