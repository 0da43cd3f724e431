import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resultsDir } from '../faults/jepsen.js';
import { reportSuiteTotals } from '../faults/suite-summary.js';
import { namespacesUp } from './netns-lock.js';

/**
 * Calibration of the Tier 3 checker (RELIABILITY.md "Tier 3", Calibration): Debian's etcd 3.4
 * with `--enable-v2` in kvt-n1..3, behind an adapter that speaks Consul's KV API
 * (test/net/calibrate-etcd.ts), the register workload under a partition nemesis, the same checks
 * as tier3-run.ts. Run A reads with `quorum=true`: 0 anomalies. Run B reads etcd's default local
 * (serializable) reads: a cut-off member serves old values, and the checker must catch at least
 * one, or it is blind. Needs root, `ip netns`, iptables, nsenter and /usr/bin/etcd 3.4
 * (`apt-get install -y etcd-server`); without them it is skipped and says what is missing.
 * CONCLAVE_CALIBRATE_TIME sets the seconds per run (default 40).
 */
const figures: Record<string, unknown> = {};
reportSuiteTotals(t, 'net-calibrate-etcd', figures);
t.setTimeout(900_000);

const here = fileURLToPath(new URL('.', import.meta.url));
const NET_SH = resolve(here, '../../../test/net/net.sh');
const RUNNER = join(here, 'calibrate-etcd.js');
const ETCD = '/usr/bin/etcd';
const TIME = Number(process.env.CONCLAVE_CALIBRATE_TIME ?? 40);
const seed = Number(process.env.CONCLAVE_JEPSEN_SEED ?? Date.now() % 100_000);

function missing(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  for (const tool of ['ip', 'iptables', 'nsenter']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} not installed (apt-get install -y iptables util-linux iproute2)`;
    }
  }
  try {
    const version = execFileSync(ETCD, ['--version'], { encoding: 'utf8' });
    if (!/etcd Version:\s*3\.4\./.test(version)) return `${ETCD} is not etcd 3.4: ${version.split('\n')[0] ?? ''}`;
  } catch {
    return `${ETCD} not runnable (apt-get install -y etcd-server)`;
  }
  if (!existsSync(NET_SH)) return `${NET_SH} not found`;
  return null;
}

const tools = missing();
const namespaces = tools === null ? namespacesUp(NET_SH) : null;
const why = tools ?? namespaces?.why ?? null;
const down = (): void => namespaces?.down();

interface CalibrationFigures {
  readonly verdict: string;
  readonly linearizabilityAnomalies: number;
  readonly certainlyStaleReads: number;
  readonly opsChecked: Record<string, number>;
}

interface CalibrationSummary {
  readonly expectationMet: boolean;
  readonly figures: CalibrationFigures;
  readonly reported: { readonly adapterErrors: readonly string[] };
}

async function run(name: string, reads: 'quorum' | 'local'): Promise<{ code: number; summary: CalibrationSummary | null; output: string; dir: string }> {
  const dir = resultsDir(name);
  const child = spawn('nsenter', ['--net=/var/run/netns/kvt-ctl', process.execPath, RUNNER, JSON.stringify({ reads, timeS: TIME, seed, resultsDir: dir })], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const code = await new Promise<number>((resolveExit) => child.on('exit', (c) => resolveExit(c ?? 1)));
  const file = join(dir, 'summary.json');
  const parsed = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Partial<CalibrationSummary> : null;
  const summary = parsed?.figures === undefined ? null : parsed as CalibrationSummary;
  return { code, summary, output, dir };
}

t.test('calibration against etcd 3.4 (v2 API) in network namespaces', { skip: why ?? false, timeout: 300_000 }, async (t) => {
  t.teardown(down);
  await t.test('A: quorum reads are linearizable: 0 anomalies', async (t) => {
    const result = await run('calibrate-etcd-quorum', 'quorum');
    figures['quorum'] = { dir: result.dir, ...(result.summary ?? {}) };
    t.comment(JSON.stringify(result.summary?.figures ?? {}));
    t.ok(result.summary !== null, result.summary !== null ? `the run produced its figures (${result.dir})` : `no figures (${result.dir})\n${result.output.slice(-3000)}`);
    t.equal(result.summary?.figures.verdict, 'ok', `the checker's verdict (${result.dir})`);
    t.equal(result.summary?.figures.linearizabilityAnomalies, 0, 'no linearizability anomaly');
    t.equal(result.summary?.figures.certainlyStaleReads, 0, 'no certainly-stale read');
    t.ok((result.summary?.figures.opsChecked['read-default'] ?? 0) > 0, 'default reads were checked');
    t.same(result.summary?.reported.adapterErrors, [], 'the adapter understood every etcd reply');
    t.equal(result.code, 0, result.code === 0 ? 'the runner says: expectation met' : `the runner says: expectation not met\n${result.output.slice(-2000)}`);
  });
  await t.test('B: local (serializable) reads are caught: at least one anomaly', async (t) => {
    const result = await run('calibrate-etcd-local', 'local');
    figures['local'] = { dir: result.dir, ...(result.summary ?? {}) };
    t.comment(JSON.stringify(result.summary?.figures ?? {}));
    t.ok(result.summary !== null, result.summary !== null ? `the run produced its figures (${result.dir})` : `no figures (${result.dir})\n${result.output.slice(-3000)}`);
    t.ok((result.summary?.figures.linearizabilityAnomalies ?? 0) >= 1, `the checker caught the stale reads (verdict ${result.summary?.figures.verdict}, ${result.dir})`);
    t.same(result.summary?.reported.adapterErrors, [], 'the adapter understood every etcd reply');
    t.equal(result.code, 0, result.code === 0 ? 'the runner says: expectation met' : `the runner says: expectation not met\n${result.output.slice(-2000)}`);
  });
});
if (why !== null) t.comment(`etcd calibration skipped: ${why}`);
