/**
 * The services table of the state machine: catalog registration with a service, service
 * deregistration, anti-entropy's node-sync, node deregistration, sessions on service checks,
 * table indexes, snapshots (version 2, and version 1 written before services existed).
 */
import t from 'tap';
import { catalogViewOf, hashNodeServices } from '../../src/agent/service-sync.js';
import { runQuery } from '../../src/agent/queries.js';
import { CorruptionError } from '../../src/lib/errors.js';
import type { CheckDefinition, NodeRegisterCommand, ServiceDefinition } from '../../src/state/commands.js';
import { StateMachine } from '../../src/state/fsm.js';
import { SNAPSHOT_FORMAT_VERSION } from '../../src/state/snapshot.js';
import { statePackr } from '../../src/state/wire.js';
import { Harness, check, createSessionCommand, registerNode } from './helpers.js';
import type { Unstamped } from './helpers.js';

function service(serviceId: string, name = serviceId, extra: Partial<ServiceDefinition> = {}): ServiceDefinition {
  return { serviceId, service: name, tags: [], address: '', meta: {}, port: 80, weights: { passing: 1, warning: 1 }, enableTagOverride: false, ...extra };
}

function serviceCheck(checkId: string, serviceId: string, status: CheckDefinition['status'] = 'passing'): CheckDefinition {
  return { ...check(checkId, status), serviceId };
}

function registerWithService(node: string, svc: ServiceDefinition, checks: CheckDefinition[] = []): Unstamped {
  const base = registerNode(node) as Omit<NodeRegisterCommand, 'nowMs'>;
  return { ...base, service: svc, checks: [...base.checks, ...checks] };
}

function sync(node: string, services: ServiceDefinition[], checks: CheckDefinition[]): Unstamped {
  return { type: 'node-sync', node, services, checks };
}

t.test('node-register with a service: the row, the check takes the service name and tags', async (t) => {
  const h = new Harness();
  h.done(registerWithService('n1', service('web-1', 'web', { tags: ['v1', 'blue'], port: 8080, meta: { z: '1', a: '2' } }), [serviceCheck('c1', 'web-1')]));
  t.same(h.fsm.nodeServices('n1'), [{
    Node: 'n1', ID: 'web-1', Service: 'web', Tags: ['v1', 'blue'], Address: '', Meta: { a: '2', z: '1' }, Port: 8080,
    Weights: { Passing: 1, Warning: 1 }, EnableTagOverride: false, CreateIndex: 1, ModifyIndex: 1,
  }]);
  t.match(h.fsm.getCheck('n1', 'c1'), { ServiceID: 'web-1', ServiceName: 'web', ServiceTags: ['v1', 'blue'] });
  t.equal(h.fsm.tableIndex('services'), 1);
  t.same(h.fsm.serviceNames(), ['web']);
  t.same(h.fsm.serviceInstances('web').map((s) => s.ID), ['web-1']);
  h.done(registerWithService('n1', service('web-1', 'web', { tags: ['v1', 'blue'], port: 8080, meta: { z: '1', a: '2' } })));
  t.equal(h.fsm.nodeServices('n1')[0]?.ModifyIndex, 1, 'an unchanged service keeps its ModifyIndex');
  h.done(registerWithService('n1', service('web-1', 'web', { tags: ['v2'] })));
  t.match(h.fsm.getCheck('n1', 'c1'), { ServiceTags: ['v2'], ModifyIndex: 3 }, 'a retagged service retags its checks');
});

t.test('node-register: a check of an unknown service writes nothing', async (t) => {
  const h = new Harness();
  const base = registerNode('n1') as Omit<NodeRegisterCommand, 'nowMs'>;
  t.same(h.apply({ ...base, checks: [serviceCheck('c1', 'ghost')] }), { kind: 'error', message: 'Missing service registration' });
  t.equal(h.fsm.getNode('n1'), undefined);
  t.equal(h.fsm.tableIndex('nodes', 'services', 'checks'), 0);
  h.done(registerWithService('n1', service('web')));
  h.done({ ...base, checks: [serviceCheck('c2', 'web', 'warning')] });
  t.match(h.fsm.getCheck('n1', 'c2'), { ServiceName: 'web', Status: 'warning' }, 'a check of a service the node has');
});

t.test('service-deregister removes the service and its checks and invalidates sessions on them', async (t) => {
  const h = new Harness();
  h.done(registerWithService('n1', service('web'), [serviceCheck('c1', 'web'), check('node-check', 'passing')]));
  t.equal(h.apply(createSessionCommand('s1', 'n1', { nodeChecks: ['serfHealth', 'c1'] })).kind, 'session');
  h.done({ type: 'service-deregister', node: 'n1', serviceId: 'web' });
  t.same(h.fsm.nodeServices('n1'), []);
  t.same(h.fsm.nodeChecks('n1').map((c) => c.CheckID), ['node-check', 'serfHealth']);
  t.equal(h.fsm.getSession('s1'), undefined);
  t.same(h.fsm.serviceNames(), []);
  const before = h.fsm.tableIndex('services', 'checks');
  h.done({ type: 'service-deregister', node: 'n1', serviceId: 'web' });
  h.done({ type: 'service-deregister', node: 'ghost', serviceId: 'web' });
  t.equal(h.fsm.tableIndex('services', 'checks'), before, 'unknown ones change nothing');
});

