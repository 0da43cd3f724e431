import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startFakeConsul } from '../../scripts/bench/fake-consul.js';
import { directoryBytes, logMilestones, millionValue, processMemoryMiB } from '../../scripts/bench/scale-million.js';
import { percentiles, runWatchBatch } from '../../scripts/bench/scale-watchers.js';

// The scale script's pieces that need no cluster: values, percentiles, log milestones, memory,
// and one small watcher batch against the in-process stand-in. No timing assertions (shared machine).

t.test('millionValue has the asked size and names its key', async (t) => {
  const value = millionValue(123_456, 100);
  t.equal(value.length, 100);
  t.ok(value.startsWith('123456;'));
  t.equal(millionValue(7, 2), '7;', 'never cut below the key');
});

t.test('percentiles are nearest-rank over unsorted samples, negatives included', async (t) => {
  const samples = Array.from({ length: 100 }, (_, index) => 99 - index - 10); // -10 … 89
  const figures = percentiles(samples);
  t.equal(figures.count, 100);
  t.equal(figures.minMs, -10);
  t.equal(figures.p50Ms, 39);
  t.equal(figures.p99Ms, 88);
  t.equal(figures.maxMs, 89);
  t.same(percentiles([]), { count: 0, p50Ms: null, p90Ms: null, p99Ms: null, maxMs: null, minMs: null });
});

t.test('logMilestones takes the first matching line after the start, in both log formats', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'scale-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'server.log');
  writeFileSync(path, [
    '2026-11-27T05:00:00.000Z [INFO ] http: Server listening at http://127.0.0.1:1', // before the start: ignored
    '2026-11-27T05:00:10.250Z [INFO ] transport: listening on the server port address=127.0.0.1:2',
    '==> banner line without a time',
    '2026-11-27T05:00:10.500Z [INFO ] http: Server listening at http://127.0.0.1:1',
    '2026-11-27 05:00:11.000000 I | embed: ready to serve client requests',
    '2026-11-27T05:00:12.000Z [INFO ] http: Server listening at http://127.0.0.1:1',
  ].join('\n'));
  const since = Date.parse('2026-11-27T05:00:10.000Z');
  t.same(logMilestones(path, since, { port: /listening on the server port/, http: /Server listening at/, etcd: /ready to serve/, never: /nothing/ }),
    { port: 250, http: 500, etcd: 1000 });
  t.same(logMilestones(join(dir, 'missing.log'), since, { http: /x/ }), {});
});

t.test('processMemoryMiB and directoryBytes read this process and a directory', async (t) => {
  const memory = processMemoryMiB(process.pid);
  t.ok(memory !== undefined && memory.rss > 0 && memory.peak >= memory.rss, 'VmRSS and VmHWM of this process');
  t.equal(processMemoryMiB(2 ** 22 + 12_345), undefined, 'a process that does not exist');
  const dir = mkdtempSync(join(tmpdir(), 'scale-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a'), Buffer.alloc(1000));
  t.equal(directoryBytes(dir), 1000);
  t.equal(directoryBytes(join(dir, 'missing')), 0);
});

t.test('a watcher batch against the stand-in: every watcher sees every write', async (t) => {
  const fake = await startFakeConsul();
  t.teardown(() => fake.close());
  const report = await runWatchBatch({
    label: 'stand-in', protocol: 'consul', urls: [fake.url], writeEndpoint: 0, leaderEndpoint: 0,
    watchers: 20, writes: 3, valueBytes: 100, settleMs: 20,
  });
  t.equal(report.writes.length, 3);
  t.equal(report.missed, 0);
  t.equal(report.fromAck.count, 60, 'one sample per watcher and write');
  t.equal(report.fromAckOnLeader.count, 60);
  t.same(report.errorKinds, {});
});
