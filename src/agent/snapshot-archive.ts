import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { BadRequestError } from '../lib/errors.js';
import { RESTORE_BYTES_MAX } from '../state/limits.js';

/**
 * What `GET /v1/snapshot` returns and `PUT /v1/snapshot` takes: opaque to clients (Consul's is a
 * gzipped tar; clients only store and return it). Ours is gzip of one header line of JSON —
 * format, version, the Raft index it was taken at, the state's SHA-256 and size — and the state
 * machine's own snapshot bytes. Restore checks all of it before anything is proposed.
 */
const FORMAT = 'conclave-snapshot';
const VERSION = 1;
/** The header line is small; a longer one is not ours. */
const HEADER_BYTES_MAX = 4096;

export interface SnapshotArchive {
  readonly index: number;
  readonly sha256: string;
  readonly state: Uint8Array;
}

export function packSnapshotArchive(index: number, state: Uint8Array): Uint8Array {
  const sha256 = createHash('sha256').update(state).digest('hex');
  const header = Buffer.from(`${JSON.stringify({ format: FORMAT, version: VERSION, index, sha256, bytes: state.byteLength })}\n`);
  return gzipSync(Buffer.concat([header, state]));
}

/** Unpacks and verifies an archive; anything wrong is the caller's error (400). */
export function unpackSnapshotArchive(archive: Uint8Array): SnapshotArchive {
  let raw: Buffer;
  try {
    raw = gunzipSync(archive, { maxOutputLength: RESTORE_BYTES_MAX + HEADER_BYTES_MAX });
  } catch (error) {
    throw new BadRequestError(`Snapshot is not a gzip stream: ${(error as Error).message}`);
  }
  const newline = raw.indexOf(10);
  if (newline < 0 || newline > HEADER_BYTES_MAX) throw new BadRequestError('Snapshot has no header: not a Conclave snapshot');
  let header: { format?: unknown; version?: unknown; index?: unknown; sha256?: unknown; bytes?: unknown };
  try {
    header = JSON.parse(raw.subarray(0, newline).toString('utf8')) as typeof header;
  } catch {
    throw new BadRequestError('Snapshot header is not JSON: not a Conclave snapshot');
  }
  if (header.format !== FORMAT || header.version !== VERSION) throw new BadRequestError(`Snapshot format ${String(header.format)} v${String(header.version)} is not ${FORMAT} v${VERSION}`);
  const state = raw.subarray(newline + 1);
  if (header.bytes !== state.byteLength) throw new BadRequestError(`Snapshot is truncated: ${state.byteLength} of ${String(header.bytes)} bytes`);
  const sha256 = createHash('sha256').update(state).digest('hex');
  if (header.sha256 !== sha256) throw new BadRequestError('Snapshot checksum mismatch: the archive is corrupt');
  if (typeof header.index !== 'number' || !Number.isSafeInteger(header.index) || header.index < 0) throw new BadRequestError('Snapshot header has no valid index');
  return { index: header.index, sha256, state: new Uint8Array(state) };
}
