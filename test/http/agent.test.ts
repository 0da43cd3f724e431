/**
 * consul-api.md §10, the agent's own endpoints: `/v1/agent/members[?wan=1]`, join, leave,
 * force-leave (empty 200s, failures 500 with the agent's text, no meta headers) and the Stats
 * of `/v1/agent/self` that `conclave info` prints.
 */
import t from 'tap';
import type { MemberInfo } from '../../src/agent/agent-api.js';
import { BadRequestError, NoLeaderError } from '../../src/lib/errors.js';
import { delegate, json, setup } from './helpers.js';

const TEXT = 'text/plain; charset=utf-8';

const CLIENT_MEMBER: MemberInfo = {
  name: 'client-1', address: '10.0.0.9', server: false, status: 4, nodeId: '11111111-2222-3333-4444-555555555555',
  datacenter: 'dc1', serverPort: null, meta: { rack: 'r1' },
};

t.test('members: Member JSON per member, server tags, statuses, no meta headers', async (t) => {
  const f = await setup(t, {}, {}, (agent) => delegate(agent, { members: async () => [...(await agent.members()), CLIENT_MEMBER] }));
  const response = await f.request('/v1/agent/members');
  t.equal(response.statusCode, 200);
  t.equal(response.headers['content-type'], 'application/json');
  t.equal(response.headers['x-consul-index'], undefined);
  t.equal(response.headers['x-consul-knownleader'], undefined);
  const members = json<Record<string, unknown>[]>(response);
  t.same(members[0], {
    Name: 'local-node', Addr: '127.0.0.1', Port: 8301,
    Tags: {
      build: '1.16.4:conclave', dc: 'dc1', id: '0b9a3f6e-3c7a-4d3e-9a59-5f3f1d0c8e11', port: '8300', raft_vsn: '3', role: 'consul',
      segment: '', vsn: '2', vsn_max: '3', vsn_min: '2', wan_join_port: '8302',
    },
    Status: 1, ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4,
  });
  t.same(members[1], {
    Name: 'client-1', Addr: '10.0.0.9', Port: 8301,
    Tags: {
      build: '1.16.4:conclave', dc: 'dc1', id: '11111111-2222-3333-4444-555555555555', role: 'node', segment: '',
      vsn: '2', vsn_max: '3', vsn_min: '2',
    },
    Status: 4, ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4,
  });
  t.equal(response.body.indexOf('"build"') < response.body.indexOf('"dc"'), true, 'tags are sorted by key, as Go marshals maps');
});

