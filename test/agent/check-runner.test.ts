/**
 * The agent's check runners against real local servers: HTTP status mapping (200/429/500),
 * output captured and truncated, timeouts, TCP against an open and a closed port, scripts, no
 * overlapping runs of one check, the concurrency bound; and the local state's TTL expiry
 * (`TTL expired`) and DeregisterCriticalServiceAfter reaper.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { once } from 'node:events';
import { Agent } from 'undici';
import t from 'tap';
import { CheckRunner, runHttpCheck, runScriptCheck, runTcpCheck } from '../../src/agent/check-runner.js';
import type { CheckResult } from '../../src/agent/check-runner.js';
import type { CheckSpec } from '../../src/agent/check-types.js';
import { truncateOutput } from '../../src/agent/check-types.js';
import { LocalState } from '../../src/agent/local-state.js';
import { silentLogger } from '../../src/lib/logger.js';
import { freePorts } from '../cluster/harness.js';

function spec(fields: Partial<CheckSpec>): CheckSpec {
  return {
    checkId: 'c', name: 'c', notes: '', serviceId: '', initialStatus: 'critical', kind: 'http', http: '', method: '', header: {}, body: '',
    tlsSkipVerify: false, tcp: '', args: [], intervalMs: 100, timeoutMs: 0, ttlMs: 0, deregisterCriticalServiceAfterMs: 0, outputMaxBytes: 0,
    ...fields,
  };
}

/** An HTTP server whose answer for `/<code>` is that status; `/slow` never answers; `/big` sends 100 KiB. */
async function httpServer(t: { teardown(fn: () => unknown): void }): Promise<{ url: string; server: Server; hits: () => number }> {
  let hits = 0;
  const server = createServer((request, response) => {
    hits++;
    const path = request.url ?? '/';
    if (path === '/slow') return;
    if (path === '/big') {
      response.end('x'.repeat(100 * 1024));
      return;
    }
    response.statusCode = Number(path.slice(1)) || 200;
    response.end(`body of ${path} ${request.headers['x-probe'] ?? ''}`.trim());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, server, hits: () => hits };
}

t.test('HTTP: 2xx passing, 429 warning, others critical; output names method, URL, status and body', async (t) => {
  const { url } = await httpServer(t);
  const dispatcher = new Agent();
  t.teardown(() => dispatcher.close());
  const ok = await runHttpCheck(spec({ http: `${url}/200`, header: { 'X-Probe': ['yes'] } }), dispatcher);
  t.same(ok, { status: 'passing', output: `HTTP GET ${url}/200: 200 OK Output: body of /200 yes` });
  t.equal((await runHttpCheck(spec({ http: `${url}/204` }), dispatcher)).status, 'passing');
  const busy = await runHttpCheck(spec({ http: `${url}/429`, method: 'post' }), dispatcher);
  t.same(busy, { status: 'warning', output: `HTTP POST ${url}/429: 429 Too Many Requests Output: body of /429` });
  t.match(await runHttpCheck(spec({ http: `${url}/500` }), dispatcher), { status: 'critical', output: /: 500 Internal Server Error Output: body of \/500$/ });
  t.equal((await runHttpCheck(spec({ http: `${url}/404` }), dispatcher)).status, 'critical');
  const big = await runHttpCheck(spec({ http: `${url}/big`, outputMaxBytes: 100 }), dispatcher);
  t.equal(big.status, 'passing');
  t.ok(big.output.endsWith(`Output: ${'x'.repeat(100)}`), 'the body is read up to the output limit');
  const [closedPort] = await freePorts(1);
  t.match(await runHttpCheck(spec({ http: `http://127.0.0.1:${closedPort}/` }), dispatcher), { status: 'critical', output: /connection refused/ });
});

t.test('HTTP: a check past its timeout is critical, and the runner keeps going', async (t) => {
  const { url } = await httpServer(t);
  const dispatcher = new Agent();
  t.teardown(() => dispatcher.close());
  const started = Date.now();
  const result = await runHttpCheck(spec({ http: `${url}/slow`, timeoutMs: 200 }), dispatcher);
  t.equal(result.status, 'critical');
  t.match(result.output, /timed out after 200ms/);
  t.ok(Date.now() - started < 2000, 'the timeout is honoured');
});

t.test('TCP: an open port is passing, a closed one critical', async (t) => {
  const server = createTcpServer((socket) => socket.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const address = server.address();
  const open = `127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  t.same(await runTcpCheck(spec({ kind: 'tcp', tcp: open })), { status: 'passing', output: `TCP connect ${open}: Success` });
  const [closedPort] = await freePorts(1);
  t.same(await runTcpCheck(spec({ kind: 'tcp', tcp: `127.0.0.1:${closedPort}` })),
    { status: 'critical', output: `dial tcp 127.0.0.1:${closedPort}: connect: connection refused` });
});

t.test('script: exit 0 passing, 1 warning, 2 critical; output captured; a timeout kills it', async (t) => {
  const sh = (code: string, timeoutMs = 0) => runScriptCheck(spec({ kind: 'script', args: ['/bin/sh', '-c', code], timeoutMs }), silentLogger);
  t.same(await sh('echo fine'), { status: 'passing', output: 'fine\n' });
  t.same(await sh('echo meh >&2; exit 1'), { status: 'warning', output: 'meh\n' });
  t.equal((await sh('exit 2')).status, 'critical');
  t.match(await sh('sleep 5', 200), { status: 'critical', output: /Timed out/ });
  t.match(await runScriptCheck(spec({ kind: 'script', args: ['/nonexistent/program'] }), silentLogger), { status: 'critical' });
  t.match((await sh('head -c 10000 /dev/zero | tr "\\0" y')).output, /^Captured 4096 of 10000 bytes/);
});

t.test('runner: one check never overlaps itself; the concurrency bound holds; removed checks stop', async (t) => {
  let inside = 0;
  let overlapped = false;
  let concurrent = 0;
  let concurrentMax = 0;
  const server = createServer((_request, response) => {
    inside++;
    concurrent++;
    concurrentMax = Math.max(concurrentMax, concurrent);
    if (inside > 1) overlapped = true;
    setTimeout(() => {
      inside--;
      concurrent--;
      response.end('ok');
    }, 150);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/`;
  const results: [string, CheckResult][] = [];
  const runner = new CheckRunner({ logger: silentLogger, onResult: (id, result) => results.push([id, result]), stagger: () => 0 });
  t.teardown(() => runner.close());
  // Interval 100 ms, each run takes 150 ms: an overlapping scheduler would run two at once.
  runner.add(spec({ checkId: 'one', http: url, intervalMs: 100 }));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.notOk(overlapped, 'never two runs of one check at once');
  t.ok(results.length >= 3, `it ran repeatedly (${results.length})`);
  t.ok(results.every(([, result]) => result.status === 'passing'));
  runner.remove('one');
  const count = results.length;
  await new Promise((resolve) => setTimeout(resolve, 400));
  t.ok(results.length <= count + 1, 'a removed check stops (a run in flight may finish but is dropped)');

  const bounded = new CheckRunner({ logger: silentLogger, onResult: () => undefined, concurrentMax: 2, stagger: () => 0 });
  t.teardown(() => bounded.close());
  concurrentMax = 0;
  for (let i = 0; i < 6; i++) bounded.add(spec({ checkId: `b${i}`, http: url, intervalMs: 100 }));
  await new Promise((resolve) => setTimeout(resolve, 800));
  t.ok(bounded.maxActiveRuns <= 2, `at most 2 runs at once (${bounded.maxActiveRuns})`);
  t.ok(concurrentMax <= 2, `the server saw at most 2 at once (${concurrentMax})`);
});

t.test('local state: a TTL check expires critical with "TTL expired"; updates restart the TTL', async (t) => {
  const local = new LocalState({ nodeName: 'n', dataDir: null, enableScriptChecks: false, logger: silentLogger });
  t.teardown(() => local.close());
  local.registerCheck(spec({ checkId: 'ttl', kind: 'ttl', ttlMs: 200, intervalMs: 0 }));
  t.equal(local.check('ttl')?.status, 'critical', 'a new check starts critical');
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.same([local.check('ttl')?.status, local.check('ttl')?.output], ['critical', 'TTL expired']);
  local.updateTtl('ttl', 'passing', 'all good');
  t.equal(local.check('ttl')?.status, 'passing');
  await new Promise((resolve) => setTimeout(resolve, 120));
  local.updateTtl('ttl', 'passing', 'still good');
  await new Promise((resolve) => setTimeout(resolve, 120));
  t.equal(local.check('ttl')?.status, 'passing', 'the update restarted the TTL');
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.same([local.check('ttl')?.status, local.check('ttl')?.output], ['critical', 'TTL expired (last output before timeout follows): still good']);
  t.equal(truncateOutput('é'.repeat(10), 5), 'éé ... (captured 5 of 20 bytes)', 'cut on a character boundary');
});

t.test('local state: DeregisterCriticalServiceAfter deregisters the service of a check critical that long', async (t) => {
  const local = new LocalState({ nodeName: 'n', dataDir: null, enableScriptChecks: false, logger: silentLogger });
  t.teardown(() => local.close());
  const web = { serviceId: 'web', service: 'web', tags: [], address: '', meta: {}, port: 80, weights: { passing: 1, warning: 1 }, enableTagOverride: false };
  local.registerService(web, [spec({ checkId: 'service:web', serviceId: 'web', kind: 'ttl', ttlMs: 60_000, intervalMs: 0, deregisterCriticalServiceAfterMs: 300 })], false);
  t.ok(local.service('web'));
  await new Promise((resolve) => setTimeout(resolve, 1600));
  t.equal(local.service('web'), undefined, 'reaped');
  t.equal(local.check('service:web'), undefined);
});
