import type { DiskCeiling } from './ceilings.js';
import type { FailoverReport } from './failover.js';
import type { LoadReport, Workload } from './load.js';
import type { MachineInfo } from './machine.js';
import { round } from './measure-window.js';

/**
 * Turns every round's reports into medians, Conclave ÷ etcd ratios and the Markdown table.
 * Medians over rounds, not means: one round disturbed by the other engineers' work on this
 * machine should not move the figure.
 */

/** Everything a run produced; written as JSON beside the Markdown. */
export interface BenchResults {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly versions: { readonly node: string; readonly etcd: string; readonly conclave: string };
  readonly options: Readonly<Record<string, unknown>>;
  readonly clusters: readonly { readonly name: string; readonly version: string; readonly settings: Readonly<Record<string, string>> }[];
  readonly ceilings: { readonly disk: DiskCeiling; readonly noop: LoadReport } | null;
  /** Every round of every workload on every target, in the order run. */
  readonly loads: readonly LoadReport[];
  readonly failover: readonly FailoverReport[];
  readonly summary: readonly WorkloadSummary[];
  readonly elapsedSeconds: number;
}

/** Medians of one workload on one target. */
export interface TargetMedians {
  readonly target: string;
  readonly rounds: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Summed over rounds. */
  readonly errors: number;
  readonly serversCpuPercent: number | null;
  readonly loadGeneratorCpuPercent: number;
  /** The cluster not under test, idle meanwhile. */
  readonly idleClusterCpuPercent: number | null;
  /** The machine's other busy CPU (other engineers' work), median over rounds. */
  readonly otherCpuPercent: number | null;
  readonly serverCpuMsPerThousandOps: number | null;
  /** Swarm only. */
  readonly renewsPerSecond: number | null;
  readonly renewP99Ms: number | null;
  readonly wakeP50Ms: number | null;
  readonly wakeP99Ms: number | null;
  /** CAS only: summed over rounds. */
  readonly casSuccesses: number | null;
  readonly casConflicts: number | null;
}

/** One workload: Conclave's and etcd's medians and their ratio. */
export interface WorkloadSummary {
  readonly workload: Workload;
  readonly conclave: TargetMedians | null;
  readonly etcd: TargetMedians | null;
  /** Conclave ÷ etcd: above 1 is better for throughput, below 1 is better for latency. */
  readonly opsRatio: number | null;
  readonly p99Ratio: number | null;
}

/** Median of numbers (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? 0;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? 0) + upper) / 2;
}

function medianOrNull(values: readonly (number | null)[]): number | null {
  const present = values.filter((value): value is number => value !== null);
  return present.length === 0 ? null : round(median(present));
}

/** Medians of one target's rounds of one workload. */
export function targetMedians(reports: readonly LoadReport[]): TargetMedians | null {
  const first = reports[0];
  if (first === undefined) return null;
  const pick = (get: (report: LoadReport) => number): number => round(median(reports.map(get)));
  const isCas = first.workload === 'cas';
  return {
    target: first.target,
    rounds: reports.length,
    opsPerSecond: pick((report) => report.opsPerSecond),
    p50Ms: pick((report) => report.latencyMs.p50Ms),
    p90Ms: pick((report) => report.latencyMs.p90Ms),
    p99Ms: pick((report) => report.latencyMs.p99Ms),
    maxMs: pick((report) => report.latencyMs.maxMs),
    errors: reports.reduce((sum, report) => sum + report.errors, 0),
    serversCpuPercent: medianOrNull(reports.map((report) => report.cpu.serversPercent)),
    loadGeneratorCpuPercent: pick((report) => report.cpu.loadGeneratorPercent),
    idleClusterCpuPercent: medianOrNull(reports.map((report) => report.cpu.idleClusterPercent)),
    otherCpuPercent: medianOrNull(reports.map((report) => report.cpu.otherPercent)),
    serverCpuMsPerThousandOps: medianOrNull(reports.map((report) => report.cpu.serverCpuMsPerThousandOps)),
    renewsPerSecond: medianOrNull(reports.map((report) => report.swarm?.renews.opsPerSecond ?? null)),
    renewP99Ms: medianOrNull(reports.map((report) => report.swarm?.renews.latencyMs.p99Ms ?? null)),
    wakeP50Ms: medianOrNull(reports.map((report) => report.swarm?.wakeLatencyMs.p50Ms ?? null)),
    wakeP99Ms: medianOrNull(reports.map((report) => report.swarm?.wakeLatencyMs.p99Ms ?? null)),
    casSuccesses: isCas ? reports.reduce((sum, report) => sum + (report.cas?.successes ?? 0), 0) : null,
    casConflicts: isCas ? reports.reduce((sum, report) => sum + (report.cas?.conflicts ?? 0), 0) : null,
  };
}

