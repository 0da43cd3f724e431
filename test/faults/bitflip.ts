import { closeSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { assert } from '../../src/lib/assert.js';
import type { Prng } from '../../src/lib/prng.js';

/**
 * Bit flips in a stopped server's data directory (RELIABILITY.md Tier 3 "Bitflip"; CORDS,
 * FAST'17: one bad block caused loss, corruption or unavailability). The files are classified by
 * what they hold, so a run can report which kinds of damage a server refused and which it
 * survived, and a flip picks a kind first: a data dir has a handful of LevelDB and snapshot files
 * beside many small ones, and every kind should get its share of a short CI run.
 */

/** What a file in a server's data dir holds. */
export type DataFileKind =
  | 'leveldb-wal' // raft/log/NNNNNN.log: LevelDB's write-ahead log (recent batches)
  | 'leveldb-table' // raft/log/NNNNNN.ldb|.sst: sorted tables (older batches)
  | 'leveldb-manifest' // raft/log/MANIFEST-NNNNNN: which tables make up the database
  | 'leveldb-current' // raft/log/CURRENT: names the manifest
  | 'leveldb-info-log' // raft/log/LOG, LOG.old: LevelDB's human-readable info log
  | 'snapshot' // raft/snapshots/<term>-<index>.snap
  | 'snapshot-temp' // raft/snapshots/*.snap.tmp: a snapshot write the kill interrupted
  | 'raft-guard' // raft/LOG-WRITTEN (sentinel), raft/CORRUPTION (marker)
  | 'node-id'
  | 'cluster-id'
  | 'other'; // local service registrations and anything newer

export const DATA_FILE_KINDS: readonly DataFileKind[] = [
  'leveldb-wal', 'leveldb-table', 'leveldb-manifest', 'leveldb-current', 'leveldb-info-log',
  'snapshot', 'snapshot-temp', 'raft-guard', 'node-id', 'cluster-id', 'other',
];

/** One file that a flip can hit (regular, not empty: LevelDB's LOCK file has no bytes). */
export interface DataFile {
  /** Relative to the data dir, with '/' separators. */
  readonly path: string;
  readonly kind: DataFileKind;
  readonly bytes: number;
}

/** One flipped bit: byte offset in the file and bit 0 (least significant) to 7. */
export interface BitFlip {
  readonly offset: number;
  readonly bit: number;
}

/** Flips per round, as the brief for the Tier 3 nemesis says: 1–8. */
export const FLIPS_PER_FILE_MIN = 1;
export const FLIPS_PER_FILE_MAX = 8;

/** The kind of a data-dir file by its relative path. */
export function classifyDataFile(path: string): DataFileKind {
  const name = path.split('/').at(-1) ?? path;
  if (path.startsWith('raft/log/')) {
    if (/^\d+\.log$/.test(name)) return 'leveldb-wal';
    if (/^\d+\.(ldb|sst)$/.test(name)) return 'leveldb-table';
    if (/^MANIFEST-\d+$/.test(name)) return 'leveldb-manifest';
    if (name === 'CURRENT') return 'leveldb-current';
    if (name === 'LOG' || name === 'LOG.old') return 'leveldb-info-log';
    return 'other';
  }
  if (path.startsWith('raft/snapshots/') && name.endsWith('.snap')) return 'snapshot';
  if (path.startsWith('raft/snapshots/') && name.endsWith('.snap.tmp')) return 'snapshot-temp';
  if (path === 'raft/LOG-WRITTEN' || path === 'raft/CORRUPTION') return 'raft-guard';
  if (path === 'node-id') return 'node-id';
  if (path === 'cluster-id') return 'cluster-id';
  return 'other';
}

/** Every non-empty regular file under `dataDir`, sorted by path (so a seed picks the same one). */
export function listDataFiles(dataDir: string): DataFile[] {
  const files: DataFile[] = [];
  const walk = (directory: string): void => {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      const full = join(directory, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) {
        const bytes = statSync(full).size;
        const path = relative(dataDir, full).split(sep).join('/');
        if (bytes > 0) files.push({ path, kind: classifyDataFile(path), bytes });
      }
    }
  };
  walk(dataDir);
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * A kind present in `files`, uniformly among the kinds (LevelDB's info log only rarely: it is
 * rewritten at every open and a flip there proves nothing), then a file of that kind uniformly.
 */
export function pickDataFile(files: readonly DataFile[], prng: Prng): DataFile {
  assert(files.length > 0, 'pickDataFile: no files');
  const present = DATA_FILE_KINDS.filter((kind) => files.some((file) => file.kind === kind));
  const weighted = present.flatMap((kind) => (kind === 'leveldb-info-log' ? [kind] : [kind, kind, kind, kind]));
  const kind = prng.pick(weighted);
  return prng.pick(files.filter((file) => file.kind === kind));
}

/**
 * Flips `count` distinct bits of the file at `path` in place (its size does not change) and
 * returns them sorted by offset. Two flips of one bit would cancel, hence distinct.
 */
export function flipBits(path: string, prng: Prng, count: number): BitFlip[] {
  const bytes = statSync(path).size;
  assert(bytes > 0, 'flipBits: the file is empty');
  assert(count >= 1, 'flipBits: at least one flip');
  const wanted = Math.min(count, bytes * 8);
  const chosen = new Map<string, BitFlip>();
  while (chosen.size < wanted) {
    const flip = { offset: prng.nextInt(bytes), bit: prng.nextInt(8) };
    chosen.set(`${flip.offset}:${flip.bit}`, flip);
  }
  const flips = [...chosen.values()].sort((a, b) => a.offset - b.offset || a.bit - b.bit);
  const fd = openSync(path, 'r+');
  try {
    const one = Buffer.alloc(1);
    for (const flip of flips) {
      assert(readSync(fd, one, 0, 1, flip.offset) === 1, 'flipBits: short read');
      one[0] = (one[0] ?? 0) ^ (1 << flip.bit);
      assert(writeSync(fd, one, 0, 1, flip.offset) === 1, 'flipBits: short write');
    }
  } finally {
    closeSync(fd);
  }
  return flips;
}
