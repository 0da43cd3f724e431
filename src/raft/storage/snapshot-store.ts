import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { assert } from '../../lib/assert.js';
import { crc32 } from '../../lib/crc32.js';
import { CorruptionError } from '../../lib/errors.js';
import type { Configuration, ServerEntry, Snapshot, SnapshotMeta } from '../core/types.js';
import { INDEX_MAX, SNAPSHOT_FILE_BYTES_MAX, SNAPSHOT_META_BYTES_MAX, SNAPSHOTS_RETAINED_MAX } from './limits.js';

/**
 * Snapshot files in `<dataDir>/raft/snapshots/`, one per snapshot, named `<term>-<index>.snap`.
 *
 * File layout (all integers big-endian):
 *   offset  bytes  field
 *   0       8      magic "CNCLSNAP"
 *   8       4      u32 format version (1)
 *   12      4      u32 CRC-32 of every other byte of the file: [0, 12) then [16, end)
 *   16      4      u32 metaBytes
 *   20      8      u64 dataBytes
 *   28      meta   MessagePack [index, term, [[id, address, voter], ...]]
 *   28+meta data   the state machine's bytes
 * The file must be exactly 28 + metaBytes + dataBytes long: shorter is a truncated file, longer
 * a corrupt length. A file is written to `<name>.tmp`, fsynced, renamed and the directory fsynced
 * (etcd #6368: without the directory fsync the rename may not survive a power loss).
 */

const MAGIC = new TextEncoder().encode('CNCLSNAP');
/** Bumped on any incompatible change of the layout above. */
export const SNAPSHOT_FORMAT_VERSION = 1;
const HEADER_BYTES = 28;
const CRC_OFFSET = 12;
const SNAPSHOT_SUFFIX = '.snap';
const TEMP_SUFFIX = '.tmp';
/** `<term>-<index>.snap`, decimal without leading zeros (so one snapshot has one name). */
const SNAPSHOT_NAME = /^(0|[1-9][0-9]{0,15})-(0|[1-9][0-9]{0,15})\.snap$/;

const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  int64AsType: 'number',
});

/** A snapshot file found in the directory, known by its name only (not yet verified). */
export interface SnapshotFileName {
  readonly fileName: string;
  readonly term: number;
  readonly index: number;
}

/** The snapshot directory: durable writes, retention, verified reads. One owner at a time. */
export class SnapshotStore {
  #writes = 0;
  readonly #directory: string;
  readonly #retained: number;

  /** `retained`: how many of the newest snapshot files `prune()` keeps. */
  constructor(directory: string, retained: number) {
    assert(Number.isInteger(retained), 'snapshotsRetained must be an integer');
    assert(retained >= 1, 'snapshotsRetained must be at least 1: the newest snapshot backs the log');
    assert(retained <= SNAPSHOTS_RETAINED_MAX, 'snapshotsRetained beyond SNAPSHOTS_RETAINED_MAX');
    this.#directory = directory;
    this.#retained = retained;
  }

  /** The directory's path. */
  get directory(): string {
    return this.#directory;
  }