function ratio(conclave: number | null | undefined, etcd: number | null | undefined): number | null {
  if (conclave === null || conclave === undefined || etcd === null || etcd === undefined || etcd === 0) return null;
  return Math.round((conclave / etcd) * 1000) / 1000;
}

/** Groups reports by workload and target protocol and computes the medians and ratios. */
export function summarize(loads: readonly LoadReport[], workloads: readonly Workload[]): WorkloadSummary[] {
  return workloads.map((workload) => {
    const conclave = targetMedians(loads.filter((report) => report.workload === workload && report.protocol === 'consul'));
    const etcd = targetMedians(loads.filter((report) => report.workload === workload && report.protocol === 'etcd'));
    const swarm = workload === 'swarm';
    return {
      workload,
      conclave,
      etcd,
      opsRatio: ratio(swarm ? conclave?.renewsPerSecond : conclave?.opsPerSecond, swarm ? etcd?.renewsPerSecond : etcd?.opsPerSecond),
      p99Ratio: ratio(swarm ? conclave?.wakeP99Ms : conclave?.p99Ms, swarm ? etcd?.wakeP99Ms : etcd?.p99Ms),
    };
  });
}

/** What each workload is compared against on etcd's side. */
export const ETCD_EQUIVALENT: Readonly<Record<Workload, string>> = {
  'put': '/v3/kv/put',
  'get': 'linearizable range',
  'get-consistent': 'linearizable range',
  'get-stale': 'serializable range',
  'cas': 'range + txn(mod_revision)',
  'mixed': 'linearizable range + put',
  'swarm': 'lease keepalive + txn put + streaming watch',
};

const CONSUL_NAME: Readonly<Record<Workload, string>> = {
  'put': 'PUT',
  'get': 'GET (default)',
  'get-consistent': 'GET ?consistent',
  'get-stale': 'GET ?stale',
  'cas': 'CAS (GET + PUT ?cas)',
  'mixed': 'mixed GET/PUT',
  'swarm': 'Swarm (sessions, acquire, blocking watchers)',
};

function cell(value: number | null | undefined, suffix = ''): string {
  return value === null || value === undefined ? 'n/a' : `${value}${suffix}`;
}

function ratioCell(value: number | null): string {
  return value === null ? 'n/a' : `**${value.toFixed(3)}**`;
}

/** The headline comparisons the team's targets are set on. */
function targetsTable(summary: readonly WorkloadSummary[], conclaveName: string): string[] {
  const lines = [
    `| Comparison | ${conclaveName} | etcd | ratio (${conclaveName} ÷ etcd) |`,
    '|---|---:|---:|---:|',
  ];
  const rows: [Workload, string][] = [
    ['put', 'PUT vs put'],
    ['get-consistent', 'GET ?consistent vs linearizable range'],
    ['get', 'GET default vs linearizable range'],
    ['get-stale', 'GET ?stale vs serializable range'],
  ];
  for (const [workload, label] of rows) {
    const entry = summary.find((item) => item.workload === workload);
    if (entry === undefined) continue;
    lines.push(`| ${label}: ops/s | ${cell(entry.conclave?.opsPerSecond)} | ${cell(entry.etcd?.opsPerSecond)} | ${ratioCell(entry.opsRatio)} |`);
    lines.push(`| ${label}: p99 ms | ${cell(entry.conclave?.p99Ms)} | ${cell(entry.etcd?.p99Ms)} | ${ratioCell(entry.p99Ratio)} |`);
  }
  return lines;
}

