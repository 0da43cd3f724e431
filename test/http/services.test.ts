/**
 * consul-api.md §10–§12 with services: the agent's own services and checks (register,
 * deregister, TTL updates, maintenance; exact JSON, texts and status codes; persistence), and
 * the catalog and health reads they feed through anti-entropy (the test double syncs at once):
 * exact shapes, `?tag`, `?passing`, blocking queries, X-Consul-Effective-Consistency.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import { LocalAgent } from './local-agent.js';
import { json, setup, waitForWaiters } from './helpers.js';
import type { Fixture } from './helpers.js';

const TEXT = 'text/plain; charset=utf-8';

function put(f: Fixture, url: string, body?: unknown): Promise<LightMyRequestResponse> {
  return f.request({ method: 'PUT', url, ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }) });
}

/** Waits for the double's debounced sync (local changes reach the FSM a few ms later). */
async function synced(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 60));
}

t.test('agent service register → /v1/agent/services, /v1/agent/service/<id>, /v1/agent/checks: exact shapes', async (t) => {
  const f = await setup(t);
  const register = await put(f, '/v1/agent/service/register', {
    Name: 'web', ID: 'web-1', Tags: ['v1'], Port: 8080, Address: '10.0.0.9', Meta: { version: '1' }, Weights: { Passing: 5, Warning: 2 },
    Check: { TTL: '30s', Notes: 'ttl check' }, Checks: [{ HTTP: 'http://127.0.0.1:1/health', Interval: '10s', Timeout: '1s', Name: 'http' }],
  });
  t.equal(register.statusCode, 200);
  t.equal(register.body, '');
  t.equal(register.headers['content-type'], undefined, 'an empty 200 without a Content-Type');
  const services = await f.request('/v1/agent/services');
  t.equal(services.headers['content-type'], 'application/json');
  t.equal(services.headers['x-consul-index'], undefined, 'no meta headers on agent endpoints');
  t.equal(services.body, '{"web-1":{"ID":"web-1","Service":"web","Tags":["v1"],"Meta":{"version":"1"},"Port":8080,"Address":"10.0.0.9",'
    + '"Weights":{"Passing":5,"Warning":2},"EnableTagOverride":false,"Datacenter":"dc1"}}');
  const one = json<Record<string, unknown>>(await f.request('/v1/agent/service/web-1'));
  t.match(one, { ID: 'web-1', Service: 'web', ContentHash: /^[0-9a-f]{16}$/ });
  const missing = await f.request('/v1/agent/service/nope');
  t.same([missing.statusCode, missing.body], [404, 'unknown service ID: nope']);
  const checks = json<Record<string, Record<string, unknown>>>(await f.request('/v1/agent/checks'));
  t.same(Object.keys(checks), ['service:web-1:1', 'service:web-1:2'], 'IDs service:<ID>:<n> when there are several');
  t.same(checks['service:web-1:1'], {
    Node: 'local-node', CheckID: 'service:web-1:1', Name: "Service 'web' check", Status: 'critical', Notes: 'ttl check', Output: '',
    ServiceID: 'web-1', ServiceName: 'web', ServiceTags: ['v1'], Type: 'ttl', Interval: '', Timeout: '', ExposedPort: 0,
    Definition: { TTL: '30s' }, CreateIndex: 0, ModifyIndex: 0,
  });
  t.match(checks['service:web-1:2'], { Name: 'http', Type: 'http', Interval: '10s', Timeout: '1s', Definition: { HTTP: 'http://127.0.0.1:1/health', Interval: '10s', Timeout: '1s' } });
  const single = await put(f, '/v1/agent/service/register', { name: 'db', check: { ttl: '10s', status: 'passing', deregister_critical_service_after: '90m' } });
  t.equal(single.statusCode, 200, 'lower-case and snake_case fields');
  const db = json<Record<string, Record<string, unknown>>>(await f.request('/v1/agent/checks'))['service:db'];
  t.match(db, { Status: 'passing', Definition: { TTL: '10s', DeregisterCriticalServiceAfter: '1h30m0s' } });
});

