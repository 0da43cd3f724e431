import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { consulTarget } from './consul-target.js';
import { LatencyHistogram } from './latency-histogram.js';
import type { LatencySummary } from './latency-histogram.js';
import { runLoad } from './load.js';
import type { LoadOptions, LoadReport } from './load.js';
import { round } from './measure-window.js';
import { ManagedProcess, freePorts, waitUntil } from './processes.js';
import { controlRequest } from './bench-cluster.js';

/**
 * What bounds any result on this machine, measured in the same run:
 * - the disk: small write + fdatasync in a loop, in the filesystem that holds the data dirs
 *   (every acknowledged write of etcd or Conclave waits for at least one such sync);
 * - the load generator: the same closed loop against a no-op HTTP server in its own process
 *   (see noop-server.ts), i.e. the most requests/s this generator can drive here at all.
 */

/** Linux statfs magic numbers of filesystems this may run on. */
const FILESYSTEMS: Readonly<Record<number, string>> = {
  0xef53: 'ext2/3/4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x01021994: 'tmpfs',
  0x794c7630: 'overlayfs',
};
/** Bound on sync iterations, so a fake fsync (tmpfs) cannot spin for long. */
const SYNC_ITERATIONS_MAX = 1_000_000;
/** A Raft entry of a 100-byte value plus framing is about this size. */
const SYNC_RECORD_BYTES = 128;
const NOOP_MAIN = fileURLToPath(new URL('./noop-server.js', import.meta.url));

/** The disk's synced-write rate. */
export interface DiskCeiling {
  readonly directory: string;
  readonly filesystem: string;
  readonly syncsPerSecond: number;
  readonly latencyMs: LatencySummary;
}

/** The filesystem type name of a path. */
export function filesystemOf(path: string): string {
  const type = statfsSync(path).type;
  return FILESYSTEMS[type] ?? `unknown (0x${type.toString(16)})`;
}

/** Small write + fdatasync, in a loop, for `seconds`, in a temp dir under `parentDir`. */
export function measureDiskCeiling(parentDir: string = tmpdir(), seconds = 2): DiskCeiling {
  const directory = mkdtempSync(join(parentDir, 'conclave-bench-disk-'));
  const histogram = new LatencyHistogram();
  const record = new Uint8Array(SYNC_RECORD_BYTES).fill(0x61);
  let iterations = 0;
  const startedMs = performance.now();
  const deadlineMs = startedMs + seconds * 1000;
  const fd = openSync(join(directory, 'sync.bin'), 'w');
  try {
    while (iterations < SYNC_ITERATIONS_MAX && performance.now() < deadlineMs) {
      const beforeMs = performance.now();
      writeSync(fd, record);
      fdatasyncSync(fd);
      histogram.recordMs(performance.now() - beforeMs);
      iterations++;
    }
  } finally {
    closeSync(fd);
  }
  const elapsedSeconds = (performance.now() - startedMs) / 1000;
  const filesystem = filesystemOf(directory);
  rmSync(directory, { recursive: true, force: true });
  return { directory: parentDir, filesystem, syncsPerSecond: round(iterations / elapsedSeconds), latencyMs: histogram.summary() };
}

/** The load generator's own ceiling: the PUT workload against a no-op server in another process. */
export async function measureNoopCeiling(
  options: Pick<LoadOptions, 'concurrency' | 'warmupSeconds' | 'durationSeconds' | 'valueBytes' | 'seed'>,
  logDir: string = tmpdir(),
): Promise<LoadReport> {
  const [port] = await freePorts(1);
  const url = `http://127.0.0.1:${port}`;
  const server = new ManagedProcess('noop-server', process.execPath, [NOOP_MAIN, '--port', String(port)], join(logDir, 'conclave-bench-noop.log'));
  server.start();
  const target = consulTarget({ urls: [url], connections: options.concurrency, watchConnections: 1 });
  try {
    await waitUntil('the no-op server', 10_000, async () => (await controlRequest(`${url}/`, 'PUT', 'x')).text === 'true');
    return await runLoad({
      ...options,
      target,
      targetName: 'noop',
      workload: 'put',
      keySpace: 1000,
      readRatio: 0,
      swarm: { sessions: 1, ttlSeconds: 10, updateIntervalMs: 1000, watchers: 0 },
      serverPids: server.pid === undefined ? [] : [server.pid],
      errorBackoffMs: 0,
    });
  } finally {
    await target.close();
    await server.stop();
    rmSync(join(logDir, 'conclave-bench-noop.log'), { force: true });
  }
}
