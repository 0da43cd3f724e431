/**
 * consul-api.md §13 (`/v1/operator/raft/configuration`, `DELETE /v1/operator/raft/peer`) and
 * RELIABILITY.md B1 (`/v1/debug/raft`). No meta headers on any of them.
 */
import t from 'tap';
import type { RaftConfigurationInfo } from '../../src/agent/agent-api.js';
import { NoLeaderError } from '../../src/lib/errors.js';
import { delegate, json, setup } from './helpers.js';

const TEXT = 'text/plain; charset=utf-8';

const THREE_SERVERS: RaftConfigurationInfo = {
  servers: [
    { id: 'id-1', node: 's1', address: '10.0.0.1:8300', leader: true, voter: true, lastIndex: 0 },
    { id: 'id-2', node: 's2', address: '10.0.0.2:8300', leader: false, voter: true, lastIndex: 0 },
    { id: 'id-3', node: 'id-3', address: '10.0.0.3:8300', leader: false, voter: false, lastIndex: 0 },
  ],
  index: 77,
};

t.test('raft/configuration: Consul\'s shape, no meta headers, query options and dc checked', async (t) => {
  const f = await setup(t);
  const response = await f.request('/v1/operator/raft/configuration');
  t.equal(response.statusCode, 200);
  t.equal(response.headers['content-type'], 'application/json');
  t.equal(response.headers['x-consul-index'], undefined);
  t.equal(response.headers['x-consul-knownleader'], undefined);
  t.same(json(response), {
    Servers: [{
      ID: '0b9a3f6e-3c7a-4d3e-9a59-5f3f1d0c8e11', Node: 'local-node', Address: '127.0.0.1:8300', Leader: true,
      ProtocolVersion: '3', Voter: true, LastIndex: 1,
    }],
    Index: 1,
  });
  t.equal((await f.request('/v1/operator/raft/configuration?stale')).statusCode, 200);
  t.equal((await f.request('/v1/operator/raft/configuration?stale&consistent')).statusCode, 400);
  t.equal((await f.request('/v1/operator/raft/configuration?dc=x')).body, 'No path to datacenter');
  t.equal((await f.request({ method: 'DELETE', url: '/v1/operator/raft/configuration' })).statusCode, 405);
});

t.test('raft/peer: ?id or ?address (resolved to the ID) → removeRaftPeer, empty 200', async (t) => {
  const f = await setup(t, {}, {}, (agent) => delegate(agent, { raftConfiguration: async () => THREE_SERVERS }));
  const byId = await f.request({ method: 'DELETE', url: '/v1/operator/raft/peer?id=id-2' });
  t.equal(byId.statusCode, 200);
  t.equal(byId.body, '');
  t.equal(byId.headers['content-type'], undefined);
  const byAddress = await f.request({ method: 'DELETE', url: '/v1/operator/raft/peer?address=10.0.0.3:8300' });
  t.equal(byAddress.statusCode, 200);
  t.same(f.agent.removedRaftPeers, ['id-2', 'id-3']);
  t.equal(f.agent.fsm.getNode('local-node')?.Node, 'local-node', 'the catalog is not touched');
});

t.test('raft/peer: Consul\'s 400s and the 500 for a peer not in the configuration', async (t) => {
  const f = await setup(t, {}, {}, (agent) => delegate(agent, { raftConfiguration: async () => THREE_SERVERS }));
  const neither = await f.request({ method: 'DELETE', url: '/v1/operator/raft/peer' });
  t.equal(neither.statusCode, 400);
  t.equal(neither.body, "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove");
  t.equal(neither.headers['content-type'], TEXT);
  const both = await f.request({ method: 'DELETE', url: '/v1/operator/raft/peer?id=id-2&address=10.0.0.2:8300' });
  t.equal(both.statusCode, 400);
  t.equal(both.body, 'Must specify only one of ?id or ?address');
  const unknownId = await f.request({ method: 'DELETE', url: '/v1/operator/raft/peer?id=nope' });
  t.equal(unknownId.statusCode, 500);
  t.equal(unknownId.body, 'id "nope" was not found in the Raft configuration');
  const unknownAddress = await f.request({ method: 'DELETE', url: '/v1/operator/raft/peer?address=10.9.9.9:8300' });
  t.equal(unknownAddress.body, 'address "10.9.9.9:8300" was not found in the Raft configuration');
  const empty = await f.request({ method: 'DELETE', url: '/v1/operator/raft/peer?id=' });
  t.equal(empty.body, 'id "" was not found in the Raft configuration', 'presence, not value, picks the parameter');
  t.same(f.agent.removedRaftPeers, []);
  const wrong = await f.request({ method: 'GET', url: '/v1/operator/raft/peer?id=id-2' });
  t.equal(wrong.statusCode, 405);
  t.equal(wrong.headers['allow'], 'OPTIONS,DELETE');
});

t.test('raft/peer: the agent\'s failure (no leader) keeps its status and text', async (t) => {
  const f = await setup(t, {}, {}, (agent) => delegate(agent, {
    raftConfiguration: async () => THREE_SERVERS,
    removeRaftPeer: async () => { throw new NoLeaderError(); },
  }));
  const response = await f.request({ method: 'DELETE', url: '/v1/operator/raft/peer?id=id-2' });
  t.equal(response.statusCode, 500);
  t.equal(response.body, 'No cluster leader');
});

t.test('debug/raft: the server\'s Raft status as JSON; a 404 like an unknown path on a client agent', async (t) => {
  const status = { id: 'id-1', role: 'leader', term: 4, commitIndex: 12, appliedIndex: 12, configuration: { servers: [{ id: 'id-1' }] } };
  const f = await setup(t, {}, {}, (agent) => delegate(agent, { raftStatus: () => status }));
  const response = await f.request('/v1/debug/raft');
  t.equal(response.statusCode, 200);
  t.same(json(response), status);
  t.equal(response.headers['x-consul-index'], undefined);
  const client = await setup(t);
  const none = await client.request('/v1/debug/raft');
  t.equal(none.statusCode, 404);
  t.equal(none.body, 'Invalid URL path: not a recognized HTTP API endpoint\n');
  t.equal(none.headers['content-type'], TEXT);
});
