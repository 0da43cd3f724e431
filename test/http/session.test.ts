/**
 * consul-api.md §6: session create (defaults, Go-style fields, LockDelay and TTL rules, errors),
 * destroy, renew, info/list/node.
 */
import t from 'tap';
import { createSession, delegate, json, setup } from './helpers.js';
import type { Fixture } from './helpers.js';

interface SessionJson {
  ID: string;
  Name: string;
  Node: string;
  LockDelay: number;
  Behavior: string;
  TTL: string;
  NodeChecks: string[];
  ServiceChecks: unknown;
  CreateIndex: number;
  ModifyIndex: number;
}

async function info(f: Fixture, id: string): Promise<SessionJson> {
  const sessions = json<SessionJson[]>(await f.request(`/v1/session/info/${id}`));
  if (sessions[0] === undefined) throw new Error(`no session ${id}`);
  return sessions[0];
}

function create(f: Fixture, payload: string) {
  return f.request({ method: 'PUT', url: '/v1/session/create', payload, headers: { 'content-type': 'application/json' } });
}

t.test('create with no body: Consul\'s defaults, a UUID v4, the JSON shape', async (t) => {
  const f = await setup(t);
  const response = await f.request({ method: 'PUT', url: '/v1/session/create' });
  t.equal(response.statusCode, 200);
  t.equal(response.headers['content-type'], 'application/json');
  const { ID } = json<{ ID: string }>(response);
  t.match(ID, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.equal((await f.request(`/v1/session/info/${ID}`)).body,
    `[{"ID":"${ID}","Name":"","Node":"local-node","LockDelay":15000000000,"Behavior":"release","TTL":"","NodeChecks":["serfHealth"],`
    + '"ServiceChecks":null,"CreateIndex":2,"ModifyIndex":2}]');
});

t.test('create fields: Go-style names (python-consul\'s lowercase too), TTL echoed exactly', async (t) => {
  const f = await setup(t);
  const id = await createSession(f, { Name: 'Consul API Lock', TTL: '1m30s', Behavior: 'delete', LockDelay: '1ms' });
  t.match(await info(f, id), { Name: 'Consul API Lock', TTL: '1m30s', Behavior: 'delete', LockDelay: 1_000_000 });
  const python = json<{ ID: string }>(await create(f, '{"name":"py","lockdelay":"15s","behavior":"delete","ttl":"10s","checks":[]}')).ID;
  t.match(await info(f, python), { Name: 'py', LockDelay: 15_000_000_000, Behavior: 'delete', TTL: '10s', NodeChecks: [] });
  const lastWins = json<{ ID: string }>(await create(f, '{"ttl":"20s","TTL":"30s","Unknown":{"ignored":true}}')).ID;
  t.equal((await info(f, lastWins)).TTL, '30s', 'the last matching member wins; unknown members are ignored');
  for (const ttl of ['0', '0s', '']) {
    const none = await createSession(f, { TTL: ttl });
    t.equal((await info(f, none)).TTL, ttl, `TTL ${JSON.stringify(ttl)} means none and is echoed`);
  }
});

t.test('checks: [] means none; NodeChecks as given; legacy Checks add to the default', async (t) => {
  const f = await setup(t);
  t.same((await info(f, await createSession(f, { Checks: [] }))).NodeChecks, []);
  t.same((await info(f, await createSession(f, { Checks: null }))).NodeChecks, []);
  t.same((await info(f, await createSession(f, { Checks: ['serfHealth'] }))).NodeChecks, ['serfHealth']);
  t.same((await info(f, await createSession(f, { NodeChecks: ['serfHealth'] }))).NodeChecks, ['serfHealth']);
  t.same((await info(f, await createSession(f, { NodeChecks: [] }))).NodeChecks, []);
  const missing = await create(f, '{"Checks":["serfHealth","web"]}');
  t.equal(missing.statusCode, 500);
  t.equal(missing.body, "apply failed: Missing check 'web' registration");
  const missingNode = await create(f, '{"NodeChecks":["nope"]}');
  t.equal(missingNode.body, "apply failed: Missing check 'nope' registration");
  await f.agent.write({ type: 'check-update', nowMs: 0, node: 'local-node', checkId: 'serfHealth', status: 'critical', output: 'down' });
  const critical = await create(f, '{}');
  t.equal(critical.statusCode, 500);
  t.equal(critical.body, "apply failed: Check 'serfHealth' is in critical state");
  t.equal((await create(f, '{"Checks":[]}')).statusCode, 200, 'no checks: a critical node does not matter');
});

t.test('LockDelay: durations, numbers (below 1000 = seconds), capped at 60 s', async (t) => {
  const f = await setup(t);
  const cases: [string, number][] = [
    ['"15000ms"', 15_000_000_000], ['"1ms"', 1_000_000], ['"15s"', 15_000_000_000], ['15', 15_000_000_000],
    ['1500000000', 1_500_000_000], ['0', 0], ['"0s"', 0], ['"500ns"', 60_000_000_000], ['"2m"', 60_000_000_000],
    ['999', 60_000_000_000], ['1000', 1000], ['"-5s"', 0], ['true', 0], ['null', 15_000_000_000],
  ];
  for (const [lockDelay, ns] of cases) {
    const response = await create(f, `{"LockDelay":${lockDelay}}`);
    t.equal(response.statusCode, 200, lockDelay);
    t.equal((await info(f, json<{ ID: string }>(response).ID)).LockDelay, ns, lockDelay);
  }
  const bad = await create(f, '{"LockDelay":"x"}');
  t.equal(bad.statusCode, 400);
  t.equal(bad.body, 'Request decode failed: time: invalid duration "x"');
});

t.test('create errors: TTL range and syntax, Behavior, Node, JSON, datacenter', async (t) => {
  const f = await setup(t, { sessionTtlMinMs: 10_000 });
  const cases: [string, number, string][] = [
    ['{"TTL":"5s"}', 500, "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]"],
    ['{"TTL":"25h"}', 500, "Invalid Session TTL '90000000000000', must be between [10s=24h0m0s]"],
    ['{"TTL":"-10s"}', 500, "Invalid Session TTL '-10000000000', must be between [10s=24h0m0s]"],
    ['{"TTL":"x"}', 500, 'Session TTL \'x\' invalid: time: invalid duration "x"'],
    ['{"TTL":"10"}', 500, 'Session TTL \'10\' invalid: time: missing unit in duration "10"'],
    ['{"Behavior":"x"}', 500, "Invalid Behavior setting 'x'"],
    ['{"Node":""}', 500, 'Must provide Node'],
    ['{"Node":"other-node"}', 500, 'apply failed: Missing node registration'],
    ['{"Name":', 400, 'Request decode failed: unexpected EOF'],
    ['[1]', 400, 'Request decode failed: json: cannot unmarshal array into Go struct field Session of type structs.Session'],
    ['{"TTL":5}', 400, 'Request decode failed: json: cannot unmarshal number into Go struct field Session.TTL of type string'],
  ];
  for (const [payload, status, text] of cases) {
    const response = await create(f, payload);
    t.equal(response.statusCode, status, payload);
    t.equal(response.body, text, payload);
  }
  t.equal((await create(f, '{"TTL":"10s"}')).statusCode, 200, 'exactly the minimum');
  t.equal((await create(f, '{"TTL":"24h"}')).statusCode, 200, 'exactly the maximum');
  const oneSecond = await setup(t, { sessionTtlMinMs: 1000 });
  t.equal((await create(oneSecond, '{"TTL":"500ms"}')).body, "Invalid Session TTL '500000000', must be between [1s=24h0m0s]");
  t.equal((await create(oneSecond, '{"TTL":"1s"}')).statusCode, 200, 'session_ttl_min is configurable');
  const otherDc = await f.request({ method: 'PUT', url: '/v1/session/create?dc=dc2' });
  t.equal(otherDc.body, 'No path to datacenter');
  const client = await setup(t, {}, {}, (agent) => delegate(agent, { info: { ...agent.info, server: false } }));
  const crossDc = await client.request({ method: 'PUT', url: '/v1/session/create?dc=dc2' });
  t.equal(crossDc.statusCode, 500);
  t.equal(crossDc.body, 'cross datacenter lock must be created at server agent');
});

t.test('destroy: true even for an unknown id; an empty id is 400', async (t) => {
  const f = await setup(t);
  const id = await createSession(f);
  t.equal((await f.request({ method: 'PUT', url: `/v1/session/destroy/${id}` })).body, 'true');
  t.equal((await f.request(`/v1/session/info/${id}`)).body, '[]');
  t.equal((await f.request({ method: 'PUT', url: '/v1/session/destroy/no-such-id' })).body, 'true');
  const empty = await f.request({ method: 'PUT', url: '/v1/session/destroy/' });
  t.equal(empty.statusCode, 400);
  t.equal(empty.body, 'Missing session');
});

t.test('renew: an array with the session, 404 when unknown, no meta headers', async (t) => {
  const f = await setup(t);
  const id = await createSession(f, { TTL: '10s' });
  const renewed = await f.request({ method: 'PUT', url: `/v1/session/renew/${id}` });
  t.equal(renewed.statusCode, 200);
  const sessions = json<SessionJson[]>(renewed);
  t.equal(sessions.length, 1);
  t.match(sessions[0], { ID: id, TTL: '10s' }, 'Go\'s RenewPeriodic re-reads the TTL from [0]');
  t.equal(renewed.headers['x-consul-index'], undefined);
  const unknown = await f.request({ method: 'PUT', url: '/v1/session/renew/nope' });
  t.equal(unknown.statusCode, 404);
  t.equal(unknown.body, "Session id 'nope' not found");
  t.equal((await f.request({ method: 'PUT', url: '/v1/session/renew/' })).body, 'Missing session');
  t.equal((await f.request({ method: 'PUT', url: `/v1/session/renew/${id}?index=x` })).body, 'Invalid index');
});

t.test('info, list and node: arrays, [] when empty or unknown, meta headers, 400 without an id', async (t) => {
  const f = await setup(t);
  t.equal((await f.request('/v1/session/info/unknown')).body, '[]');
  t.equal((await f.request('/v1/session/node/unknown')).body, '[]');
  const ids = [await createSession(f), await createSession(f), await createSession(f)];
  const list = await f.request('/v1/session/list');
  t.same(json<SessionJson[]>(list).map((s) => s.ID), [...ids].sort(), 'sorted by ID');
  t.equal(list.headers['x-consul-index'], '4');
  t.equal(list.headers['x-consul-knownleader'], 'true');
  t.equal(list.headers['x-consul-lastcontact'], '0');
  const node = await f.request('/v1/session/node/local-node');
  t.same(json<SessionJson[]>(node).map((s) => s.ID), [...ids].sort());
  t.equal(node.headers['x-consul-index'], '4');
  t.equal((await f.request(`/v1/session/info/${ids[0]}`)).headers['x-consul-index'], '4');
  t.equal((await f.request('/v1/session/info/')).body, 'Missing session');
  t.equal((await f.request('/v1/session/node/')).body, 'Missing node name');
  t.equal((await f.request('/v1/session/list?stale&consistent')).statusCode, 400);
});
