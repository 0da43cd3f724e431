import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelStorage } from '../../src/raft/storage/level-storage.js';
import type { Entry } from '../../src/raft/core/types.js';

/**
 * How fast durable writes are on this machine, as JSON:
 *   (a) raw fdatasync: small write + fdatasync in a loop, the ceiling for any synced store;
 *   (b) LevelStorage.persist() of 1 entry with sync (one fsync per entry: no group commit);
 *   (c) LevelStorage.persist() of 64 entries of 100 bytes with sync (a group commit of 64).
 * Usage: node build/scripts/bench/storage-bench.js [--dir <parent dir>] [--seconds <per case>]
 * The directory decides what is measured: tmpfs or overlay numbers say nothing about a disk.
 */

/** Each case runs this long unless told otherwise; long enough to average out jitter. */
const CASE_SECONDS_DEFAULT = 3;
/** Hard bound on iterations per case, so a fake fsync (tmpfs) cannot spin for long. */
const ITERATIONS_MAX = 1_000_000;
const ENTRY_DATA_BYTES = 100;
const GROUP_COMMIT_ENTRIES = 64;

/** Linux statfs magic numbers of the filesystems this may run on. */
const FILESYSTEMS: Readonly<Record<number, string>> = {
  0xef53: 'ext2/3/4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x01021994: 'tmpfs',
  0x794c7630: 'overlayfs',
};

interface CaseResult {
  readonly iterations: number;
  readonly seconds: number;
  readonly syncsPerSecond: number;
  readonly entriesPerSecond: number;
  readonly meanLatencyMs: number;
}

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at === -1 ? undefined : process.argv[at + 1];
}

function result(iterations: number, entriesPerIteration: number, startedNs: bigint): CaseResult {
  const seconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
  return {
    iterations,
    seconds: round(seconds),
    syncsPerSecond: round(iterations / seconds),
    entriesPerSecond: round((iterations * entriesPerIteration) / seconds),
    meanLatencyMs: round((seconds * 1000) / iterations),
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function rawFdatasync(directory: string, seconds: number): CaseResult {
  const fd = openSync(join(directory, 'fdatasync.bin'), 'w');
  const record = new Uint8Array(128).fill(0x61);
  const deadlineNs = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const startedNs = process.hrtime.bigint();
  let iterations = 0;
  try {
    while (iterations < ITERATIONS_MAX && process.hrtime.bigint() < deadlineNs) {
      writeSync(fd, record);
      fdatasyncSync(fd);
      iterations++;
    }
  } finally {
    closeSync(fd);
  }
  return result(iterations, 1, startedNs);
}

async function persistLoop(directory: string, entriesPerPersist: number, seconds: number): Promise<CaseResult> {
  const storage = new LevelStorage({ dataDir: directory });
  await storage.load();
  const data = new Uint8Array(ENTRY_DATA_BYTES).fill(0x62);
  const deadlineNs = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const startedNs = process.hrtime.bigint();
  let iterations = 0;
  let lastIndex = 0;
  try {
    while (iterations < ITERATIONS_MAX && process.hrtime.bigint() < deadlineNs) {
      const entries: Entry[] = [];
      for (let i = 1; i <= entriesPerPersist; i++) entries.push({ index: lastIndex + i, term: 1, type: 'normal', data });
      await storage.persist({ hardState: { term: 1, vote: 'bench', commit: lastIndex }, entries, snapshot: null, sync: true });
      lastIndex += entriesPerPersist;
      iterations++;
    }
    return result(iterations, entriesPerPersist, startedNs);
  } finally {
    await storage.close();
  }
}

async function main(): Promise<void> {
  const parent = argument('--dir') ?? tmpdir();
  const seconds = Number(argument('--seconds') ?? CASE_SECONDS_DEFAULT);
  const directory = mkdtempSync(join(parent, 'conclave-storage-bench-'));
  try {
    const filesystemType = statfsSync(directory).type;
    const report = {
      directory,
      filesystem: FILESYSTEMS[filesystemType] ?? `unknown (0x${filesystemType.toString(16)})`,
      node: process.version,
      rawFdatasync: rawFdatasync(directory, seconds),
      persistOneEntrySynced: await persistLoop(join(directory, 'one'), 1, seconds),
      persist64EntriesSynced: await persistLoop(join(directory, 'group'), GROUP_COMMIT_ENTRIES, seconds),
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

await main();
