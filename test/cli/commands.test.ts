/**
 * `conclave members|catalog|join|leave|force-leave|operator raft|info|session`, run as a child
 * process against a real listener: Consul's tables, messages and exit codes, error paths included.
 */
import t from 'tap';
import type { MemberInfo, RaftConfigurationInfo } from '../../src/agent/agent-api.js';
import { delegate } from '../http/helpers.js';
import { runConclave, startApi } from './helpers.js';

const LOCAL_ID = '0b9a3f6e-3c7a-4d3e-9a59-5f3f1d0c8e11';

const CLIENT: MemberInfo = {
  name: 'app-1', address: '10.0.0.20', server: false, status: 4, nodeId: '11111111-2222-3333-4444-555555555555',
  datacenter: 'dc1', serverPort: null, meta: {},
};
const SERVER_B: MemberInfo = {
  name: 'b-server', address: '10.0.0.2', server: true, status: 1, nodeId: '22222222-2222-3333-4444-555555555555',
  datacenter: 'dc1', serverPort: 8300, meta: {},
};

// Each subtest has its own listener and children: they run side by side (a CLI run mostly waits).
t.jobs = 4;

t.test('members: Consul\'s table, servers first; -detailed; -status filter exits 2 on no match', async (t) => {
  const api = await startApi(t, (agent) => delegate(agent, { members: async () => [CLIENT, ...(await agent.members()), SERVER_B] }));
  t.same(await api.cli(['members']), {
    code: 0, stderr: '',
    stdout: [
      'Node        Address         Status  Type    Build   Protocol  DC   Partition  Segment',
      'b-server    10.0.0.2:8301   alive   server  1.16.4  2         dc1  default    <all>',
      'local-node  127.0.0.1:8301  alive   server  1.16.4  2         dc1  default    <all>',
      'app-1       10.0.0.20:8301  failed  client  1.16.4  2         dc1  default    <default>',
      '',
    ].join('\n'),
  });
  const detailed = await api.cli(['members', '-detailed']);
  t.equal(detailed.code, 0);
  t.match(detailed.stdout, /^Node {8}Address {9}Status  Tags\n/);
  t.match(detailed.stdout, /app-1 +10\.0\.0\.20:8301 +failed +ap=default,build=1\.16\.4:conclave,dc=dc1,id=11111111-2222-3333-4444-555555555555,role=node,segment=<default>,vsn=2,vsn_max=3,vsn_min=2\n$/);
  t.same(await api.cli(['members', '-status=failed']), {
    code: 0, stderr: '',
    stdout: 'Node   Address         Status  Type    Build   Protocol  DC   Partition  Segment\napp-1  10.0.0.20:8301  failed  client  1.16.4  2         dc1  default    <default>\n',
  });
  t.same(await api.cli(['members', '-status=left']), { code: 2, stdout: '', stderr: '' });
  t.same(await api.cli(['members', '-status=(']), { code: 1, stdout: '', stderr: 'Failed to compile status regexp: Invalid regular expression: /(/: Unterminated group\n' });
  const wan = await api.cli(['members', '-wan']);
  t.match(wan.stdout, /b-server\.dc1 +10\.0\.0\.2:8302 +alive +server/);
  t.notMatch(wan.stdout, /app-1/);
  t.same(await api.cli(['members', '-filter=x']), {
    code: 1, stdout: '', stderr: 'Error retrieving members: Unexpected response code: 400 (Filtering (?filter=) is not supported by this agent)\n',
  });
  t.same(await runConclave(['members', '-http-addr=127.0.0.1:1']), {
    code: 1, stdout: '',
    stderr: 'Error retrieving members: Get "http://127.0.0.1:1/v1/agent/members?segment=_all": dial tcp 127.0.0.1:1: connect: connection refused\n',
  });
});

