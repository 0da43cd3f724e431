import type { WorkloadSummary } from './bench-report.js';
import { median } from './bench-report.js';
import type { LoadReport } from './load.js';
import type { MachineInfo } from './machine.js';
import { round } from './measure-window.js';
import type { CpuSummary } from './measure-window.js';
import type { MillionReport, RestartReport } from './scale-million.js';
import type { Percentiles, WatchBatchReport } from './scale-watchers.js';

/**
 * The report of scale.ts: what was measured, under which load, and each issue 7 target with
 * its verdict. Medians over interleaved rounds (PUT) and over batches (watchers), as run.ts.
 */

/** A watcher batch with the CPU it ran under. */
export interface WatchBatchResult extends WatchBatchReport {
  readonly cpu: CpuSummary;
  readonly loadAverageAtStart: number;
}

/** Everything scale.ts produced; written as JSON beside the Markdown. */
export interface ScaleResults {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly versions: { readonly node: string; readonly etcd: string; readonly conclave: string };
  readonly options: Readonly<Record<string, unknown>>;
  /** The 1-minute load average when each step started and ended (`uptime`'s first figure). */
  readonly conditions: { readonly step: string; readonly loadAverageAtStart: number; readonly loadAverageAtEnd: number }[];
  readonly single: { readonly loads: readonly LoadReport[]; readonly summary: WorkloadSummary | null } | null;
  readonly million: readonly MillionReport[];
  readonly watchers: readonly WatchBatchResult[];
  readonly elapsedSeconds: number;
}

/** Issue 7's figures. */
const SINGLE_RATIO_MIN = 3;
const RSS_MIB_MAX = 1024;
const RESTART_MS_MAX = 10_000;
const WAKE_MS_MAX = 10;

function cell(value: number | null | undefined, suffix = ''): string {
  return value === null || value === undefined || Number.isNaN(value) ? 'n/a' : `${value}${suffix}`;
}

function verdict(ok: boolean | null): string {
  return ok === null ? 'not measured' : ok ? 'met' : '**not met**';
}