t.test('agent service register: Consul\'s errors, and nothing changes', async (t) => {
  const f = await setup(t);
  const cases: [unknown, number, string][] = [
    ['', 400, 'Request decode failed: EOF'],
    ['{"Name":', 400, 'Request decode failed: unexpected EOF'],
    ['[]', 400, 'Request decode failed: json: cannot unmarshal array into Go value of type structs.ServiceDefinition'],
    [{ Name: 5 }, 400, 'Request decode failed: json: cannot unmarshal number into Go struct field ServiceDefinition.Name of type string'],
    [{ Port: 80 }, 400, 'Missing service name'],
    [{ Name: 'web', Address: '0.0.0.0' }, 400, 'Invalid service address'],
    [{ Name: 'web', Check: { TTL: 'ten' } }, 400, 'Request decode failed: time: invalid duration "ten"'],
    [{ Name: 'web', Check: { TTL: '10s', Status: 'bogus' } }, 400, "Status for checks must 'passing', 'warning', 'critical'"],
    [{ Name: 'web', Check: { HTTP: 'http://x' } }, 400, 'Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks'],
    [{ Name: 'web', Check: {} }, 400, 'Invalid check: TTL must be > 0 for TTL checks'],
    [{ Name: 'web', Check: { TTL: '1s', Interval: '1s' } }, 400, 'Invalid check: Interval and TTL cannot both be specified'],
    [{ Name: 'web', Check: { GRPC: 'x:1', Interval: '1s' } }, 400, 'Invalid check: GRPC checks are not supported by this agent'],
    [{ Name: 'web', Checks: [{ CheckID: 'a', TTL: '1s' }, { CheckID: 'a', TTL: '1s' }] }, 400, 'Invalid check: duplicate CheckID "a" in one registration'],
    [{ Name: 'web', Weights: { Passing: 0 } }, 400, 'Invalid Weights: Passing must be greater than 0'],
    [{ Name: 'web', Meta: { 'consul-x': 'y' } }, 400, "Invalid Service Meta: Couldn't load metadata pair('consul-x', 'y'): Key prefix 'consul-' is reserved for internal use"],
    [{ Name: 'web', Check: { Args: ['/bin/true'], Interval: '1s' } }, 500,
      "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true"],
  ];
  for (const [body, status, text] of cases) {
    const response = await put(f, '/v1/agent/service/register', body);
    t.same([response.statusCode, response.body, response.headers['content-type']], [status, text, TEXT], JSON.stringify(body));
  }
  t.equal((await f.request('/v1/agent/services')).body, '{}', 'nothing was registered');
  t.equal((await f.request('/v1/agent/checks')).body, '{}');
  t.equal((await f.request({ method: 'GET', url: '/v1/agent/service/register' })).statusCode, 405);
});