t.test('catalog nodes / datacenters / services', async (t) => {
  const api = await startApi(t);
  await api.agent.write({
    type: 'node-register', nowMs: 0, node: 'web-1', id: '6f4f3c38-7c5e-4b0a-9c7e-2f9d8e1b2a33', address: '10.0.0.5', datacenter: 'dc1',
    taggedAddresses: { wan: '198.51.100.5', lan: '10.0.0.5' }, meta: { rack: 'r1', env: 'prod' }, checks: [],
  });
  t.same(await api.cli(['catalog', 'nodes']), {
    code: 0, stderr: '',
    stdout: 'Node        ID        Address    DC\nlocal-node  0b9a3f6e  127.0.0.1  dc1\nweb-1       6f4f3c38  10.0.0.5   dc1\n',
  });
  t.same(await api.cli(['catalog', 'nodes', '-detailed']), {
    code: 0, stderr: '',
    stdout: [
      `Node        ID${' '.repeat(36)}Address    DC   TaggedAddresses${' '.repeat(17)}Meta`,
      `local-node  ${LOCAL_ID}  127.0.0.1  dc1${' '.repeat(34)}`,
      'web-1       6f4f3c38-7c5e-4b0a-9c7e-2f9d8e1b2a33  10.0.0.5   dc1  lan=10.0.0.5, wan=198.51.100.5  env=prod, rack=r1',
      '',
    ].join('\n'),
  });
  t.same(await api.cli(['catalog', 'nodes', '-node-meta=rack=r1']), { code: 0, stderr: '', stdout: 'Node   ID        Address   DC\nweb-1  6f4f3c38  10.0.0.5  dc1\n' });
  t.same(await api.cli(['catalog', 'nodes', '-node-meta=rack=r9']), { code: 0, stdout: '', stderr: 'No nodes match the given query - try expanding your search.\n' });
  t.same(await api.cli(['catalog', 'nodes', '-node-meta=rack']), {
    code: 1, stdout: '', stderr: 'invalid value "rack" for flag -node-meta: Missing "=" value in argument: rack\n',
  });
  t.same(await api.cli(['catalog', 'nodes', '-service=web']), { code: 0, stdout: '', stderr: 'No nodes match the given query - try expanding your search.\n' });
  t.equal((await api.cli(['catalog', 'nodes', '-near=_agent'])).code, 0);
  t.same(await api.cli(['catalog', 'nodes'], ['extra']), { code: 1, stdout: '', stderr: 'Too many arguments (expected 0, got 1)\n' });
  t.same(await api.cli(['catalog', 'datacenters']), { code: 0, stdout: 'dc1\n', stderr: '' });
  t.same(await api.cli(['catalog', 'services']), { code: 0, stdout: '', stderr: 'No services match the given query - try expanding your search.\n' });
  t.same(await api.cli(['catalog', 'services', '-node=web-1', '-tags']), { code: 0, stdout: '', stderr: 'No services match the given query - try expanding your search.\n' });
  t.same(await api.cli(['catalog', 'nodes', '-datacenter=dc2']), {
    code: 1, stdout: '', stderr: 'Error listing nodes: Unexpected response code: 500 (No path to datacenter)\n',
  });
  t.same(await runConclave(['catalog', 'datacenters', '-http-addr=127.0.0.1:1']), {
    code: 1, stdout: '',
    stderr: 'Error listing datacenters: Get "http://127.0.0.1:1/v1/catalog/datacenters": dial tcp 127.0.0.1:1: connect: connection refused\n',
  });
});

t.test('join: success count, per-address errors, "Failed to join any nodes."', async (t) => {
  const joined: string[] = [];
  const api = await startApi(t, (agent) => delegate(agent, {
    join: async (address) => {
      if (address.startsWith('10.9.')) throw new Error(`dial tcp ${address}: i/o timeout`);
      joined.push(address);
    },
  }));
  t.same(await api.cli(['join'], ['10.0.0.2', '10.0.0.3:8301']), { code: 0, stdout: 'Successfully joined cluster by contacting 2 nodes.\n', stderr: '' });
  t.same(joined, ['10.0.0.2', '10.0.0.3:8301']);
  t.same(await api.cli(['join'], ['10.9.0.1', '10.0.0.4']), {
    code: 0, stdout: 'Successfully joined cluster by contacting 1 nodes.\n',
    stderr: "Error joining address '10.9.0.1': Unexpected response code: 500 (dial tcp 10.9.0.1: i/o timeout)\n",
  });
  t.same(await api.cli(['join'], ['10.9.0.1']), {
    code: 1, stdout: '',
    stderr: "Error joining address '10.9.0.1': Unexpected response code: 500 (dial tcp 10.9.0.1: i/o timeout)\nFailed to join any nodes.\n",
  });
  const none = await api.cli(['join']);
  t.equal(none.code, 1);
  t.match(none.stderr, /^At least one address to join must be specified\.\n\nUsage: conclave join/);
  const wan = await api.cli(['join', '-wan'], ['10.0.0.2']);
  t.equal(wan.code, 1);
  t.match(wan.stderr, /WAN federation is not supported/);
});

