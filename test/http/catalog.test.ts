/**
 * consul-api.md §11: catalog reads (datacenters, nodes, node, services, service) with every meta
 * header incl. X-Consul-Effective-Consistency, blocking, `?node-meta`, `?filter` refused; and
 * node-level register/deregister with Consul's error texts.
 */
import t from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import { delegate, json, setup, waitForWaiters } from './helpers.js';
import type { Fixture } from './helpers.js';

const TEXT = 'text/plain; charset=utf-8';
const LOCAL_ID = '0b9a3f6e-3c7a-4d3e-9a59-5f3f1d0c8e11';
const OTHER_ID = '6f4f3c38-7c5e-4b0a-9c7e-2f9d8e1b2a33';

function register(f: Fixture, body: unknown): Promise<LightMyRequestResponse> {
  return f.request({ method: 'PUT', url: '/v1/catalog/register', payload: typeof body === 'string' ? body : JSON.stringify(body) });
}

function metaOf(response: LightMyRequestResponse): Record<string, unknown> {
  return {
    index: response.headers['x-consul-index'],
    knownLeader: response.headers['x-consul-knownleader'],
    lastContact: response.headers['x-consul-lastcontact'],
    consistency: response.headers['x-consul-effective-consistency'],
  };
}

t.test('datacenters: ["dc1"], no meta headers; consistency flags still checked', async (t) => {
  const f = await setup(t);
  const response = await f.request('/v1/catalog/datacenters');
  t.equal(response.statusCode, 200);
  t.equal(response.body, '["dc1"]');
  t.equal(response.headers['content-type'], 'application/json');
  t.same(metaOf(response), { index: undefined, knownLeader: undefined, lastContact: undefined, consistency: undefined });
  t.equal((await f.request('/v1/catalog/datacenters?stale&consistent')).statusCode, 400);
});

