/**
 * The Nodes, Services and Cluster views' data from Consul's API shapes (consul-api.md §10–13)
 * and Conclave's /v1/debug/raft: roles from membership, health from checks, and the Raft picture
 * from the leader's and a follower's point of view.
 */
import t from 'tap';
import { catalogNodesOf, catalogServicesOf, healthChecksOf, membersOf, nodeRows, nodeServicesOf, serviceHealthOf, serviceRows, worstHealth } from '../../src/ui/lib/catalog-model.js';
import { clusterPicture, raftConfigurationOf, raftStatusOf } from '../../src/ui/lib/raft-model.js';

const node = (name: string, address: string) => ({ ID: `id-${name}`, Node: name, Address: address, Datacenter: 'dc1', TaggedAddresses: { lan: address }, Meta: {}, CreateIndex: 3, ModifyIndex: 3 });
const check = (nodeName: string, checkId: string, status: string, service = '') => ({
  Node: nodeName, CheckID: checkId, Name: checkId === 'serfHealth' ? 'Serf Health Status' : checkId, Status: status, Notes: '',
  Output: status === 'passing' ? 'Agent alive and reachable' : 'Agent not live or unreachable', ServiceID: service, ServiceName: service,
  ServiceTags: [], Type: '', Interval: '', Timeout: '', ExposedPort: 0, Definition: {}, CreateIndex: 3, ModifyIndex: 8,
});
const member = (name: string, server: boolean, status: number, port = '8300') => ({
  Name: name, Addr: '127.0.0.1', Port: 8301, Tags: { role: server ? 'consul' : 'node', dc: 'dc1', port, id: `id-${name}` }, Status: status,
});

t.test('nodes: servers first, roles from membership, status from serfHealth', async (t) => {
  const rows = nodeRows(
    catalogNodesOf([node('c1', '127.0.0.5'), node('s2', '127.0.0.2'), node('ext', '10.9.9.9'), node('s1', '127.0.0.1')]),
    healthChecksOf([check('c1', 'serfHealth', 'critical'), check('s1', 'serfHealth', 'passing'), check('s2', 'serfHealth', 'passing'), check('s2', 'service:web', 'warning', 'web')]),
    membersOf([member('s1', true, 1), member('s2', true, 1), member('c1', false, 4)]));
  t.same(rows.map((row) => [row.name, row.role, row.memberStatus, row.health]), [
    ['s1', 'server', 'alive', 'passing'], ['s2', 'server', 'alive', 'warning'], ['c1', 'client', 'failed', 'critical'], ['ext', 'unknown', 'unknown', 'none'],
  ]);
  t.same(rows[1]?.counts, { passing: 1, warning: 1, critical: 0 });
  t.equal(rows[2]?.serfHealth?.output, 'Agent not live or unreachable', 'the last report is the serfHealth output');
  t.equal(rows[3]?.serfHealth, null);
  t.equal(worstHealth([]), 'none');
  t.equal(worstHealth(['passing', 'maintenance']), 'critical', 'an unknown status is not passing');
});

t.test('services: an empty catalog, then services with tags, checks and instances', async (t) => {
  t.same(serviceRows(catalogServicesOf({}), []), [], "today's {} is no services");
  const services = catalogServicesOf({ web: ['v1', 'blue'], consul: [] });
  t.same(services.map((service) => service.name), ['consul', 'web'], 'sorted by name');
  const rows = serviceRows(services, healthChecksOf([check('s1', 'service:web', 'passing', 'web'), check('s2', 'service:web', 'critical', 'web'), check('s1', 'serfHealth', 'passing')]), new Map([['web', 2]]));
  t.same(rows.map((row) => [row.name, row.tags, row.health, row.instances]), [['consul', [], 'none', null], ['web', ['v1', 'blue'], 'critical', 2]]);
  t.same(rows[1]?.counts, { passing: 1, warning: 0, critical: 1 });
});

t.test('a service\'s instances and a node\'s services', async (t) => {
  const entries = serviceHealthOf([
    { Node: node('s2', '127.0.0.2'), Service: { ID: 'web-2', Service: 'web', Tags: ['v1'], Address: '', Port: 8080 }, Checks: [check('s2', 'serfHealth', 'passing'), check('s2', 'service:web-2', 'warning', 'web')] },
    { Node: node('s1', '127.0.0.1'), Service: { ID: 'web-1', Service: 'web', Tags: [], Address: '10.1.1.1', Port: 8080 }, Checks: [check('s1', 'serfHealth', 'passing')] },
  ]);
  t.same(entries.map((entry) => [entry.node.name, entry.service.id, `${entry.service.address}:${entry.service.port}`, entry.health]), [
    ['s1', 'web-1', '10.1.1.1:8080', 'passing'], ['s2', 'web-2', '127.0.0.2:8080', 'warning'],
  ], 'sorted by node; an empty service address falls back to the node\'s');
  t.equal(nodeServicesOf(null), null, "Consul's 200 null for an unknown node");
  const onNode = nodeServicesOf({ Node: node('s1', '127.0.0.1'), Services: { b: { ID: 'b', Service: 'redis', Port: 6379 }, a: { ID: 'a', Service: 'web', Port: 80, Tags: ['x'] } } });
  t.same(onNode?.services.map((service) => [service.id, service.service, service.address, service.tags]), [['a', 'web', '127.0.0.1', ['x']], ['b', 'redis', '127.0.0.1', []]]);
});