t.test('leave and force-leave', async (t) => {
  let leaves = 0;
  const forced: [string, boolean][] = [];
  const api = await startApi(t, (agent) => delegate(agent, {
    leave: async () => { leaves++; },
    forceLeave: async (node, prune) => {
      if (node === 'bad') throw new Error('node bad not found');
      forced.push([node, prune]);
    },
  }));
  t.same(await api.cli(['leave']), { code: 0, stdout: 'Graceful leave complete\n', stderr: '' });
  t.equal(leaves, 1);
  const extra = await api.cli(['leave'], ['now']);
  t.equal(extra.code, 1);
  t.equal(extra.stderr, 'Error found unexpected args: [now]\n');
  t.match(extra.stdout, /^Usage: conclave leave/);
  t.same(await api.cli(['force-leave'], ['app-1']), { code: 0, stdout: '', stderr: '' });
  t.same(await api.cli(['force-leave', '-prune'], ['app-2']), { code: 0, stdout: '', stderr: '' });
  t.same(forced, [['app-1', false], ['app-2', true]]);
  t.same(await api.cli(['force-leave'], ['bad']), { code: 1, stdout: '', stderr: 'Error force leaving: Unexpected response code: 500 (node bad not found)\n' });
  const none = await api.cli(['force-leave']);
  t.equal(none.code, 1);
  t.match(none.stderr, /^A single node name must be specified to force leave\.\n\nUsage: conclave force-leave/);
  t.same(await runConclave(['leave', '-http-addr=127.0.0.1:1']), {
    code: 1, stdout: '', stderr: 'Error leaving: Put "http://127.0.0.1:1/v1/agent/leave": dial tcp 127.0.0.1:1: connect: connection refused\n',
  });
});

t.test('operator raft list-peers and remove-peer', async (t) => {
  const configuration: RaftConfigurationInfo = {
    servers: [
      { id: 'id-1', node: 's1', address: '10.0.0.1:8300', leader: true, voter: true, lastIndex: 0 },
      { id: 'id-2', node: 's2', address: '10.0.0.2:8300', leader: false, voter: false, lastIndex: 0 },
    ],
    index: 12,
  };
  const api = await startApi(t, (agent) => delegate(agent, { raftConfiguration: async () => configuration }));
  t.same(await api.cli(['operator', 'raft', 'list-peers']), {
    code: 0, stderr: '',
    stdout: [
      'Node  ID    Address        State     Voter  RaftProtocol  Commit Index  Trails Leader By',
      's1    id-1  10.0.0.1:8300  leader    true   3             0             -',
      's2    id-2  10.0.0.2:8300  follower  false  3             0             0 commits',
      '',
    ].join('\n'),
  });
  t.same(await api.cli(['operator', 'raft', 'remove-peer', '-id=id-2']), { code: 0, stdout: 'Removed peer with id "id-2"\n', stderr: '' });
  t.same(await api.cli(['operator', 'raft', 'remove-peer', '-address=10.0.0.1:8300']), {
    code: 0, stdout: 'Removed peer with address "10.0.0.1:8300"\n', stderr: '',
  });
  t.same(api.agent.removedRaftPeers, ['id-2', 'id-1']);
  t.same(await api.cli(['operator', 'raft', 'remove-peer']), { code: 1, stdout: '', stderr: 'Error removing peer: an address or id is required for the peer to remove\n' });
  t.same(await api.cli(['operator', 'raft', 'remove-peer', '-id=a', '-address=b']), { code: 1, stdout: '', stderr: 'Error removing peer: cannot give both an address and id\n' });
  t.same(await api.cli(['operator', 'raft', 'remove-peer', '-id=zz']), {
    code: 1, stdout: '', stderr: 'Error removing peer: Unexpected response code: 500 (id "zz" was not found in the Raft configuration)\n',
  });
  t.same(await runConclave(['operator', 'raft', 'list-peers', '-http-addr=127.0.0.1:1']), {
    code: 1, stdout: '',
    stderr: 'Error getting peers: Failed to retrieve raft configuration: Get "http://127.0.0.1:1/v1/operator/raft/configuration": dial tcp 127.0.0.1:1: connect: connection refused\n',
  });
  const list = await runConclave(['operator']);
  t.equal(list.code, 1);
  t.match(list.stderr, /raft +Provides cluster-level tools for Raft/);
  t.equal((await runConclave(['operator', 'raft'])).code, 1);
});