t.test('node-sync: exactly the listed services and checks, serfHealth kept, unchanged rows keep indexes', async (t) => {
  const h = new Harness();
  t.same(h.apply(sync('n1', [], [])), { kind: 'error', message: 'Missing node registration' });
  h.done(registerNode('n1', 'passing', [check('catalog-only', 'passing')]));
  h.done(sync('n1', [service('web'), service('db')], [serviceCheck('web-check', 'web'), check('mem', 'warning')]));
  t.same(h.fsm.nodeServices('n1').map((s) => s.ID), ['db', 'web']);
  t.same(h.fsm.nodeChecks('n1').map((c) => c.CheckID), ['mem', 'serfHealth', 'web-check'], 'the catalog-only check is gone');
  const webIndex = h.fsm.nodeServices('n1').find((s) => s.ID === 'web')?.ModifyIndex;
  t.equal(h.apply(createSessionCommand('s1', 'n1', { nodeChecks: ['web-check'] })).kind, 'session');
  h.done(sync('n1', [service('web')], [serviceCheck('web-check', 'web', 'critical'), check('mem', 'warning')]));
  t.same(h.fsm.nodeServices('n1').map((s) => s.ID), ['web']);
  t.equal(h.fsm.nodeServices('n1')[0]?.ModifyIndex, webIndex, 'unchanged');
  t.equal(h.fsm.getSession('s1'), undefined, 'a check turning critical invalidates its sessions');
  t.same(h.apply(sync('n1', [], [serviceCheck('x', 'gone')])).kind, 'error', 'a check of an unlisted service is refused');
  t.same(h.fsm.nodeServices('n1').map((s) => s.ID), ['web'], 'and nothing was written');
  t.equal(hashNodeServices(catalogViewOf(h.fsm, 'n1')),
    hashNodeServices({ services: [service('web')], checks: [{ ...serviceCheck('web-check', 'web', 'critical'), serviceName: 'web' }, check('mem', 'warning')] }),
    'the leader\'s hash of the catalog equals the agent\'s hash of what it sent');
});

t.test('node-deregister removes the node\'s services; reads by name follow', async (t) => {
  const h = new Harness();
  h.done(registerWithService('n1', service('web-1', 'web')));
  h.done(registerWithService('n2', service('web-2', 'web', { tags: ['x'] }), [serviceCheck('c', 'web-2', 'critical')]));
  const all = runQuery(h.fsm, { kind: 'service-instances', service: 'web' }).value;
  t.same(all.map((row) => [row.node.Node, row.service.ID, row.checks.map((c) => c.CheckID)]), [['n1', 'web-1', ['serfHealth']], ['n2', 'web-2', ['c', 'serfHealth']]]);
  t.same(runQuery(h.fsm, { kind: 'service-instances', service: 'web', passing: true }).value.map((row) => row.service.ID), ['web-1']);
  t.same(runQuery(h.fsm, { kind: 'catalog-service', service: 'web', tags: ['X'] }).value.map((row) => row.service.ID), ['web-2'], 'tags compare case-insensitively');
  t.same(runQuery(h.fsm, { kind: 'catalog-services' }).value, { web: ['x'] });
  h.done({ type: 'node-deregister', node: 'n2' });
  t.same(h.fsm.serviceInstances('web').map((s) => s.ID), ['web-1']);
  t.equal(h.fsm.tableIndex('services'), h.index);
});

t.test('snapshots carry services (version 2) and restore a version 1 snapshot without them', async (t) => {
  const h = new Harness();
  h.done(registerWithService('n1', service('web', 'web', { tags: ['a'], meta: { k: 'v' }, enableTagOverride: true, weights: { passing: 3, warning: 0 } })));
  h.done(registerWithService('n0', service('api')));
  const bytes = h.fsm.snapshot();
  t.equal(bytes[0], SNAPSHOT_FORMAT_VERSION);
  t.equal(SNAPSHOT_FORMAT_VERSION, 2);
  const restored = new StateMachine();
  restored.restore(bytes);
  t.same(restored.nodeServices('n1'), h.fsm.nodeServices('n1'));
  t.same(restored.serviceNames(), ['api', 'web']);
  t.equal(restored.tableIndex('services'), h.fsm.tableIndex('services'));
  t.same(restored.snapshot(), bytes, 'the same state encodes to the same bytes');
  // A version 1 snapshot: the layout before services (no servicesIndex, no services).
  const body = statePackr.unpack(bytes.subarray(1)) as { catalog: Record<string, unknown> };
  delete body.catalog['services'];
  delete body.catalog['servicesIndex'];
  const packed = statePackr.pack(body);
  const v1 = new Uint8Array(packed.byteLength + 1);
  v1[0] = 1;
  v1.set(packed, 1);
  const old = new StateMachine();
  old.restore(v1);
  t.same(old.listNodes().map((n) => n.Node), ['n0', 'n1']);
  t.same(old.serviceNames(), []);
  t.equal(old.tableIndex('services'), 0);
  const v3 = new Uint8Array(bytes);
  v3[0] = 3;
  t.throws(() => new StateMachine().restore(v3), CorruptionError, 'an unknown version is refused clearly');
});