t.test('deregister, check register/deregister, pass/warn/fail/update: texts and statuses', async (t) => {
  const f = await setup(t);
  const gone = await put(f, '/v1/agent/service/deregister/web');
  t.same([gone.statusCode, gone.body], [404, 'Unknown service ID "web". Ensure that the service ID is passed, not the service name.']);
  t.equal((await put(f, '/v1/agent/service/register', { Name: 'web', Check: { TTL: '30s' } })).statusCode, 200);
  t.same((await put(f, '/v1/agent/check/register', { TTL: '5s' })).body, 'Missing check name');
  t.same((await put(f, '/v1/agent/check/register', { Name: 'x', TTL: '5s', Status: 'up' })).body, 'Bad check status');
  const orphan = await put(f, '/v1/agent/check/register', { Name: 'x', TTL: '5s', ServiceID: 'nope' });
  t.same([orphan.statusCode, orphan.body], [404, 'ServiceID "nope" does not exist']);
  t.equal((await put(f, '/v1/agent/check/register', { Name: 'mem', TTL: '5s' })).statusCode, 200);
  t.equal((await put(f, '/v1/agent/check/register', { ID: 'web-extra', Name: 'extra', TTL: '5s', ServiceID: 'web' })).statusCode, 200);
  t.equal((await put(f, '/v1/agent/check/pass/mem?note=fine')).statusCode, 200);
  t.match(json<Record<string, unknown>>(await f.request('/v1/agent/checks'))['mem'], { Status: 'passing', Output: 'fine' });
  t.equal((await put(f, '/v1/agent/check/warn/mem')).statusCode, 200);
  t.equal((await put(f, '/v1/agent/check/fail/mem?note=down')).statusCode, 200);
  t.match(json<Record<string, unknown>>(await f.request('/v1/agent/checks'))['mem'], { Status: 'critical', Output: 'down' });
  t.equal((await put(f, '/v1/agent/check/update/mem', { Status: 'warning', Output: 'hot' })).statusCode, 200);
  t.match(json<Record<string, unknown>>(await f.request('/v1/agent/checks'))['mem'], { Status: 'warning', Output: 'hot' });
  const bad = await put(f, '/v1/agent/check/update/mem', { Status: 'maintenance' });
  t.same([bad.statusCode, bad.body], [400, "Invalid check status: 'maintenance'"]);
  const unknown = await put(f, '/v1/agent/check/pass/nope');
  t.same([unknown.statusCode, unknown.body], [404, 'Unknown check ID "nope". Ensure that the check ID is passed, not the check name.']);
  t.equal((await put(f, '/v1/agent/check/register', { Name: 'tcp', TCP: '127.0.0.1:1', Interval: '1h' })).statusCode, 200);
  const notTtl = await put(f, '/v1/agent/check/pass/tcp');
  t.same([notTtl.statusCode, notTtl.body], [500, 'CheckID "tcp" does not have associated TTL']);
  t.equal((await put(f, '/v1/agent/check/deregister/tcp')).statusCode, 200);
  t.equal((await put(f, '/v1/agent/check/deregister/tcp')).statusCode, 404);
  t.equal((await put(f, '/v1/agent/service/deregister/web')).statusCode, 200);
  t.same(Object.keys(json<object>(await f.request('/v1/agent/checks'))), ['mem'], 'the service\'s checks went with it');
  t.equal((await f.request({ method: 'GET', url: '/v1/agent/check/pass/mem' })).statusCode, 200, 'GET too, for python-consul 0.7.1');
  await put(f, '/v1/agent/service/register', { Name: 'api', Checks: [{ CheckID: 'a', TTL: '1m' }, { CheckID: 'b', TTL: '1m' }] });
  await put(f, '/v1/agent/service/register', { Name: 'api', Checks: [{ CheckID: 'b', TTL: '1m' }] });
  t.ok(json<Record<string, unknown>>(await f.request('/v1/agent/checks'))['a'], 'a re-registration keeps the other checks');
  await put(f, '/v1/agent/service/register?replace-existing-checks', { Name: 'api', Checks: [{ CheckID: 'b', TTL: '1m' }] });
  t.notOk(json<Record<string, unknown>>(await f.request('/v1/agent/checks'))['a'], '?replace-existing-checks drops them');
  t.equal((await put(f, '/v1/agent/service/register?replace-existing-checks=x', { Name: 'api' })).statusCode, 400);
  t.equal((await f.request({ method: 'POST', url: '/v1/agent/check/pass/mem' })).statusCode, 405);
});

t.test('maintenance: node and service, Consul\'s checks and texts', async (t) => {
  const f = await setup(t);
  t.same((await put(f, '/v1/agent/maintenance')).body, 'Missing value for enable');
  t.same((await put(f, '/v1/agent/maintenance?enable=maybe')).body, 'Invalid value for enable: "maybe"');
  t.equal((await put(f, '/v1/agent/maintenance?enable=true&reason=upgrade')).statusCode, 200);
  t.match(json<Record<string, unknown>>(await f.request('/v1/agent/checks'))['_node_maintenance'],
    { Name: 'Node Maintenance Mode', Status: 'maintenance', Notes: 'upgrade', Type: 'maintenance' });
  t.equal((await put(f, '/v1/agent/maintenance?enable=false')).statusCode, 200);
  t.equal((await f.request('/v1/agent/checks')).body, '{}');
  const unknown = await put(f, '/v1/agent/service/maintenance/web?enable=true');
  t.same([unknown.statusCode, unknown.body], [404, 'No service registered with ID "web"']);
  await put(f, '/v1/agent/service/register', { Name: 'web' });
  t.equal((await put(f, '/v1/agent/service/maintenance/web?enable=1')).statusCode, 200);
  t.match(json<Record<string, unknown>>(await f.request('/v1/agent/checks'))['_service_maintenance:web'], {
    Name: 'Service Maintenance Mode', ServiceID: 'web', ServiceName: 'web', Status: 'maintenance',
    Notes: 'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.',
  });
  await synced();
  t.same(json<unknown[]>(await f.request('/v1/health/service/web?passing')), [], 'an instance in maintenance is not passing');
});