t.test('info: Stats sections sorted, "\\tkey = value" lines', async (t) => {
  const api = await startApi(t, (agent) => delegate(agent, { raftStatus: () => ({ role: 'leader', term: 2, commitIndex: 9, appliedIndex: 9, lastIndex: 9, snapshotIndex: 0 }) }));
  const info = await api.cli(['info']);
  t.equal(info.code, 0);
  t.equal(info.stderr, '');
  t.match(info.stdout, /^agent:\n\tcheck_monitors = 0\n\tcheck_ttls = 0\n\tchecks = 0\n\tservices = 0\nbuild:\n\tprerelease = \n\trevision = conclave\n\tversion = 1\.16\.4\n/);
  t.match(info.stdout, /\nconsul:\n\tacl = disabled\n\tknown_datacenters = 1\n\tleader = true\n\tleader_addr = 127\.0\.0\.1:8300\n\tserver = true\nraft:\n\tapplied_index = 9\n/);
  t.match(info.stdout, /\n\tstate = Leader\n\tterm = 2\nruntime:\n\tarch = /);
  t.same(await runConclave(['info', '-http-addr=127.0.0.1:1']), {
    code: 1, stdout: '', stderr: 'Error querying agent: Get "http://127.0.0.1:1/v1/agent/self": dial tcp 127.0.0.1:1: connect: connection refused\n',
  });
});

t.test('session list: a table, or "No sessions found."', async (t) => {
  const api = await startApi(t);
  t.same(await api.cli(['session', 'list']), { code: 0, stdout: '', stderr: 'No sessions found.\n' });
  await api.agent.write({
    type: 'session-create', nowMs: 0, id: 'a1b2c3d4-0000-4000-8000-000000000001', name: 'swarm', node: 'local-node', lockDelayNs: 15_000_000_000,
    behavior: 'delete', ttl: '1m30s', ttlNs: 90_000_000_000, nodeChecks: ['serfHealth'], serviceChecks: [],
  });
  t.same(await api.cli(['session', 'list']), {
    code: 0, stderr: '',
    stdout: 'ID                                    Name   Node        Behavior  TTL    LockDelay  Checks\n'
      + 'a1b2c3d4-0000-4000-8000-000000000001  swarm  local-node  delete    1m30s  15s        serfHealth\n',
  });
  t.same(await api.cli(['session', 'list'], ['x']), { code: 1, stdout: '', stderr: 'Too many arguments (expected 0, got 1)\n' });
});

t.test('the top level: usage, unknown commands, version', async (t) => {
  const none = await runConclave([]);
  t.equal(none.code, 1);
  t.match(none.stdout, /^Usage: conclave <command> \[args\]\n\nCommands:\n {2}agent/);
  const unknown = await runConclave(['frobnicate']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /^Unknown command: frobnicate\n/);
  t.same(await runConclave(['version']), { code: 0, stdout: 'Conclave v0.1.0 (Consul API 1.16 compatible)\n', stderr: '' });
  const help = await runConclave(['members', '-help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: conclave members \[options\]/);
});