t.test('members ?wan: the servers as <node>.<dc> on 8302; a client agent has no WAN pool', async (t) => {
  const f = await setup(t, {}, {}, (agent) => delegate(agent, { members: async () => [...(await agent.members()), CLIENT_MEMBER] }));
  const wan = json<{ Name: string; Port: number; Tags: Record<string, string> }[]>(await f.request('/v1/agent/members?wan=1'));
  t.same(wan.map((member) => [member.Name, member.Port]), [['local-node.dc1', 8302]]);
  t.equal(wan[0]?.Tags['wan_join_port'], undefined, 'the WAN pool has no wan_join_port tag');
  t.equal(json<unknown[]>(await f.request('/v1/agent/members?wan=')).length, 2, 'an empty wan is off (Consul: non-empty)');
  const client = await setup(t, {}, {}, (agent) => delegate(agent, { info: { ...agent.info, server: false } }));
  const response = await client.request('/v1/agent/members?wan=1');
  t.equal(response.statusCode, 200);
  t.equal(response.body, '[]');
  t.equal((await client.request('/v1/agent/members?filter=Name%3D%3Dx')).statusCode, 400, '?filter is refused, not ignored');
  const pretty = await f.request('/v1/agent/members?pretty');
  t.match(pretty.body, /^\[\n {4}\{\n {8}"Name": "local-node",/);
});

t.test('join: empty 200; the agent gets the address; failures are 500 with the join error', async (t) => {
  const joined: string[] = [];
  let failure: Error | null = null;
  const f = await setup(t, {}, {}, (agent) => delegate(agent, {
    join: async (address) => {
      if (failure !== null) throw failure;
      joined.push(address);
    },
  }));
  const ok = await f.request({ method: 'PUT', url: '/v1/agent/join/10.0.0.2:8301', headers: { 'content-type': 'application/json' } });
  t.equal(ok.statusCode, 200);
  t.equal(ok.body, '');
  t.equal(ok.headers['content-type'], undefined, 'an empty 200 has no Content-Type');
  t.same(joined, ['10.0.0.2:8301']);
  failure = new Error('dial tcp 10.0.0.3:8300: connect: connection refused');
  const failed = await f.request({ method: 'PUT', url: '/v1/agent/join/10.0.0.3' });
  t.equal(failed.statusCode, 500);
  t.equal(failed.body, 'dial tcp 10.0.0.3:8300: connect: connection refused');
  t.equal(failed.headers['content-type'], TEXT);
  failure = new BadRequestError('membership change refused: a change is in progress');
  const refused = await f.request({ method: 'PUT', url: '/v1/agent/join/10.0.0.3' });
  t.equal(refused.statusCode, 500, 'every join failure is a 500, as Consul reports Serf errors');
  t.equal(refused.body, 'membership change refused: a change is in progress');
  failure = null;
  t.equal((await f.request({ method: 'PUT', url: '/v1/agent/join/' })).statusCode, 500, 'no address');
  const wan = await f.request({ method: 'PUT', url: '/v1/agent/join/10.0.0.2?wan=1' });
  t.equal(wan.statusCode, 500);
  t.match(wan.body, /WAN federation is not supported/);
  t.same(joined, ['10.0.0.2:8301'], 'no join was attempted for the refused requests');
  t.equal((await f.request('/v1/agent/join/x')).statusCode, 405, 'join is PUT only');
});

t.test('leave: empty 200 once the agent has left; a failure is a 500', async (t) => {
  let left = 0;
  let failure: Error | null = null;
  const f = await setup(t, {}, {}, (agent) => delegate(agent, {
    leave: async () => {
      if (failure !== null) throw failure;
      left++;
    },
  }));
  const response = await f.request({ method: 'PUT', url: '/v1/agent/leave', headers: { 'content-type': 'application/json' } });
  t.equal(response.statusCode, 200);
  t.equal(response.body, '');
  t.equal(left, 1);
  failure = new NoLeaderError();
  const failed = await f.request({ method: 'PUT', url: '/v1/agent/leave' });
  t.equal(failed.statusCode, 500);
  t.equal(failed.body, 'No cluster leader');
  const wrong = await f.request({ method: 'POST', url: '/v1/agent/leave' });
  t.equal(wrong.statusCode, 405);
  t.equal(wrong.headers['allow'], 'OPTIONS,PUT');
});

t.test('force-leave: the node and ?prune reach the agent; the node leaves the catalog', async (t) => {
  const calls: [string, boolean][] = [];
  const f = await setup(t, {}, {}, (agent) => delegate(agent, {
    forceLeave: async (node, prune) => {
      calls.push([node, prune]);
      await agent.forceLeave(node);
    },
  }));
  await f.agent.write({
    type: 'node-register', nowMs: 0, node: 'gone', id: '', address: '10.0.0.7', datacenter: 'dc1', taggedAddresses: {}, meta: {}, checks: [],
  });
  const response = await f.request({ method: 'PUT', url: '/v1/agent/force-leave/gone' });
  t.equal(response.statusCode, 200);
  t.equal(response.body, '');
  t.equal(f.agent.fsm.getNode('gone'), undefined);
  t.equal((await f.request({ method: 'PUT', url: '/v1/agent/force-leave/a%2Fb?prune' })).statusCode, 200);
  t.equal((await f.request({ method: 'PUT', url: '/v1/agent/force-leave/x?prune=false' })).statusCode, 200);
  t.same(calls, [['gone', false], ['a/b', true], ['x', true]], 'the node is percent-decoded; prune is presence-based');
  const missing = await f.request({ method: 'PUT', url: '/v1/agent/force-leave/' });
  t.equal(missing.statusCode, 400);
  t.equal(missing.body, 'Missing node name');
});

t.test('agent/self Stats: sections of strings; raft and leader only on a server with Raft', async (t) => {
  const f = await setup(t, {}, {}, (agent) => delegate(agent, {
    raftStatus: () => ({ role: 'follower', term: 7, commitIndex: 42, appliedIndex: 41, lastIndex: 43, snapshotIndex: 0, lastContactMs: 12 }),
  }));
  const stats = json<{ Stats: Record<string, Record<string, string>> }>(await f.request('/v1/agent/self')).Stats;
  t.same(stats['raft'], {
    applied_index: '41', commit_index: '42', last_contact: '12ms', last_log_index: '43', last_snapshot_index: '0',
    protocol_version: '3', state: 'Follower', term: '7',
  });
  t.same(stats['consul'], { acl: 'disabled', server: 'true', known_datacenters: '1', leader: 'false', leader_addr: '127.0.0.1:8300' });
  t.same(stats['build'], { prerelease: '', revision: 'conclave', version: '1.16.4', version_metadata: '' });
  t.same(Object.keys(stats).sort(), ['agent', 'build', 'consul', 'raft', 'runtime']);
  for (const section of Object.values(stats)) {
    for (const value of Object.values(section)) t.equal(typeof value, 'string');
  }
  const leader = await setup(t, {}, {}, (agent) => delegate(agent, { raftStatus: () => ({ role: 'leader', lastContactMs: null }) }));
  const leaderStats = json<{ Stats: Record<string, Record<string, string>> }>(await leader.request('/v1/agent/self')).Stats;
  t.equal(leaderStats['raft']?.['last_contact'], '0');
  t.equal(leaderStats['consul']?.['leader'], 'true');
  const plain = json<{ Stats: Record<string, unknown> }>(await (await setup(t)).request('/v1/agent/self')).Stats;
  t.equal(plain['raft'], undefined, 'no Raft status (client agents, the test double): no raft section');
});