  /**
   * Creates the directory and removes leftover temp files: a `.tmp` is a write that a crash
   * interrupted before its rename, so it never was a snapshot and nothing refers to it.
   */
  async init(): Promise<void> {
    await mkdir(this.#directory, { recursive: true });
    const names = await readdir(this.#directory);
    for (const name of names) {
      if (name.endsWith(TEMP_SUFFIX) && name.includes(SNAPSHOT_SUFFIX)) await unlink(join(this.#directory, name));
    }
  }

  /** Snapshot files by name, newest (highest index, then term) first. Other files are ignored. */
  async list(): Promise<SnapshotFileName[]> {
    const found: SnapshotFileName[] = [];
    for (const fileName of await readdir(this.#directory)) {
      const match = SNAPSHOT_NAME.exec(fileName);
      if (match === null) continue;
      const term = Number(match[1]);
      const index = Number(match[2]);
      if (term > INDEX_MAX || index > INDEX_MAX) continue;
      found.push({ fileName, term, index });
    }
    return found.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  /** Reads and verifies one snapshot file; CorruptionError names the file and the fault. */
  async read(file: SnapshotFileName): Promise<Snapshot> {
    const path = join(this.#directory, file.fileName);
    const { size } = await stat(path);
    if (size > SNAPSHOT_FILE_BYTES_MAX) {
      throw new CorruptionError(`snapshot ${path}: ${size} bytes, beyond SNAPSHOT_FILE_BYTES_MAX (${SNAPSHOT_FILE_BYTES_MAX})`);
    }
    const bytes = await readFile(path);
    const snapshot = decodeSnapshotFile(bytes, path);
    if (snapshot.meta.index !== file.index || snapshot.meta.term !== file.term) {
      throw new CorruptionError(
        `snapshot ${path}: holds term ${snapshot.meta.term} index ${snapshot.meta.index}, which does not match its name`,
      );
    }
    return snapshot;
  }

  /** Writes `snapshot` durably: temp file, fsync, rename, directory fsync. */
  async write(snapshot: Snapshot): Promise<void> {
    const encoded = encodeSnapshotFile(snapshot);
    const fileName = snapshotFileName(snapshot.meta);
    const finalPath = join(this.#directory, fileName);
    // Its own temp name: a snapshot written ahead of the turn (LevelStorage.stageSnapshot) may
    // still be in flight when one with the same name is installed from the leader.
    const tempPath = `${finalPath}.${++this.#writes}${TEMP_SUFFIX}`;
    try {
      const handle = await open(tempPath, 'w');
      try {
        await handle.writeFile(encoded.head);
        await handle.writeFile(encoded.data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tempPath, finalPath);
    } catch (error) {
      // Best effort: a leftover temp file is also removed by the next init().
      await unlink(tempPath).catch(() => undefined);
      throw error;
    }
    await syncDirectory(this.#directory);
  }

  /**
   * Deletes all but the newest `retained` snapshot files. Not fsynced: an old file that comes
   * back after a power loss is only an older snapshot, and the next prune removes it again.
   */
  async prune(): Promise<void> {
    const files = await this.list();
    for (const file of files.slice(this.#retained)) {
      await unlink(join(this.#directory, file.fileName));
    }
  }
}

/** `<term>-<index>.snap`. */
export function snapshotFileName(meta: Pick<SnapshotMeta, 'term' | 'index'>): string {
  return `${meta.term}-${meta.index}${SNAPSHOT_SUFFIX}`;
}

/** Fsyncs a directory, making renames, creations and deletions in it durable. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A snapshot file's bytes: header and meta in `head`, then the state machine's `data` as is. */
export interface EncodedSnapshotFile {
  readonly head: Uint8Array;
  readonly data: Uint8Array;
}

/** Encodes a snapshot in the file layout above (the data is not copied). */
export function encodeSnapshotFile(snapshot: Snapshot): EncodedSnapshotFile {
  assertSnapshotMeta(snapshot.meta);
  const meta = packr.pack([snapshot.meta.index, snapshot.meta.term, snapshot.meta.configuration.servers.map(
    (server) => [server.id, server.address, server.voter],
  )]);
  assert(meta.length <= SNAPSHOT_META_BYTES_MAX, 'snapshot meta beyond SNAPSHOT_META_BYTES_MAX');
  const fileBytes = HEADER_BYTES + meta.length + snapshot.data.length;
  if (fileBytes > SNAPSHOT_FILE_BYTES_MAX) {
    throw new RangeError(`snapshot of ${fileBytes} bytes exceeds SNAPSHOT_FILE_BYTES_MAX (${SNAPSHOT_FILE_BYTES_MAX})`);
  }
  const head = new Uint8Array(HEADER_BYTES + meta.length);
  const view = new DataView(head.buffer);
  head.set(MAGIC, 0);
  view.setUint32(8, SNAPSHOT_FORMAT_VERSION);
  view.setUint32(16, meta.length);
  view.setBigUint64(20, BigInt(snapshot.data.length));
  head.set(meta, HEADER_BYTES);
  view.setUint32(CRC_OFFSET, fileCrc(head, snapshot.data));
  return { head, data: snapshot.data };
}

/**
 * Decodes and verifies a whole snapshot file; CorruptionError names `path` and the fault. The
 * snapshot's data is a plain Uint8Array over `bytes`, not a copy: read() hands over the buffer it
 * just read, and a copy of a 1M-key state was another ~130 MB at the peak of a restart.
 */
export function decodeSnapshotFile(bytes: Uint8Array, path: string): Snapshot {
  const where = `snapshot ${path}`;
  if (bytes.length < HEADER_BYTES) {
    throw new CorruptionError(`${where}: truncated: ${bytes.length} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!MAGIC.every((byte, i) => bytes[i] === byte)) throw new CorruptionError(`${where}: bad magic (not a snapshot file)`);
  const version = view.getUint32(8);
  if (version !== SNAPSHOT_FORMAT_VERSION) {
    throw new CorruptionError(`${where}: format version ${version} is not supported (want ${SNAPSHOT_FORMAT_VERSION})`);
  }
  const metaBytes = view.getUint32(16);
  const dataBytes = view.getBigUint64(20);
  if (metaBytes > SNAPSHOT_META_BYTES_MAX) throw new CorruptionError(`${where}: meta length ${metaBytes} beyond the limit`);
  const expectedBytes = BigInt(HEADER_BYTES + metaBytes) + dataBytes;
  if (BigInt(bytes.length) < expectedBytes) {
    throw new CorruptionError(`${where}: truncated: ${bytes.length} bytes, the header promises ${expectedBytes}`);
  }
  if (BigInt(bytes.length) > expectedBytes) {
    throw new CorruptionError(`${where}: ${bytes.length} bytes, longer than the ${expectedBytes} the header promises`);
  }
  const head = bytes.subarray(0, HEADER_BYTES + metaBytes);
  const data = bytes.subarray(HEADER_BYTES + metaBytes);
  const stored = view.getUint32(CRC_OFFSET);
  const actual = fileCrc(head, data);
  if (stored !== actual) {
    throw new CorruptionError(`${where}: bad checksum (stored 0x${stored.toString(16)}, computed 0x${actual.toString(16)})`);
  }
  const meta = decodeMeta(head.subarray(HEADER_BYTES), where);
  return { meta, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

function fileCrc(head: Uint8Array, data: Uint8Array): number {
  const beforeCrc = crc32(head.subarray(0, CRC_OFFSET));
  return crc32(data, crc32(head.subarray(CRC_OFFSET + 4), beforeCrc));
}

function decodeMeta(bytes: Uint8Array, where: string): SnapshotMeta {
  let fields: unknown;
  try {
    fields = packr.unpack(bytes);
  } catch (error) {
    throw new CorruptionError(`${where}: undecodable meta (${(error as Error).message})`, { cause: error });
  }
  if (!Array.isArray(fields) || fields.length !== 3) throw new CorruptionError(`${where}: meta is not [index, term, servers]`);
  const [index, term, servers] = fields as unknown[];
  if (!isSafeNatural(index) || !isSafeNatural(term)) throw new CorruptionError(`${where}: meta index or term is not valid`);
  if (!Array.isArray(servers)) throw new CorruptionError(`${where}: meta servers is not a list`);
  const entries: ServerEntry[] = [];
  for (const server of servers as unknown[]) {
    if (!Array.isArray(server) || server.length !== 3) throw new CorruptionError(`${where}: meta server is not [id, address, voter]`);
    const [id, address, voter] = server as unknown[];
    if (typeof id !== 'string' || typeof address !== 'string' || typeof voter !== 'boolean') {
      throw new CorruptionError(`${where}: meta server is not [id, address, voter]`);
    }
    entries.push({ id, address, voter });
  }
  const configuration: Configuration = { servers: entries };
  const meta: SnapshotMeta = { index, term, configuration };
  assertSnapshotMeta(meta);
  return meta;
}

/** Asserts a snapshot's metadata: index and term are safe integers, term >= 1 once index >= 1. */
export function assertSnapshotMeta(meta: SnapshotMeta): void {
  assert(isSafeNatural(meta.index), 'snapshot index must be a safe integer >= 0');
  assert(isSafeNatural(meta.term), 'snapshot term must be a safe integer >= 0');
  assert(meta.index === 0 || meta.term >= 1, 'a snapshot of a non-empty log has a term');
  assert(Array.isArray(meta.configuration.servers), 'snapshot configuration must list servers');
}

function isSafeNatural(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
