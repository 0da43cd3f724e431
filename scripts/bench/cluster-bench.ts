import { tmpdir } from 'node:os';
import { request } from 'undici';
import { measureDiskCeiling } from './ceilings.js';
import { startConclaveCluster } from './conclave.js';
import { consulTarget } from './consul-target.js';
import { latencyLine, LOAD_DEFAULTS, runLoad } from './load.js';
import type { Workload } from './load.js';
import { SWARM_DEFAULTS } from './swarm-workload.js';

/**
 * The real 3-server Conclave cluster alone (the durable-cluster and HTTP API issues): each
 * workload at concurrency 1 and 64 through all three servers, with commits/s, p50/p99 and —
 * from every server's /v1/debug/raft counters — synced writes per committed entry, which shows
 * group commit at work next to the disk's own fsync rate. The etcd comparison is `run.ts`.
 *
 *   node build/scripts/bench/cluster-bench.js [--duration 5] [--workloads put,get,...]
 */
function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

interface RaftStats {
  syncedWrites: number;
  entriesApplied: number;
  entriesPersisted: number;
}

async function raftStats(urls: readonly string[]): Promise<RaftStats[]> {
  return Promise.all(urls.map(async (url) => {
    const response = await request(`${url}/v1/debug/raft`);
    const body = (await response.body.json()) as { stats: RaftStats };
    return body.stats;
  }));
}

const duration = Number(option('duration', '5'));
const workloads = option('workloads', 'put,get,get-consistent,get-stale,cas').split(',') as Workload[];
const disk = measureDiskCeiling(tmpdir(), 2);
console.log(JSON.stringify({ ceiling: 'disk', syncedWritesPerSecond: Math.round(disk.syncsPerSecond), latencyMs: disk.latencyMs }));
const cluster = await startConclaveCluster();
const rows: string[] = [];
try {
  for (const workload of workloads) {
    for (const concurrency of [1, 64]) {
      const target = consulTarget({ urls: cluster.clientUrls, connections: concurrency + 4, watchConnections: 4 });
      const before = await raftStats(cluster.clientUrls);
      const report = await runLoad({
        ...LOAD_DEFAULTS,
        target,
        targetName: 'conclave',
        workload,
        concurrency,
        durationSeconds: duration,
        swarm: SWARM_DEFAULTS,
        serverPids: cluster.pids(),
      });
      const after = await raftStats(cluster.clientUrls);
      await target.close();
      const synced = after.reduce((sum, s, k) => sum + s.syncedWrites - (before[k]?.syncedWrites ?? 0), 0);
      const persisted = after.reduce((sum, s, k) => sum + s.entriesPersisted - (before[k]?.entriesPersisted ?? 0), 0);
      const perCommit = persisted > 0 ? (synced / (persisted / 3)).toFixed(3) : '-';
      const line = `| ${workload} | ${concurrency} | ${Math.round(report.opsPerSecond)} | ${latencyLine(report.latencyMs)} | ${report.errors} | ${perCommit} |`;
      rows.push(line);
      console.log(JSON.stringify({ workload, concurrency, opsPerSecond: Math.round(report.opsPerSecond), latencyMs: report.latencyMs, errors: report.errors, syncedWritesPerCommit: perCommit }));
    }
  }
} finally {
  await cluster.stop();
}
console.log('\n| workload | concurrency | ops/s | latency | errors | fsyncs per committed entry (all servers) |\n|---|---:|---:|---|---:|---:|');
for (const row of rows) console.log(row);