t.test('catalog and health with services: exact shapes, ?tag, ?passing, consistency header', async (t) => {
  const f = await setup(t);
  await put(f, '/v1/agent/service/register', { Name: 'web', ID: 'web-a', Tags: ['v1', 'blue'], Port: 80, Check: { TTL: '1m', Status: 'passing' } });
  await put(f, '/v1/agent/service/register', { Name: 'web', ID: 'web-b', Tags: ['v2'], Port: 81, Address: '10.0.0.2', Check: { TTL: '1m' } });
  await synced();
  const services = await f.request('/v1/catalog/services');
  t.equal(services.body, '{"web":["blue","v1","v2"]}');
  t.equal(services.headers['x-consul-effective-consistency'], 'leader');
  const nodes = json<Record<string, unknown>[]>(await f.request('/v1/catalog/service/web'));
  t.same(nodes.map((n) => n['ServiceID']), ['web-a', 'web-b']);
  t.same(Object.keys(nodes[0] ?? {}), ['ID', 'Node', 'Address', 'Datacenter', 'TaggedAddresses', 'NodeMeta', 'ServiceKind', 'ServiceID', 'ServiceName',
    'ServiceTags', 'ServiceAddress', 'ServiceWeights', 'ServiceMeta', 'ServicePort', 'ServiceSocketPath', 'ServiceEnableTagOverride', 'ServiceProxy',
    'ServiceConnect', 'ServiceLocality', 'CreateIndex', 'ModifyIndex']);
  t.match(nodes[1], { Node: 'local-node', Address: '127.0.0.1', ServiceAddress: '10.0.0.2', ServicePort: 81, ServiceTags: ['v2'], ServiceLocality: null });
  t.same(json<Record<string, unknown>[]>(await f.request('/v1/catalog/service/web?tag=v1&tag=BLUE')).map((n) => n['ServiceID']), ['web-a']);
  const node = json<{ Node: { Node: string }; Services: Record<string, Record<string, unknown>> }>(await f.request('/v1/catalog/node/local-node'));
  t.same(Object.keys(node.Services), ['web-a', 'web-b']);
  t.same(Object.keys(node.Services['web-a'] ?? {}), ['ID', 'Service', 'Tags', 'Address', 'Meta', 'Port', 'Weights', 'EnableTagOverride', 'Proxy', 'Connect', 'CreateIndex', 'ModifyIndex']);
  const health = json<{ Node: { Node: string }; Service: { ID: string }; Checks: { CheckID: string; Status: string }[] }[]>(await f.request('/v1/health/service/web'));
  t.same(health.map((row) => [row.Service.ID, row.Checks.map((c) => `${c.CheckID}=${c.Status}`)]),
    [['web-a', ['serfHealth=passing', 'service:web-a=passing']], ['web-b', ['serfHealth=passing', 'service:web-b=critical']]]);
  t.same(json<{ Service: { ID: string } }[]>(await f.request('/v1/health/service/web?passing')).map((row) => row.Service.ID), ['web-a']);
  t.same(json<unknown[]>(await f.request('/v1/health/service/web?passing=false')).length, 2);
  t.same((await f.request('/v1/health/service/web?passing=x')).body, 'Invalid value for ?passing');
  t.same(json<unknown[]>(await f.request('/v1/health/service/web?tag=v2&passing')), []);
  t.same(json<{ CheckID: string }[]>(await f.request('/v1/health/checks/web')).map((c) => c.CheckID), ['service:web-a', 'service:web-b']);
  t.same(json<{ CheckID: string }[]>(await f.request('/v1/health/state/critical')).map((c) => c.CheckID), ['service:web-b']);
  t.same(json<{ CheckID: string }[]>(await f.request('/v1/health/node/local-node')).map((c) => c.CheckID), ['serfHealth', 'service:web-a', 'service:web-b']);
  t.equal((await f.request('/v1/health/service/web?stale')).headers['x-consul-effective-consistency'], 'stale');
  t.equal((await f.request('/v1/catalog/service/web?consistent')).headers['x-consul-effective-consistency'], 'consistent');
});