const configuration = raftConfigurationOf({
  Servers: [
    { ID: 'id-s1', Node: 's1', Address: '127.0.0.1:8301', Leader: true, ProtocolVersion: '3', Voter: true, LastIndex: 120 },
    { ID: 'id-s2', Node: 's2', Address: '127.0.0.1:8302', Leader: false, ProtocolVersion: '3', Voter: true, LastIndex: 118 },
    { ID: 'id-s3', Node: 's3', Address: '127.0.0.1:8303', Leader: false, ProtocolVersion: '3', Voter: false, LastIndex: 0 },
  ],
  Index: 119,
});

const leaderStatus = raftStatusOf({
  id: 'id-s1', role: 'leader', term: 4, leaderId: 'id-s1', commitIndex: 119, appliedIndex: 119, lastIndex: 120, firstIndex: 1, snapshotIndex: 0,
  lastContactMs: 0, leaseValid: true, configuration: { servers: [{ id: 'id-s1', address: '127.0.0.1:8301', voter: true }] },
  progress: [
    { id: 'id-s1', match: 120, next: 121, state: 'replicate', recentActive: true },
    { id: 'id-s2', match: 118, next: 121, state: 'replicate', recentActive: true },
    { id: 'id-s3', match: 40, next: 41, state: 'probe', recentActive: false },
  ],
  stats: {},
});

t.test('cluster from the leader: replication per follower', async (t) => {
  const picture = clusterPicture({ configuration, status: leaderStatus, leaderAddress: '127.0.0.1:8301', members: [] });
  t.same(picture.leader, { id: 'id-s1', node: 's1', address: '127.0.0.1:8301' });
  t.equal(picture.hasReplication, true);
  t.same(picture.rows.map((row) => [row.node, row.isLeader, row.isSelf, row.voter, row.lastIndex, row.match, row.lag, row.replication, row.recentActive]), [
    ['s1', true, true, true, 120, 120, 0, 'leader', true],
    ['s2', false, false, true, 118, 118, 2, 'replicate', true],
    ['s3', false, false, false, null, 40, 80, 'probe', false],
  ]);
});

t.test('cluster from a follower: its own log, no replication figures', async (t) => {
  const status = raftStatusOf({ ...leaderStatusJson('id-s2', 'follower', 'id-s1'), lastContactMs: 35 });
  const picture = clusterPicture({ configuration, status, leaderAddress: '127.0.0.1:8301', members: [] });
  t.equal(picture.hasReplication, false);
  t.equal(picture.leader?.node, 's1');
  t.same(picture.rows.map((row) => [row.node, row.isSelf, row.lastIndex, row.match, row.lag]), [
    ['s1', false, 120, null, null], ['s2', true, 99, null, null], ['s3', false, null, null, null],
  ]);
  t.equal(picture.self?.lastContactMs, 35);
});

t.test('cluster without a leader: the server\'s own configuration, names from members', async (t) => {
  const status = raftStatusOf({ ...leaderStatusJson('id-s2', 'candidate', null), configuration: { servers: [{ id: 'id-s1', address: '127.0.0.1:8301', voter: true }, { id: 'id-s2', address: '127.0.0.1:8302', voter: true }] } });
  const picture = clusterPicture({ configuration: null, status, leaderAddress: '', members: membersOf([member('s1', true, 4), member('s2', true, 1)]) });
  t.equal(picture.leader, null);
  t.equal(picture.source, 'local-raft');
  t.same(picture.rows.map((row) => row.node), ['s1', 's2']);
  const client = clusterPicture({ configuration, status: null, leaderAddress: '127.0.0.1:8302', members: [] });
  t.equal(client.self, null);
  t.equal(client.leader?.node, 's1', 'the configuration\'s Leader flag wins over a stale address');
  const byAddress = clusterPicture({ configuration: raftConfigurationOf({ Servers: [{ ID: 'a', Node: 'a', Address: 'x:1', Leader: false, Voter: true }], Index: 1 }), status: null, leaderAddress: 'x:1', members: [] });
  t.equal(byAddress.leader?.id, 'a', 'a client agent names the leader by its address');
  t.throws(() => raftStatusOf({}), /Raft status/);
});

function leaderStatusJson(id: string, role: string, leaderId: string | null): Record<string, unknown> {
  return { id, role, term: 4, leaderId, commitIndex: 99, appliedIndex: 99, lastIndex: 99, firstIndex: 1, snapshotIndex: 0, lastContactMs: null, leaseValid: false, configuration: { servers: [] }, progress: [], stats: {} };
}