t.test('nodes: sorted Node JSON with TaggedAddresses and Meta; meta headers per consistency mode', async (t) => {
  const f = await setup(t);
  t.equal((await register(f, {
    Node: 'b-node', Address: '10.0.0.2', ID: OTHER_ID, TaggedAddresses: { lan: '10.0.0.2', wan: '198.51.100.2' }, NodeMeta: { rack: 'r2' },
  })).body, 'true');
  t.equal((await register(f, { Node: 'a-node', Address: '10.0.0.1', NodeMeta: { rack: 'r1' } })).statusCode, 200);
  const response = await f.request('/v1/catalog/nodes');
  t.equal(response.statusCode, 200);
  t.same(metaOf(response), { index: '3', knownLeader: 'true', lastContact: '0', consistency: 'leader' });
  t.same(json(response), [
    { ID: '', Node: 'a-node', Address: '10.0.0.1', Datacenter: 'dc1', TaggedAddresses: {}, Meta: { rack: 'r1' }, CreateIndex: 3, ModifyIndex: 3 },
    {
      ID: OTHER_ID, Node: 'b-node', Address: '10.0.0.2', Datacenter: 'dc1', TaggedAddresses: { lan: '10.0.0.2', wan: '198.51.100.2' },
      Meta: { rack: 'r2' }, CreateIndex: 2, ModifyIndex: 2,
    },
    { ID: LOCAL_ID, Node: 'local-node', Address: '127.0.0.1', Datacenter: 'dc1', TaggedAddresses: {}, Meta: {}, CreateIndex: 1, ModifyIndex: 1 },
  ]);
  t.match(response.body, /^\[\{"ID":"","Node":"a-node","Address":"10\.0\.0\.1","Datacenter":"dc1","TaggedAddresses":\{\},"Meta":/);
  t.equal(metaOf(await f.request('/v1/catalog/nodes?stale')).consistency, 'stale');
  t.equal(metaOf(await f.request('/v1/catalog/nodes?max_stale=5s')).consistency, 'stale');
  t.equal(metaOf(await f.request('/v1/catalog/nodes?consistent')).consistency, 'consistent');
});

t.test('nodes: ?node-meta filters (every pair must match), ?near is ignored, ?filter refused', async (t) => {
  const f = await setup(t);
  await register(f, { Node: 'n1', Address: '10.0.0.1', NodeMeta: { rack: 'r1', zone: 'a' } });
  await register(f, { Node: 'n2', Address: '10.0.0.2', NodeMeta: { rack: 'r2', zone: 'a' } });
  const names = async (url: string) => json<{ Node: string }[]>(await f.request(url)).map((node) => node.Node);
  t.same(await names('/v1/catalog/nodes?node-meta=zone:a'), ['n1', 'n2']);
  t.same(await names('/v1/catalog/nodes?node-meta=zone:a&node-meta=rack:r2'), ['n2']);
  t.same(await names('/v1/catalog/nodes?node-meta=rack'), [], 'a pair without ":" wants an empty value');
  t.same(await names('/v1/catalog/nodes?near=_agent'), ['local-node', 'n1', 'n2']);
  const filtered = await f.request('/v1/catalog/nodes?filter=Meta.rack%3D%3Dr1');
  t.equal(filtered.statusCode, 400);
  t.equal(filtered.headers['content-type'], TEXT);
  t.match(filtered.body, /filter/);
});

t.test('nodes: query-option errors in Consul\'s order, dc, 405', async (t) => {
  const f = await setup(t);
  t.equal((await f.request('/v1/catalog/nodes?max_stale=x')).body, 'Invalid max_stale value "x"');
  t.equal((await f.request('/v1/catalog/nodes?stale&consistent')).body, 'Cannot specify ?stale with ?consistent, conflicting semantics.');
  t.equal((await f.request('/v1/catalog/nodes?wait=x')).body, 'Invalid wait time');
  t.equal((await f.request('/v1/catalog/nodes?index=x')).body, 'Invalid index');
  const dc = await f.request('/v1/catalog/nodes?dc=dc9');
  t.equal(dc.statusCode, 500);
  t.equal(dc.body, 'No path to datacenter');
  t.equal((await f.request('/v1/catalog/nodes?dc=dc1')).statusCode, 200);
  const wrong = await f.request({ method: 'PUT', url: '/v1/catalog/nodes' });
  t.equal(wrong.statusCode, 405);
  t.equal(wrong.headers['allow'], 'OPTIONS,GET');
});

t.test('nodes: a blocking query wakes on a node registration, with the new index', async (t) => {
  const f = await setup(t);
  const pending = f.request('/v1/catalog/nodes?index=1&wait=5s');
  await waitForWaiters(f.agent, 1);
  await register(f, { Node: 'late', Address: '10.0.0.9' });
  const response = await pending;
  t.equal(response.headers['x-consul-index'], '2');
  t.same(json<{ Node: string }[]>(response).map((node) => node.Node), ['late', 'local-node']);
  const timedOut = await f.request('/v1/catalog/nodes?index=2&wait=20ms');
  t.equal(timedOut.statusCode, 200);
  t.equal(timedOut.headers['x-consul-index'], '2', 'at timeout: the current data and index');
});

t.test('node/<n>: {"Node","Services":{}}, 200 null for an unknown node, 400 without a name', async (t) => {
  const f = await setup(t);
  const response = await f.request('/v1/catalog/node/local-node');
  t.equal(response.statusCode, 200);
  t.same(json(response), {
    Node: { ID: LOCAL_ID, Node: 'local-node', Address: '127.0.0.1', Datacenter: 'dc1', TaggedAddresses: {}, Meta: {}, CreateIndex: 1, ModifyIndex: 1 },
    Services: {},
  });
  t.same(metaOf(response), { index: '1', knownLeader: 'true', lastContact: '0', consistency: 'leader' });
  const unknown = await f.request('/v1/catalog/node/nope');
  t.equal(unknown.statusCode, 200);
  t.equal(unknown.body, 'null');
  t.equal(unknown.headers['x-consul-index'], '1');
  const missing = await f.request('/v1/catalog/node/');
  t.equal(missing.statusCode, 400);
  t.equal(missing.body, 'Missing node name');
  t.equal((await f.request('/v1/catalog/node')).statusCode, 301, 'the subtree root redirects');
});

t.test('services: {} (no services table yet) and service/<s>: [], both with meta headers', async (t) => {
  const f = await setup(t);
  const services = await f.request('/v1/catalog/services');
  t.equal(services.statusCode, 200);
  t.equal(services.body, '{}');
  t.same(metaOf(services), { index: '1', knownLeader: 'true', lastContact: '0', consistency: 'leader' });
  const service = await f.request('/v1/catalog/service/web?tag=a&tag=b');
  t.equal(service.statusCode, 200);
  t.equal(service.body, '[]');
  t.equal(service.headers['x-consul-effective-consistency'], 'leader');
  t.equal((await f.request('/v1/catalog/service/')).body, 'Missing service name');
  t.equal((await f.request('/v1/catalog/services?filter=x')).statusCode, 400);
});

t.test('register: node, tagged addresses, meta and node checks; an unchanged node keeps its index', async (t) => {
  const f = await setup(t);
  const body = {
    Datacenter: 'dc1', Node: 'web-1', ID: OTHER_ID, Address: '10.0.0.5', TaggedAddresses: { lan: '10.0.0.5' }, NodeMeta: { env: 'prod' },
    Check: { CheckID: 'mem', Name: 'Memory', Status: 'warning', Notes: 'n', Output: 'high' },
    Checks: [{ Name: 'disk', Status: 'passing' }, { Name: 'cpu' }],
  };
  const response = await register(f, body);
  t.equal(response.statusCode, 200);
  t.equal(response.body, 'true');
  t.equal(response.headers['content-type'], 'application/json');
  t.equal(response.headers['x-consul-index'], undefined, 'no meta headers on writes');
  t.same(f.agent.applied.at(-1), {
    type: 'node-register', nowMs: (f.agent.applied.at(-1) as { nowMs: number }).nowMs, node: 'web-1', id: OTHER_ID, address: '10.0.0.5',
    datacenter: 'dc1', taggedAddresses: { lan: '10.0.0.5' }, meta: { env: 'prod' },
    checks: [
      { checkId: 'mem', name: 'Memory', status: 'warning', notes: 'n', output: 'high', serviceId: '', serviceName: '', serviceTags: [], type: '', interval: '', timeout: '' },
      { checkId: 'disk', name: 'disk', status: 'passing', notes: '', output: '', serviceId: '', serviceName: '', serviceTags: [], type: '', interval: '', timeout: '' },
      { checkId: 'cpu', name: 'cpu', status: 'critical', notes: '', output: '', serviceId: '', serviceName: '', serviceTags: [], type: '', interval: '', timeout: '' },
    ],
  }, 'Check comes first, CheckID defaults to Name, Status to critical');
  t.same(f.agent.fsm.nodeChecks('web-1').map((check) => [check.CheckID, check.Status]), [['cpu', 'critical'], ['disk', 'passing'], ['mem', 'warning']]);
  const lower = await register(f, { node: 'web-1', address: '10.0.0.5', id: OTHER_ID, taggedaddresses: { lan: '10.0.0.5' }, nodemeta: { env: 'prod' } });
  t.equal(lower.body, 'true', 'field names match case-insensitively');
  t.equal(f.agent.fsm.getNode('web-1')?.ModifyIndex, 2, 'the same node fields keep the ModifyIndex');
  const twice = await register(f, { Node: 'web-1', Address: '10.0.0.5', Checks: [{ CheckID: 'x', Status: 'passing' }, { CheckID: 'x', Status: 'warning' }] });
  t.equal(twice.statusCode, 200, 'a repeated CheckID is fine: the last one wins');
  t.equal(f.agent.fsm.getCheck('web-1', 'x')?.Status, 'warning');
});

t.test('register: SkipNodeUpdate keeps an existing node\'s fields and writes the checks', async (t) => {
  const f = await setup(t);
  await register(f, { Node: 'n', Address: '10.0.0.1', NodeMeta: { a: '1' } });
  const response = await register(f, { Node: 'n', SkipNodeUpdate: true, Check: { CheckID: 'c', Status: 'passing' } });
  t.equal(response.body, 'true');
  t.match(f.agent.fsm.getNode('n'), { Address: '10.0.0.1', Meta: { a: '1' }, ModifyIndex: 2 });
  t.equal(f.agent.fsm.getCheck('n', 'c')?.Status, 'passing');
});

t.test('register: Consul\'s errors, in Consul\'s order', async (t) => {
  const f = await setup(t);
  const cases: [unknown, number, string][] = [
    ['{', 400, 'Request decode failed: unexpected EOF'],
    ['', 400, 'Request decode failed: EOF'],
    ['[]', 400, 'Request decode failed: json: cannot unmarshal array into Go value of type structs.RegisterRequest'],
    [{ Node: 5 }, 400, 'Request decode failed: json: cannot unmarshal number into Go struct field RegisterRequest.Node of type string'],
    [{ Node: 'n', NodeMeta: { a: 1 } }, 400, 'Request decode failed: json: cannot unmarshal number into Go struct field RegisterRequest.NodeMeta of type string'],
    [{ Datacenter: 'dc2', Node: '' }, 500, 'No path to datacenter'],
    [{ Address: '10.0.0.1' }, 500, 'Must provide node'],
    ['null', 500, 'Must provide node'],
    [{ Node: 'n', Address: '10.0.0.1', ID: 'nope' }, 500, 'Bad node ID: uuid string is wrong length'],
    [{ Node: 'n', Address: '10.0.0.1', ID: '0b9a3f6e_3c7a-4d3e-9a59-5f3f1d0c8e11' }, 500, 'Bad node ID: uuid is improperly formatted'],
    [{ Node: 'n', Address: '10.0.0.1', ID: '0b9a3f6e-3c7a-4d3e-9a59-5f3f1d0c8e1g' }, 500, "Bad node ID: encoding/hex: invalid byte: U+0067 'g'"],
    [{ Node: 'n' }, 500, 'Must provide address if SkipNodeUpdate is not set'],
    [{ Node: 'n', Address: '10.0.0.1', Service: { ID: 'web-1' } }, 500, 'Must provide service name (Service.Service) when service ID is provided'],
    [{ Node: 'n', Address: '10.0.0.1', Service: { Service: 'web', Address: '0.0.0.0' } }, 500, 'Invalid service address'],
    [{ Node: 'n', Address: '10.0.0.1', Service: { Service: 'web', Port: 'x' } }, 400,
      'Request decode failed: json: cannot unmarshal string into Go struct field NodeService.Port of type int'],
    [{ Node: 'n', Address: '10.0.0.1', Check: { Name: 'c', ServiceID: 'web' } }, 500, 'Missing service registration'],
    [{ Node: 'n', Address: '10.0.0.1', Check: { Name: 'c', Status: 'bogus' } }, 400, "Invalid check status: 'bogus'"],
    [{ Node: 'n', Address: '10.0.0.1', Check: { Status: 'passing' } }, 500, 'Missing check ID: give CheckID or Name'],
    [{ Node: 'n', Address: '10.0.0.1', Check: { Name: 'c', Node: 'other' } }, 500, 'Check node "other" does not match the registered node "n"'],
  ];
  for (const [body, status, text] of cases) {
    const response = await register(f, body);
    t.equal(response.statusCode, status, JSON.stringify(body));
    t.equal(response.body, text, JSON.stringify(body));
    t.equal(response.headers['content-type'], TEXT);
  }
  t.equal(f.agent.fsm.getNode('n'), undefined, 'nothing was written');
  t.equal((await register(f, { Node: 'n', Address: '10.0.0.1', Service: null })).body, 'true', 'a null Service is no service');
  const big = await register(f, { Node: 'n', Address: 'x'.repeat(70 * 1024) });
  t.equal(big.statusCode, 413);
  const many = await register(f, { Node: 'n', Address: '10.0.0.1', Checks: Array.from({ length: 1025 }, (_, i) => ({ Name: `c${i}` })) });
  t.equal(many.statusCode, 400);
  t.equal(many.body, 'Too many checks in one registration (1025 > 1024)');
  t.equal((await register(f, { Node: 'n', Address: '10.0.0.1', Checks: Array.from({ length: 1024 }, (_, i) => ({ Name: `c${i}` })) })).body, 'true',
    'the largest registration fits a command');
});

t.test('register: a state-machine error is a 500 with its text; write failures pass through', async (t) => {
  const f = await setup(t, {}, {}, (agent) => delegate(agent, { write: async () => ({ result: { kind: 'error', message: 'boom' }, index: 9 }) }));
  const response = await register(f, { Node: 'n', Address: '10.0.0.1' });
  t.equal(response.statusCode, 500);
  t.equal(response.body, 'boom');
});

t.test('deregister: a check, an unknown service (no-op), the whole node; sessions on it go; Consul\'s errors', async (t) => {
  const f = await setup(t);
  await register(f, { Node: 'n', Address: '10.0.0.1', Checks: [{ CheckID: 'a', Status: 'passing' }, { CheckID: 'b', Status: 'passing' }] });
  const session = json<{ ID: string }>(await f.request({ method: 'PUT', url: '/v1/session/create', payload: { Node: 'n', NodeChecks: ['a'] } })).ID;
  const deregister = (body: unknown) => f.request({ method: 'PUT', url: '/v1/catalog/deregister', payload: JSON.stringify(body) });
  t.equal((await deregister({ Node: 'n', CheckID: 'b' })).body, 'true');
  t.same(f.agent.fsm.nodeChecks('n').map((check) => check.CheckID), ['a']);
  const applied = f.agent.applied.length;
  t.equal((await deregister({ Node: 'n', ServiceID: 'web' })).body, 'true', 'an unknown service: true, nothing changes');
  t.equal(f.agent.applied.length, applied + 1);
  t.match(f.agent.applied.at(-1), { type: 'service-deregister', node: 'n', serviceId: 'web' });
  t.same(f.agent.fsm.nodeChecks('n').map((check) => check.CheckID), ['a']);
  t.equal((await deregister({ Node: 'n' })).body, 'true');
  t.equal(f.agent.fsm.getNode('n'), undefined);
  t.equal(f.agent.fsm.getSession(session), undefined, 'the node\'s sessions are invalidated');
  t.equal((await deregister({ Node: 'never-there' })).body, 'true', 'an unknown node: true');
  const missing = await deregister({ CheckID: 'a' });
  t.equal(missing.statusCode, 500);
  t.equal(missing.body, 'Must provide node');
  t.equal((await deregister({ Node: 'n', Datacenter: 'dc7' })).body, 'No path to datacenter');
  t.equal((await f.request({ method: 'PUT', url: '/v1/catalog/deregister', payload: '{"Node":' })).statusCode, 400);
  t.equal((await f.request({ method: 'GET', url: '/v1/catalog/deregister' })).statusCode, 405);
});
