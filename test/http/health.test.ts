/**
 * consul-api.md §12: health reads — node, state, checks of a service, service instances — with
 * HealthCheck JSON, Consul's sort (Node, then CheckID bytes), every meta header, blocking,
 * `?node-meta`, `?passing` (Go ParseBool) and the 400s.
 */
import t from 'tap';
import { json, setup, waitForWaiters } from './helpers.js';
import type { Fixture } from './helpers.js';

const TEXT = 'text/plain; charset=utf-8';

async function registerNode(f: Fixture, node: string, checks: Record<string, unknown>[], meta: Record<string, string> = {}): Promise<void> {
  const response = await f.request({
    method: 'PUT', url: '/v1/catalog/register', payload: { Node: node, Address: '10.0.0.1', NodeMeta: meta, Checks: checks },
  });
  if (response.body !== 'true') throw new Error(`register failed: ${response.body}`);
}

function ids(body: { Node: string; CheckID: string }[]): string[] {
  return body.map((check) => `${check.Node}/${check.CheckID}`);
}

t.test('node/<n>: HealthCheck JSON, sorted by CheckID bytes; [] for an unknown node; meta headers', async (t) => {
  const f = await setup(t);
  await registerNode(f, 'local-node', [{ CheckID: 'service:web', Status: 'passing' }, { CheckID: 'mem', Name: 'Memory', Status: 'warning', Output: 'high' }]);
  const response = await f.request('/v1/health/node/local-node');
  t.equal(response.statusCode, 200);
  t.equal(response.headers['content-type'], 'application/json');
  t.equal(response.headers['x-consul-index'], '2');
  t.equal(response.headers['x-consul-knownleader'], 'true');
  t.equal(response.headers['x-consul-lastcontact'], '0');
  t.equal(response.headers['x-consul-effective-consistency'], 'leader');
  const checks = json<Record<string, unknown>[]>(response);
  t.same(checks.map((check) => check['CheckID']), ['mem', 'serfHealth', 'service:web'], 'byte order: serfHealth before service:* checks');
  t.same(checks[1], {
    Node: 'local-node', CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', Notes: '', Output: 'Agent alive and reachable',
    ServiceID: '', ServiceName: '', ServiceTags: [], Type: '', Interval: '', Timeout: '', ExposedPort: 0, Definition: {},
    CreateIndex: 1, ModifyIndex: 1,
  });
  t.match(response.body, /^\[\{"Node":"local-node","CheckID":"mem","Name":"Memory","Status":"warning","Notes":"","Output":"high","ServiceID":""/);
  const unknown = await f.request('/v1/health/node/nope');
  t.equal(unknown.body, '[]');
  t.equal(unknown.headers['x-consul-index'], '2');
  const missing = await f.request('/v1/health/node/');
  t.equal(missing.statusCode, 400);
  t.equal(missing.body, 'Missing node name');
  t.equal(missing.headers['content-type'], TEXT);
  t.equal((await f.request('/v1/health/node/local-node?stale')).headers['x-consul-effective-consistency'], 'stale');
  t.equal((await f.request('/v1/health/node/local-node?consistent')).headers['x-consul-effective-consistency'], 'consistent');
});

t.test('state/<state>: by state across nodes (Node, then CheckID); any; unknown → []; empty → 400', async (t) => {
  const f = await setup(t);
  await registerNode(f, 'b', [{ CheckID: 'x', Status: 'critical' }, { CheckID: 'serfHealth', Status: 'passing' }], { rack: 'r2' });
  await registerNode(f, 'a', [{ CheckID: 'y', Status: 'critical' }], { rack: 'r1' });
  const state = async (url: string) => ids(json(await f.request(url)));
  t.same(await state('/v1/health/state/critical'), ['a/y', 'b/x']);
  t.same(await state('/v1/health/state/passing'), ['b/serfHealth', 'local-node/serfHealth']);
  t.same(await state('/v1/health/state/any'), ['a/y', 'b/serfHealth', 'b/x', 'local-node/serfHealth']);
  t.same(await state('/v1/health/state/warning'), []);
  const unknown = await f.request('/v1/health/state/bogus');
  t.equal(unknown.statusCode, 200);
  t.equal(unknown.body, '[]');
  t.equal(unknown.headers['x-consul-index'], '3');
  t.same(await state('/v1/health/state/critical?node-meta=rack:r2'), ['b/x']);
  t.same(await state('/v1/health/state/any?node-meta=rack:r1'), ['a/y']);
  const missing = await f.request('/v1/health/state/');
  t.equal(missing.statusCode, 400);
  t.equal(missing.body, 'Missing check state');
  t.equal((await f.request('/v1/health/state/?stale&consistent')).body, 'Cannot specify ?stale with ?consistent, conflicting semantics.',
    'query options are checked before the state');
  t.equal((await f.request('/v1/health/state/any?filter=Status%3D%3Dpassing')).statusCode, 400);
  t.equal((await f.request('/v1/health/state/any?dc=elsewhere')).body, 'No path to datacenter');
});

t.test('state: a blocking query wakes when a check changes state', async (t) => {
  const f = await setup(t);
  const pending = f.request('/v1/health/state/critical?index=1&wait=5s');
  await waitForWaiters(f.agent, 1);
  await f.agent.write({ type: 'check-update', nowMs: 0, node: 'local-node', checkId: 'serfHealth', status: 'critical', output: 'gone' });
  const response = await pending;
  t.equal(response.headers['x-consul-index'], '2');
  t.same(ids(json(response)), ['local-node/serfHealth']);
  t.equal(response.headers['x-consul-effective-consistency'], 'leader');
});

t.test('checks/<service>: [] (no service checks can exist yet); 400 without a name', async (t) => {
  const f = await setup(t);
  const response = await f.request('/v1/health/checks/web');
  t.equal(response.statusCode, 200);
  t.equal(response.body, '[]');
  t.equal(response.headers['x-consul-index'], '1');
  t.equal(response.headers['x-consul-effective-consistency'], 'leader');
  t.equal((await f.request('/v1/health/checks/web?node-meta=a:b')).body, '[]');
  t.equal((await f.request('/v1/health/checks/')).body, 'Missing service name');
});

t.test('service/<service>: [] with meta headers; ?passing parsed with Go ParseBool', async (t) => {
  const f = await setup(t);
  for (const query of ['', '?passing', '?passing=1', '?passing=true', '?passing=F', '?tag=x&passing=TRUE']) {
    const response = await f.request(`/v1/health/service/web${query}`);
    t.equal(response.statusCode, 200, query);
    t.equal(response.body, '[]', query);
    t.equal(response.headers['x-consul-index'], '1', query);
    t.equal(response.headers['x-consul-effective-consistency'], 'leader', query);
  }
  for (const query of ['?passing=yes', '?passing=2', '?passing=on']) {
    const response = await f.request(`/v1/health/service/web${query}`);
    t.equal(response.statusCode, 400, query);
    t.equal(response.body, 'Invalid value for ?passing', query);
  }
  t.equal((await f.request('/v1/health/service/')).body, 'Missing service name');
  t.equal((await f.request('/v1/health/service/web?wait=zz')).body, 'Invalid wait time');
});