function workloadsTable(summary: readonly WorkloadSummary[]): string[] {
  const lines = [
    '| Workload | etcd equivalent | Target | ops/s | p50 ms | p90 ms | p99 ms | max ms | errors | servers CPU % | load gen CPU % | idle cluster CPU % | other CPU % | server CPU ms / 1k ops |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const entry of summary) {
    for (const medians of [entry.conclave, entry.etcd]) {
      if (medians === null) continue;
      lines.push(`| ${CONSUL_NAME[entry.workload]} | ${ETCD_EQUIVALENT[entry.workload]} | ${medians.target} | ${medians.opsPerSecond} | ${medians.p50Ms} | ${medians.p90Ms} | ${medians.p99Ms} | ${medians.maxMs} | ${medians.errors} | ${cell(medians.serversCpuPercent)} | ${medians.loadGeneratorCpuPercent} | ${cell(medians.idleClusterCpuPercent)} | ${cell(medians.otherCpuPercent)} | ${cell(medians.serverCpuMsPerThousandOps)} |`);
    }
    const opsLabel = entry.workload === 'swarm' ? 'renews/s' : 'ops/s';
    const p99Label = entry.workload === 'swarm' ? 'wake-up p99' : 'p99';
    lines.push(`| ${CONSUL_NAME[entry.workload]} | | **ratio** | ${opsLabel} ${ratioCell(entry.opsRatio)} | | | ${p99Label} ${ratioCell(entry.p99Ratio)} | | | | | | | |`);
  }
  return lines;
}

function detailTables(summary: readonly WorkloadSummary[]): string[] {
  const lines: string[] = [];
  const swarm = summary.find((item) => item.workload === 'swarm');
  if (swarm !== undefined) {
    lines.push('', '### Swarm', '', '| Target | renews/s | renew p99 ms | watcher wake-up p50 ms | wake-up p99 ms | errors |', '|---|---:|---:|---:|---:|---:|');
    for (const medians of [swarm.conclave, swarm.etcd]) {
      if (medians !== null) lines.push(`| ${medians.target} | ${cell(medians.renewsPerSecond)} | ${cell(medians.renewP99Ms)} | ${cell(medians.wakeP50Ms)} | ${cell(medians.wakeP99Ms)} | ${medians.errors} |`);
    }
  }
  const cas = summary.find((item) => item.workload === 'cas');
  if (cas !== undefined) {
    lines.push('', '### CAS', '', '| Target | swapped (all rounds) | conflicts (correct `false`) |', '|---|---:|---:|');
    for (const medians of [cas.conclave, cas.etcd]) {
      if (medians !== null) lines.push(`| ${medians.target} | ${cell(medians.casSuccesses)} | ${cell(medians.casConflicts)} |`);
    }
  }
  return lines;
}

function failoverTable(failover: readonly FailoverReport[]): string[] {
  if (failover.length === 0) return [];
  const lines = ['', '## Leader failover (SIGKILL the leader under PUT load → first successful write sent after the kill)', '',
    '| Target | trials | failed | p50 ms | p99 ms | min ms | max ms |', '|---|---:|---:|---:|---:|---:|---:|'];
  for (const report of failover) {
    lines.push(`| ${report.target} | ${report.trials} | ${report.failedTrials} | ${cell(report.p50Ms)} | ${cell(report.p99Ms)} | ${cell(report.minMs)} | ${cell(report.maxMs)} |`);
  }
  const byName = (name: string): FailoverReport | undefined => failover.find((report) => report.target === name);
  const etcd = byName('etcd');
  const conclave = failover.find((report) => report.target !== 'etcd');
  if (etcd !== undefined && conclave !== undefined) {
    lines.push(`| **ratio** | | | ${ratioCell(ratio(conclave.p50Ms, etcd.p50Ms))} | ${ratioCell(ratio(conclave.p99Ms, etcd.p99Ms))} | | |`);
  }
  return lines;
}

