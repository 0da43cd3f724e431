/**
 * `conclave kv get [-recurse] [-keys [-separator=/]] [-detailed] [-base64] [KEY_OR_PREFIX]`:
 * Consul's `kv get`, output for output (command/kv/get): the raw value; `key:value` lines with
 * `-recurse`; key names with `-keys`; a tabwriter block per entry with `-detailed`. A missing
 * key is `Error! No key exists at: <key>` and exit 1.
 */
import type { CliIo } from './cli-io.js';
import { alignPairs } from './columns.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags } from './flags.js';
import type { FlagSpecs, FlagValues } from './flags.js';
import { CLIENT_FLAGS, SERVER_FLAGS, requireStatus } from './http-client.js';
import type { ConsulClient, QueryParams } from './http-client.js';
import { decodeKeys, decodeKvPairs } from './kv-json.js';
import type { KvPair } from './kv-json.js';

const FLAGS = {
  ...CLIENT_FLAGS,
  ...SERVER_FLAGS,
  base64: { kind: 'bool', usage: 'Base64 encode the value.' },
  detailed: { kind: 'bool', usage: 'Provide additional metadata about the key: ModifyIndex, flags, session.' },
  keys: { kind: 'bool', usage: 'List keys which start with the given prefix, but not their values.' },
  recurse: { kind: 'bool', usage: 'Recursively look at all keys prefixed with the given path.' },
  separator: { kind: 'string', default: '/', usage: 'String to use as a separator between keys (with -keys only).' },
} as const satisfies FlagSpecs;

const HELP = `
Usage: conclave kv get [options] [KEY_OR_PREFIX]

  Retrieves the value from the key-value store at the given key name. If no key
  exists with that name, an error is returned. If the name or prefix is omitted,
  it defaults to "" which is the root of the key-value store.`;

/** The value as Consul prints it: raw bytes, or base64 with -base64. */
function valueText(pair: KvPair, base64: boolean): string | Buffer {
  return base64 ? pair.value.toString('base64') : pair.value;
}

/** Consul's prettyKVPair (tabwriter, padding 6). */
function detailedPair(pair: KvPair, base64: boolean): Buffer {
  const head = alignPairs([
    ['CreateIndex', String(pair.createIndex)], ['Flags', String(pair.flags)], ['Key', pair.key],
    ['LockIndex', String(pair.lockIndex)], ['ModifyIndex', String(pair.modifyIndex)],
    ['Session', pair.session === '' ? '-' : pair.session], ['Value', ''],
  ]);
  return Buffer.concat([Buffer.from(head), Buffer.from(valueText(pair, base64))]);
}

/** `kv get` with -keys, -recurse, or a single key; returns the exit code. */
async function get(client: ConsulClient, io: CliIo, key: string, values: FlagValues<typeof FLAGS>): Promise<number> {
  const stale: QueryParams = values.stale ? [['stale', '']] : [];
  if (values.keys) {
    const params: QueryParams = [['keys', ''], ...(values.separator === '' ? [] : [['separator', values.separator] as const]), ...stale];
    const answer = requireStatus(await client.call('GET', `/v1/kv/${key}`, params), 200, 404);
    for (const name of answer.status === 404 ? [] : decodeKeys(answer)) io.out(name);
    return 0;
  }
  if (values.recurse) {
    const answer = requireStatus(await client.call('GET', `/v1/kv/${key}`, [['recurse', ''], ...stale]), 200, 404);
    const pairs = answer.status === 404 ? [] : decodeKvPairs(answer);
    pairs.forEach((pair, i) => {
      if (!values.detailed) {
        io.out(Buffer.concat([Buffer.from(`${pair.key}:`), Buffer.from(valueText(pair, values.base64))]));
        return;
      }
      io.out(detailedPair(pair, values.base64));
      if (i < pairs.length - 1) io.out('');
    });
    return 0;
  }
  const answer = requireStatus(await client.call('GET', `/v1/kv/${key}`, stale), 200, 404);
  const pair = answer.status === 404 ? undefined : decodeKvPairs(answer)[0];
  if (pair === undefined) {
    io.err(`Error! No key exists at: ${key}`);
    return 1;
  }
  io.out(values.detailed ? detailedPair(pair, values.base64) : valueText(pair, values.base64));
  return 0;
}

/** `conclave kv get`. */
export async function kvGetCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, FLAGS, HELP, io);
  if (typeof parsed === 'number') return parsed;
  const { values, args } = parsed;
  if (args.length > 1) {
    io.err(`Too many arguments (expected 1, got ${args.length})`);
    return 1;
  }
  // Keys cannot start with "/"; users type "/foo" anyway (Consul strips it too).
  const key = (args[0] ?? '').replace(/^\//, '');
  if (key === '' && !(values.recurse || values.keys)) {
    io.err('Error! Missing KEY argument');
    return 1;
  }
  return withClient(values, io, CONNECT_ERROR, async (client) => {
    try {
      return await get(client, io, key, values);
    } catch (error) {
      io.err(`Error querying Consul agent: ${messageOf(error)}`);
      return 1;
    }
  });
}
