/**
 * `conclave services register|deregister`, `conclave catalog services -tags` / `nodes -service`
 * with services, and `conclave watch -type service`, run as child processes against a real
 * listener over the LocalAgent test double.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { MAIN_JS, startApi } from './helpers.js';

t.jobs = 3;

t.test('services register from flags and from a Consul service file; deregister by -id and by file', async (t) => {
  const api = await startApi(t);
  const flags = await api.cli(['services', 'register'], ['-name', 'web', '-id', 'web-1', '-port', '8080', '-tag', 'v1', '-tag', 'blue', '-meta', 'team=a']);
  t.same(flags, { code: 0, stdout: 'Registered service: web\n', stderr: '' });
  t.match(api.agent.local.service('web-1'), { service: 'web', port: 8080, tags: ['v1', 'blue'], meta: { team: 'a' } });
  const dir = mkdtempSync(join(tmpdir(), 'conclave-cli-services-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'db.json');
  writeFileSync(file, JSON.stringify({ services: [
    { name: 'db', port: 5432, tags: ['primary'], enable_tag_override: true, check: { ttl: '30s', deregister_critical_service_after: '10m' } },
    { name: 'cache', id: 'cache-1', port: 6379 },
  ] }));
  const fromFile = await api.cli(['services', 'register'], [file]);
  t.same(fromFile, { code: 0, stdout: 'Registered service: db\nRegistered service: cache\n', stderr: '' });
  t.match(api.agent.local.service('db'), { enableTagOverride: true });
  t.match(api.agent.local.check('service:db')?.spec, { ttlMs: 30_000, deregisterCriticalServiceAfterMs: 600_000 });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const tags = await api.cli(['catalog', 'services'], ['-tags']);
  t.equal(tags.code, 0, tags.stderr);
  t.match(tags.stdout, /^cache\s*$/m);
  t.match(tags.stdout, /^db\s+primary$/m);
  t.match(tags.stdout, /^web\s+blue,v1$/m);
  const nodes = await api.cli(['catalog', 'nodes'], ['-service', 'db']);
  t.match(nodes.stdout, /^local-node\s+0b9a3f6e\s+127\.0\.0\.1\s+dc1$/m);
  t.same(await api.cli(['services', 'deregister'], ['-id', 'web-1']), { code: 0, stdout: 'Deregistered service: web-1\n', stderr: '' });
  t.same(await api.cli(['services', 'deregister'], [file]), { code: 0, stdout: 'Deregistered service: db\nDeregistered service: cache-1\n', stderr: '' });
  t.same(api.agent.local.services(), []);
});

t.test('services: errors', async (t) => {
  const api = await startApi(t);
  const none = await api.cli(['services', 'register']);
  t.equal(none.code, 1);
  t.match(none.stderr, 'Service name must be specified via the -name flag or a service definition file');
  const bad = await api.cli(['services', 'register'], ['-name', 'web', '-address', '0.0.0.0']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, 'Error registering service "web": Unexpected response code: 400 (Invalid service address)');
  const unknown = await api.cli(['services', 'deregister'], ['-id', 'nope']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, 'Unexpected response code: 404 (Unknown service ID "nope"');
  const notJson = await api.cli(['services', 'register'], ['/tmp/service.hcl']);
  t.match(notJson.stderr, 'only JSON service definitions are supported');
});

t.test('watch -type service prints the health JSON on each change and stops on SIGINT', async (t) => {
  const api = await startApi(t);
  await api.agent.local.registerService({
    serviceId: 'web', service: 'web', tags: [], address: '', meta: {}, port: 80, weights: { passing: 1, warning: 1 }, enableTagOverride: false,
  }, [], false);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const child = spawn(process.execPath, [MAIN_JS, 'watch', '-type', 'service', '-service', 'web', api.flag], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const until = async (what: () => boolean): Promise<void> => {
    for (let i = 0; i < 100 && !what(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  };
  await until(() => stdout.includes('"ID": "web"'));
  t.match(stdout, /^\[\n {4}\{\n {8}"Node": \{/, 'Consul\'s indented JSON');
  api.agent.local.setServiceMaintenance('web', true, 'upgrade');
  await until(() => stdout.includes('_service_maintenance:web'));
  t.match(stdout, /"Status": "maintenance"/, 'the change was printed');
  child.kill('SIGINT');
  const [code] = (await once(child, 'exit')) as [number | null];
  t.equal(code, 0);
  const usage = await api.cli(['watch'], ['-type', 'service']);
  t.same([usage.code, usage.stderr], [1, 'Must specify a single service to watch\n']);
});