function ceilingsLines(results: BenchResults): string[] {
  if (results.ceilings === null) return [];
  const { disk, noop } = results.ceilings;
  return ['', '## Ceilings (same run)', '',
    `- **Disk**: ${disk.syncsPerSecond} synced writes/s (128 B write + fdatasync, one at a time) on ${disk.filesystem} at ${disk.directory}; p50 ${disk.latencyMs.p50Ms} ms, p99 ${disk.latencyMs.p99Ms} ms. A write that waits for its own fsync cannot beat this without batching (group commit).`,
    `- **Load generator**: ${noop.opsPerSecond} ops/s against a no-op node:http server in its own process (PUT workload, concurrency ${noop.concurrency}; p50 ${noop.latencyMs.p50Ms} ms, p99 ${noop.latencyMs.p99Ms} ms; load generator CPU ${noop.cpu.loadGeneratorPercent} %, no-op server CPU ${cell(noop.cpu.serversPercent)} % of one core). No result above can exceed this.`,
  ];
}

/** Other processes' CPU above this (percent of one core) marks a round as disturbed. */
const DISTURBED_OTHER_CPU_PERCENT = 20;
/** The report names at most this many disturbed rounds. */
const DISTURBED_LISTED_MAX = 6;

/** Names the rounds during which other work on the shared machine took noticeable CPU. */
function disturbanceLines(loads: readonly LoadReport[]): string[] {
  const disturbed = loads.filter((report) => (report.cpu.otherPercent ?? 0) > DISTURBED_OTHER_CPU_PERCENT);
  if (disturbed.length === 0) return ['', `No round was disturbed: other processes used at most ${DISTURBED_OTHER_CPU_PERCENT} % of a core throughout.`];
  const listed = disturbed.slice(0, DISTURBED_LISTED_MAX).map((report) => `${report.workload}/${report.target} (${report.cpu.otherPercent} %)`);
  const list = disturbed.length > DISTURBED_LISTED_MAX ? `${listed.join(', ')}, … (all in the JSON, cpu.otherPercent)` : listed.join(', ');
  return ['', `**Disturbed rounds** (other processes above ${DISTURBED_OTHER_CPU_PERCENT} % of a core): ${disturbed.length} of ${loads.length}: ${list}. Medians damp this; rerun when the machine is quiet for figures to quote.`];
}

/** The Markdown report. */
export function renderMarkdown(results: BenchResults): string {
  const { machine, versions } = results;
  const conclaveName = results.clusters.find((cluster) => cluster.name !== 'etcd')?.name ?? 'conclave';
  const lines = [
    `# Conclave vs etcd — ${results.date}`,
    '',
    `- **Machine**: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, kernel ${machine.kernel}; data on ${machine.disk.device} (${machine.disk.filesystem}, ${machine.disk.kind}) at ${machine.disk.path}`,
    `- **Versions**: Node ${versions.node}; etcd ${versions.etcd}; Conclave ${versions.conclave}`,
    `- **Run**: ${Object.entries(results.options).map(([name, value]) => `${name}=${Array.isArray(value) ? value.join(',') : String(value)}`).join(', ')}; ${results.elapsedSeconds} s in all`,
    `- **Method**: closed loop, medians over rounds run interleaved (${conclaveName}, etcd, ${conclaveName}, etcd, …); ratio = ${conclaveName} ÷ etcd (above 1 is better for ops/s, below 1 is better for latency). The load generator shares the CPU with the servers: see the CPU columns and the ceilings.`,
  ];
  if (conclaveName.includes('stand-in')) {
    lines.push('', `> **${conclaveName} is not Conclave**: a single in-memory process with no Raft and no disk. Its figures only show the harness works.`);
  }
  lines.push('', '## Targets (3 servers, concurrency and value size as above)', '', ...targetsTable(results.summary, conclaveName));
  lines.push('', '## All workloads (medians)', '', ...workloadsTable(results.summary), ...disturbanceLines(results.loads), ...detailTables(results.summary));
  lines.push(...failoverTable(results.failover), ...ceilingsLines(results));
  lines.push('', '## Settings', '');
  for (const cluster of results.clusters) {
    lines.push(`- **${cluster.name}** ${cluster.version}: ${Object.entries(cluster.settings).map(([name, value]) => `${name}: ${value}`).join('; ')}`);
  }
  return `${lines.join('\n')}\n`;
}
