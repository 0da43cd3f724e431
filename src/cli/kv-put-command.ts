/**
 * `conclave kv put [-flags=N] [-base64] [-cas -modify-index=N] [-acquire|-release -session=S]
 * KEY [DATA|@file|-]`: Consul's `kv put` (command/kv/put), messages included:
 * `Success! Data written to: k`, `Error! Did not write to k: CAS failed`,
 * `Success! Lock acquired on: k`, `Error! Did not acquire lock`, ...
 */
import type { CliIo } from './cli-io.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags } from './flags.js';
import type { FlagSpecs, FlagValues } from './flags.js';
import { ApiError, CLIENT_FLAGS, SERVER_FLAGS, requireStatus } from './http-client.js';
import type { ConsulClient, QueryParams } from './http-client.js';

const FLAGS = {
  ...CLIENT_FLAGS,
  ...SERVER_FLAGS,
  acquire: { kind: 'bool', usage: 'Obtain a lock on the key (created if missing); needs -session.' },
  base64: { kind: 'bool', usage: 'Treat the data as base 64 encoded.' },
  cas: { kind: 'bool', usage: 'Perform a Check-And-Set operation; needs -modify-index.' },
  flags: { kind: 'uint64', usage: 'Unsigned integer value to assign to this key-value pair.' },
  'modify-index': { kind: 'uint64', usage: 'The ModifyIndex of the key, for -cas.' },
  release: { kind: 'bool', usage: 'Forfeit the lock on the key; needs -session.' },
  session: { kind: 'string', usage: 'The session for -acquire and -release.' },
} as const satisfies FlagSpecs;

const HELP = `
Usage: conclave kv put [options] KEY [DATA]

  Writes the data to the given path in the key-value store. DATA may be "@file"
  to read a file, or "-" to read stdin; without DATA the key is created empty.

      $ conclave kv put config/redis/maxconns 5
      $ conclave kv put -cas -modify-index=844 config/redis/maxconns 5`;

/** Consul's dataFromArgs: the key and the bytes to write, or an error text. */
async function dataFromArgs(args: readonly string[], io: CliIo): Promise<{ key: string; data: Buffer } | string> {
  if (args.length === 0) return 'Missing KEY argument';
  if (args.length > 2) return `Too many arguments (expected 1 or 2, got ${args.length})`;
  const key = args[0] as string;
  const data = args[1] ?? '';
  if (data.startsWith('@')) {
    try {
      return { key, data: await io.readFile(data.slice(1)) };
    } catch (error) {
      return `Failed to read file: ${(error as Error).message}`;
    }
  }
  if (data === '-') return { key, data: await io.readStdin() };
  return { key, data: Buffer.from(data) };
}

/** Go's strict base64 decoding of the data, or null. */
function decodeBase64(data: Buffer): Buffer | null {
  const text = data.toString('utf8');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  return Buffer.from(text, 'base64');
}

/** The write and its messages; returns the exit code. */
async function put(client: ConsulClient, io: CliIo, key: string, data: Buffer, values: FlagValues<typeof FLAGS>): Promise<number> {
  const flags: QueryParams = values.flags === 0n ? [] : [['flags', String(values.flags)]];
  const path = `/v1/kv/${key.replace(/^\//, '')}`;
  const write = async (params: QueryParams): Promise<boolean> => {
    const answer = requireStatus(await client.call('PUT', path, [...params, ...flags], data));
    return answer.body.toString('utf8').includes('true');
  };
  if (values.cas) {
    if (!await write([['cas', String(values['modify-index'])]])) return fail(io, `Error! Did not write to ${key}: CAS failed`);
    io.out(`Success! Data written to: ${key}`);
  } else if (values.acquire) {
    if (!await write([['acquire', values.session]])) return fail(io, 'Error! Did not acquire lock');
    io.out(`Success! Lock acquired on: ${key}`);
  } else if (values.release) {
    if (!await write([['release', values.session]])) return fail(io, 'Error! Did not release lock');
    io.out(`Success! Lock released on: ${key}`);
  } else {
    await write([]);
    io.out(`Success! Data written to: ${key}`);
  }
  return 0;
}

function fail(io: CliIo, message: string): number {
  io.err(message);
  return 1;
}

/** The prefix Consul puts before a failed call's error, per operation. */
function callErrorPrefix(key: string, values: FlagValues<typeof FLAGS>): string {
  return values.cas ? `Error! Did not write to ${key}: ` : 'Error! Failed writing data: ';
}

/** `conclave kv put`. */
export async function kvPutCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, FLAGS, HELP, io);
  if (typeof parsed === 'number') return parsed;
  const { values, args } = parsed;
  const input = await dataFromArgs(args, io);
  if (typeof input === 'string') return fail(io, `Error! ${input}`);
  let data = input.data;
  if (values.base64) {
    const decoded = decodeBase64(data);
    if (decoded === null) return fail(io, 'Error! Cannot base 64 decode data: illegal base64 data');
    data = decoded;
  }
  if ((values.release || values.acquire) && values.session === '') return fail(io, 'Error! Missing -session (required with -acquire and -release)');
  if (values.cas && values['modify-index'] === 0n) return fail(io, 'Must specify -modify-index with -cas!');
  return withClient(values, io, CONNECT_ERROR, async (client) => {
    try {
      return await put(client, io, input.key, data, values);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      return fail(io, `${callErrorPrefix(input.key, values)}${messageOf(error)}`);
    }
  });
}