t.test('a blocking health query wakes when a check changes; a catalog one when a service changes', async (t) => {
  const f = await setup(t);
  await put(f, '/v1/agent/service/register', { Name: 'web', Check: { TTL: '1m', Status: 'passing' } });
  await synced();
  const first = await f.request('/v1/health/service/web?passing');
  const index = Number(first.headers['x-consul-index']);
  t.equal(json<unknown[]>(first).length, 1);
  const blocked = f.request(`/v1/health/service/web?passing&index=${index}&wait=10s`);
  await waitForWaiters(f.agent, 1);
  await put(f, '/v1/agent/check/fail/service:web?note=down');
  const woken = await blocked;
  t.ok(Number(woken.headers['x-consul-index']) > index, 'the index moved');
  t.same(json<unknown[]>(woken), [], 'the failing instance dropped out');
  const services = await f.request('/v1/catalog/services');
  const blockedServices = f.request(`/v1/catalog/services?index=${services.headers['x-consul-index']}&wait=10s`);
  await waitForWaiters(f.agent, 1);
  await put(f, '/v1/agent/service/register', { Name: 'db' });
  t.equal((await blockedServices).body, '{"db":[],"web":[]}');
});

t.test('catalog register/deregister with a Service', async (t) => {
  const f = await setup(t);
  const register = await put(f, '/v1/catalog/register', {
    Node: 'ext', Address: '192.0.2.1', Service: { Service: 'redis', Tags: ['primary'], Port: 6379 },
    Checks: [{ CheckID: 'redis-alive', Name: 'alive', Status: 'passing', ServiceID: 'redis' }],
  });
  t.same([register.statusCode, register.body], [200, 'true']);
  t.match(json<Record<string, unknown>[]>(await f.request('/v1/catalog/service/redis')), [{ Node: 'ext', ServiceID: 'redis', ServicePort: 6379 }]);
  t.match(json<Record<string, unknown>[]>(await f.request('/v1/health/checks/redis')), [{ CheckID: 'redis-alive', ServiceName: 'redis', ServiceTags: ['primary'] }]);
  t.equal((await put(f, '/v1/catalog/deregister', { Node: 'ext', ServiceID: 'redis' })).body, 'true');
  t.same(json<unknown[]>(await f.request('/v1/catalog/service/redis')), []);
  t.same(json<{ CheckID: string }[]>(await f.request('/v1/health/node/ext')), [], 'its checks went with it');
});

t.test('registrations persist in the data dir and come back after a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-local-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = await setup(t, {}, { dataDir: dir });
  await put(f, '/v1/agent/service/register', { Name: 'web', Port: 80, Check: { TTL: '1m' } });
  await put(f, '/v1/agent/maintenance?enable=true');
  const again = new LocalAgent({ dataDir: dir });
  t.teardown(() => again.close());
  t.same(again.local.services().map((s) => s.serviceId), ['web']);
  t.same(again.local.checks().map((c) => c.spec.checkId), ['_node_maintenance', 'service:web']);
  t.same(again.fsm.nodeServices('local-node').map((s) => s.ID), ['web'], 'synced again on start');
  writeFileSync(join(dir, 'local-services.json'), '{"version":1,"services":[{"serviceId":""}],"checks":[]}');
  t.throws(() => new LocalAgent({ dataDir: dir }), /not a valid registrations file/, 'a corrupt file is refused, not ignored');
});