/** The group a batch belongs to: its label without the ` #n` round suffix. */
function batchGroup(batch: WatchBatchResult): string {
  return batch.label.replace(/ #\d+$/, '');
}

/** Median over batches of one percentile figure. */
function medianOf(batches: readonly WatchBatchResult[], pick: (batch: WatchBatchResult) => number | null): number | null {
  const values = batches.map(pick).filter((value): value is number => value !== null);
  return values.length === 0 ? null : round(median(values));
}

function targetsLines(results: ScaleResults): string[] {
  const { options } = results;
  const lines = ['| Target (issue 7) | measured | goal | verdict |', '|---|---:|---:|---|'];
  const summary = results.single?.summary ?? null;
  if (summary !== null) {
    const ratio = summary.opsRatio;
    lines.push(`| Single-server PUT, c=${String(options['concurrency'])}: dev agent ÷ single-member etcd | ${cell(ratio, '×')} | ≥ ${SINGLE_RATIO_MIN}× | ${verdict(ratio === null ? null : ratio >= SINGLE_RATIO_MIN)} |`);
  }
  const conclave = results.million.find((report) => report.target === 'conclave');
  if (conclave !== undefined) {
    const size = `${conclave.keys.toLocaleString('en-US')} keys`;
    const rss = Math.max(...conclave.members.map((member) => member.rssMiB));
    lines.push(`| ${size}: largest server RSS | ${cell(rss, ' MiB')} | < ${RSS_MIB_MAX} MiB | ${verdict(Number.isNaN(rss) ? null : rss < RSS_MIB_MAX)} |`);
    for (const restart of conclave.restarts.filter((item) => item.kind !== 'follower-empty')) {
      const what = restart.kind === 'follower' ? 'SIGKILL one follower, restart' : 'SIGKILL all 3, restart';
      lines.push(`| ${size}: ${what} → ready | ${cell(restart.readyMs, ' ms')} | < ${RESTART_MS_MAX} ms | ${verdict(restart.readyMs === null ? false : restart.readyMs < RESTART_MS_MAX)} |`);
    }
  }
  for (const group of ['conclave', `conclave with ${String(options['keys'])} keys`]) {
    const batches = results.watchers.filter((batch) => batchGroup(batch) === group);
    if (batches.length === 0) continue;
    const p99 = medianOf(batches, (batch) => batch.fromAck.p99Ms);
    const missed = batches.reduce((sum, batch) => sum + batch.missed, 0);
    const watchers = batches[0]?.watchers ?? 0;
    lines.push(`| ${watchers} watchers (${group}): wake-up p99 after the write's ack${batches.length > 1 ? `, median of ${batches.length} batches` : ''} | ${cell(p99, ' ms')} | ≤ ${WAKE_MS_MAX} ms | ${verdict(p99 === null ? null : p99 <= WAKE_MS_MAX && missed === 0)} |`);
  }
  return lines;
}

function singleLines(results: ScaleResults): string[] {
  const single = results.single;
  if (single === null || single.summary === null) return [];
  const { conclave, etcd, opsRatio, p99Ratio } = single.summary;
  const lines = ['', '## Single server: PUT (dev agent vs single-member etcd)', '',
    '| Target | rounds | ops/s | p50 ms | p99 ms | max ms | errors | servers CPU % | load gen CPU % | other CPU % | server CPU ms / 1k ops |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'];
  for (const medians of [conclave, etcd]) {
    if (medians === null) continue;
    lines.push(`| ${medians.target} | ${medians.rounds} | ${medians.opsPerSecond} | ${medians.p50Ms} | ${medians.p99Ms} | ${medians.maxMs} | ${medians.errors} | ${cell(medians.serversCpuPercent)} | ${medians.loadGeneratorCpuPercent} | ${cell(medians.otherCpuPercent)} | ${cell(medians.serverCpuMsPerThousandOps)} |`);
  }
  lines.push(`| **ratio** (conclave ÷ etcd) | | ${cell(opsRatio)} | | ${cell(p99Ratio)} | | | | | | |`);
  lines.push('', `Every round: ${single.loads.map((load) => `${load.target} ${load.opsPerSecond}`).join(', ')} ops/s.`);
  return lines;
}

function restartRows(report: MillionReport, restart: RestartReport): string[] {
  return restart.members.map((member) => {
    const after = Object.entries(member.raftAfter).map(([name, value]) => `${name} ${value}`).join(', ');
    const milestones = Object.entries(member.milestones).map(([name, ms]) => `${name} ${Math.round(ms)}`).join(', ');
    return `| ${report.target} | ${restart.kind} | ${member.member} | ${restart.preKillCommitIndex} | ${cell(member.serveMs)} | ${cell(member.appliedAtServe)} | ${cell(member.appliedMs)} | ${cell(member.readyMs)} | ${restart.kind === 'cluster' ? cell(restart.firstWriteMs) : ''} | ${milestones} | ${after} |`;
  });
}

function millionLines(results: ScaleResults): string[] {
  if (results.million.length === 0) return [];
  const lines = ['', '## Many keys: memory and restart', ''];
  for (const report of results.million) {
    lines.push(`- **${report.target}**: ${report.keys.toLocaleString('en-US')} keys of ${report.valueBytes} B loaded in ${report.loadSeconds} s (${report.keysPerSecond} keys/s; transactions of ${report.opsPerTxn} writes, ${report.txnInFlight} in flight, all sent to the leader; ${report.txnRetries} retried${report.txnRetries > 0 ? `: ${Object.entries(report.txnErrorKinds).map(([kind, count]) => `${kind} ${count}`).join(', ')}` : ''}).`);
  }
  lines.push('', 'RSS is VmRSS after the load and a few idle seconds; *empty* is the same process before the load (after the baseline restart for the restarted follower); *peak* is VmHWM.', '',
    '| Target | member | role | RSS MiB | empty RSS MiB | peak RSS MiB | data dir MiB | Raft state |', '|---|---:|---|---:|---:|---:|---:|---|');
  for (const report of results.million) {
    for (const member of report.members) {
      const raft = Object.entries(member.raft).map(([name, value]) => `${name} ${value}`).join(', ');
      lines.push(`| ${report.target} | ${member.member} | ${member.role} | ${cell(member.rssMiB)} | ${cell(member.rssEmptyMiB)} | ${cell(member.peakRssMiB)} | ${member.dataDirMiB} | ${raft} |`);
    }
  }
  lines.push('', 'Restarts, timed from the restart (spawn); `follower-empty` is the same restart before the load, the cost of starting the process at all. *Serving*: the status endpoint answers (the snapshot is loaded). *Applied*: its applied index reached the commit index from before the kill. *Ready*: applied, and a local read (`?stale` / serializable range) of the last key loaded returns its value.', '',
    '| Target | kill | member | pre-kill commit | serving ms | applied at serving | applied ms | ready ms | first write ms | from its log (ms after spawn) | Raft state when ready |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|');
  for (const report of results.million) for (const restart of report.restarts) lines.push(...restartRows(report, restart));
  return lines;
}

function percentileCells(figures: Percentiles): string {
  return `${cell(figures.p50Ms)} / ${cell(figures.p99Ms)} / ${cell(figures.maxMs)}`;
}

function watcherLines(results: ScaleResults): string[] {
  if (results.watchers.length === 0) return [];
  const lines = ['', '## Watchers on one prefix: wake-up after a write', '',
    'Per batch: every watcher × every write. *From ack*: from the PUT\'s acknowledgement to the watcher\'s answer (negative: the watcher heard before the writer); *from send*: from the moment the PUT was sent. Milliseconds, p50 / p99 / max.', '',
    '| Batch | watchers | writes | from send | from ack | from ack, watchers on the leader | from ack, on followers | PUT ack ms (median) | first→last watcher ms (median) | missed | errors | servers CPU % | other CPU % | load avg |',
    '|---|---:|---:|---|---|---|---|---:|---:|---:|---|---:|---:|---:|'];
  for (const batch of results.watchers) {
    const ack = batch.writes.length === 0 ? null : round(median(batch.writes.map((write) => write.ackMs)));
    const spread = batch.writes.length === 0 ? null : round(median(batch.writes.map((write) => write.spreadMs)));
    const errors = Object.entries(batch.errorKinds).map(([kind, count]) => `${kind} ${count}`).join(', ') || '0';
    lines.push(`| ${batch.label} | ${batch.watchers} | ${batch.writes.length} | ${percentileCells(batch.fromSend)} | ${percentileCells(batch.fromAck)} | ${percentileCells(batch.fromAckOnLeader)} | ${percentileCells(batch.fromAckOnFollowers)} | ${cell(ack)} | ${cell(spread)} | ${batch.missed} | ${errors} | ${cell(batch.cpu.serversPercent)} | ${cell(batch.cpu.otherPercent)} | ${batch.loadAverageAtStart} |`);
  }
  const groups = [...new Set(results.watchers.map(batchGroup))];
  lines.push('', '| System | batches | from send p50 / p99 (median over batches) | from ack p50 / p99 (median over batches) |', '|---|---:|---|---|');
  for (const group of groups) {
    const batches = results.watchers.filter((batch) => batchGroup(batch) === group);
    lines.push(`| ${group} | ${batches.length} | ${cell(medianOf(batches, (batch) => batch.fromSend.p50Ms))} / ${cell(medianOf(batches, (batch) => batch.fromSend.p99Ms))} | ${cell(medianOf(batches, (batch) => batch.fromAck.p50Ms))} / ${cell(medianOf(batches, (batch) => batch.fromAck.p99Ms))} |`);
  }
  return lines;
}

/** The Markdown report. */
export function renderScaleMarkdown(results: ScaleResults): string {
  const { machine, versions } = results;
  const options = Object.entries(results.options).map(([name, value]) => `${name}=${Array.isArray(value) ? value.join(',') : String(value)}`).join(', ');
  const conditions = results.conditions.map((item) => `${item.step} ${item.loadAverageAtStart} → ${item.loadAverageAtEnd}`).join('; ');
  const lines = [
    `# Conclave scale targets — ${results.date}`,
    '',
    `- **Machine**: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, kernel ${machine.kernel}; data on ${machine.disk.device} (${machine.disk.filesystem}, ${machine.disk.kind}) at ${machine.disk.path}`,
    `- **Versions**: Node ${versions.node}; etcd ${versions.etcd}; Conclave ${versions.conclave}`,
    `- **Run**: ${options}; ${results.elapsedSeconds} s in all`,
    `- **Load average** (1 min, at the start → end of each step; ${machine.cores} cores): ${conditions}. The *other CPU* columns are the machine's busy time minus the harness's processes: other engineers' work.`,
    '',
    '## Targets',
    '',
    ...targetsLines(results),
    ...singleLines(results),
    ...millionLines(results),
    ...watcherLines(results),
  ];
  return `${lines.join('\n')}\n`;
}
