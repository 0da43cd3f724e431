/**
 * `conclave snapshot save <file>` and `conclave snapshot restore <file>` (Consul's command/snapshot):
 * save writes the archive from `GET /v1/snapshot` (to a temporary name, then renamed) and says
 * `Saved and verified snapshot to index N`; restore sends a file to `PUT /v1/snapshot` and says
 * `Restored snapshot`.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { CliIo } from './cli-io.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags, usageText } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { CLIENT_FLAGS, requireStatus } from './http-client.js';
import { dispatcher } from './subcommands.js';
import { unpackSnapshotArchive } from '../agent/snapshot-archive.js';

const SAVE_FLAGS = {
  ...CLIENT_FLAGS,
  stale: { kind: 'bool', usage: 'Let any server answer, possibly with stale data.' },
} as const satisfies FlagSpecs;

const SAVE_HELP = `
Usage: conclave snapshot save [options] FILE

  Retrieves an atomic, point-in-time snapshot of the state of the Conclave servers
  and saves it to FILE.`;

const RESTORE_HELP = `
Usage: conclave snapshot restore [options] FILE

  Restores an atomic, point-in-time snapshot of the state of the Conclave servers
  from FILE. This replaces all the replicated state (keys, sessions, catalog).`;

async function save(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, SAVE_FLAGS, SAVE_HELP, io);
  if (typeof parsed === 'number') return parsed;
  const [file, ...extra] = parsed.args;
  if (file === undefined || extra.length > 0) {
    io.err('This command takes one argument: <file>');
    io.err(usageText(SAVE_HELP, SAVE_FLAGS));
    return 1;
  }
  return withClient(parsed.values, io, CONNECT_ERROR, async (client) => {
    let index: number;
    try {
      const answer = requireStatus(await client.call('GET', '/v1/snapshot', parsed.values.stale ? [['stale', '']] : []));
      index = unpackSnapshotArchive(answer.body).index;
      const temporary = `${file}.part`;
      writeFileSync(temporary, answer.body);
      renameSync(temporary, file);
    } catch (error) {
      io.err(`Error saving snapshot: ${messageOf(error)}`);
      return 1;
    }
    io.out(`Saved and verified snapshot to index ${index}`);
    return 0;
  });
}

async function restore(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, CLIENT_FLAGS, RESTORE_HELP, io);
  if (typeof parsed === 'number') return parsed;
  const [file, ...extra] = parsed.args;
  if (file === undefined || extra.length > 0) {
    io.err('This command takes one argument: <file>');
    io.err(usageText(RESTORE_HELP, CLIENT_FLAGS));
    return 1;
  }
  let archive: Buffer;
  try {
    archive = readFileSync(file);
  } catch (error) {
    io.err(`Error opening snapshot file: ${messageOf(error)}`);
    return 1;
  }
  return withClient(parsed.values, io, CONNECT_ERROR, async (client) => {
    try {
      requireStatus(await client.call('PUT', '/v1/snapshot', [], archive));
    } catch (error) {
      io.err(`Error restoring snapshot: ${messageOf(error)}`);
      return 1;
    }
    io.out('Restored snapshot');
    return 0;
  });
}

/** `conclave snapshot <save|restore>`. */
export const snapshotCommand = dispatcher('snapshot', 'Saves, restores and inspects snapshots of the server state.', {
  save: { run: save, synopsis: 'Saves snapshot of the server state' },
  restore: { run: restore, synopsis: 'Restores snapshot of the server state' },
});
