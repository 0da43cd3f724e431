/**
 * `conclave kv import [DATA|@file|-]`: writes every entry of a `kv export` JSON document
 * (command/kv/imp), printing `Imported: <key>` for each; stops at the first failure.
 */
import { arrayField, isJsonObject, JsonTypeError, matchFields, stringField, uint64Field, unexpectedType } from '../http/json-fields.js';
import { JsonSyntaxError, readJson } from '../http/json-reader.js';
import type { CliIo } from './cli-io.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { ApiError, CLIENT_FLAGS, SERVER_FLAGS, requireStatus } from './http-client.js';

const FLAGS = { ...CLIENT_FLAGS, ...SERVER_FLAGS } as const satisfies FlagSpecs;

const HELP = `
Usage: conclave kv import [DATA]

  Imports key-value pairs from the JSON representation that "conclave kv export"
  writes. DATA may be "@file" to read a file, or "-" to read stdin.

      $ conclave kv import @filename.json
      $ cat filename.json | conclave kv import -`;

/** One entry of the document (Consul's impexp.Entry). */
interface ImportEntry {
  readonly key: string;
  readonly flags: bigint;
  readonly value: string;
}

/** Consul's dataFromArgs for import: the document text, or an error text. */
async function documentFromArgs(args: readonly string[], io: CliIo): Promise<{ text: string } | { error: string }> {
  if (args.length === 0) return { error: 'Missing DATA argument' };
  if (args.length > 1) return { error: `Too many arguments (expected 1, got ${args.length})` };
  const data = args[0] as string;
  if (data === '') return { error: 'Empty DATA argument' };
  if (data.startsWith('@')) {
    try {
      return { text: (await io.readFile(data.slice(1))).toString('utf8') };
    } catch (error) {
      return { error: `Failed to read file: ${(error as Error).message}` };
    }
  }
  if (data === '-') return { text: (await io.readStdin()).toString('utf8') };
  return { text: data };
}

/** Go's json.Unmarshal into []*impexp.Entry (field names case-insensitive); throws Go's texts. */
function decodeEntries(text: string): ImportEntry[] {
  const items = arrayField(readJson(text), 'Entry', '[]*impexp.Entry') ?? [];
  return items.filter((item) => item !== null).map((item) => {
    if (!isJsonObject(item)) throw unexpectedType(item, 'Entry', 'impexp.Entry');
    const fields = matchFields(item, ['key', 'flags', 'value'] as const);
    return {
      key: stringField(fields.get('key'), 'Entry.key') ?? '',
      flags: uint64Field(fields.get('flags'), 'Entry.flags') ?? 0n,
      value: stringField(fields.get('value'), 'Entry.value') ?? '',
    };
  });
}

/** `conclave kv import`. */
export async function kvImportCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, FLAGS, HELP, io);
  if (typeof parsed === 'number') return parsed;
  const document = await documentFromArgs(parsed.args, io);
  if ('error' in document) {
    io.err(`Error! ${document.error}`);
    return 1;
  }
  let entries: ImportEntry[];
  try {
    entries = decodeEntries(document.text);
  } catch (error) {
    if (!(error instanceof JsonSyntaxError || error instanceof JsonTypeError)) throw error;
    io.err(`Cannot unmarshal data: ${error.message}`);
    return 1;
  }
  return withClient(parsed.values, io, CONNECT_ERROR, async (client) => {
    for (const entry of entries) {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(entry.value) || entry.value.length % 4 !== 0) {
        io.err(`Error base 64 decoding value for key ${entry.key}: illegal base64 data`);
        return 1;
      }
      const flags = entry.flags === 0n ? [] : [['flags', String(entry.flags)] as const];
      try {
        requireStatus(await client.call('PUT', `/v1/kv/${entry.key.replace(/^\//, '')}`, flags, Buffer.from(entry.value, 'base64')));
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        io.err(`Error! Failed writing data for key ${entry.key}: ${messageOf(error)}`);
        return 1;
      }
      io.out(`Imported: ${entry.key}`);
    }
    return 0;
  });
}
