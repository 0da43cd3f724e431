import t from 'tap';
import { consulErrorText } from '../../src/state/fsm.js';
import { Harness, acquire, check, createSessionCommand, put, registerNode } from './helpers.js';
import type { Unstamped } from './helpers.js';

t.test('create validates node and checks with Consul texts', async (t) => {
  const h = new Harness();
  t.same(h.apply(createSessionCommand('s1', 'ghost')), { kind: 'error', message: 'Missing node registration' });
  t.equal(consulErrorText('session-create', 'Missing node registration'), 'apply failed: Missing node registration');
  h.done(registerNode('n1', 'passing', [check('web', 'passing')]));
  t.same(h.apply(createSessionCommand('s1', 'n1', { nodeChecks: ['serfHealth', 'db'] })),
    { kind: 'error', message: "Missing check 'db' registration" });
  h.done({ type: 'check-update', node: 'n1', checkId: 'web', status: 'critical', output: 'down' });
  t.same(h.apply(createSessionCommand('s1', 'n1', { nodeChecks: ['web'] })),
    { kind: 'error', message: "Check 'web' is in critical state" });
  t.equal(h.fsm.listSessions().length, 0);
  t.equal(h.fsm.tableIndex('sessions'), 0, 'failed creates change nothing');
});

t.test('create stores Consul fields: ns lock-delay, TTL as given, [] and null', async (t) => {
  const h = new Harness();
  h.done(registerNode('n1'));
  const result = h.apply(createSessionCommand('s1', 'n1', { name: 'Consul API Lock', ttl: '1m30s', ttlNs: 90e9, lockDelayNs: 1_000_000, nodeChecks: [] }));
  t.same(result, { kind: 'session', id: 's1' });
  t.same(h.fsm.getSession('s1'), {
    ID: 's1', Name: 'Consul API Lock', Node: 'n1', LockDelay: 1_000_000, Behavior: 'release', TTL: '1m30s',
    NodeChecks: [], ServiceChecks: null, CreateIndex: 2, ModifyIndex: 2,
  });
  t.equal(h.fsm.tableIndex('sessions'), 2);
  h.apply(createSessionCommand('s0', 'n1')); // 3, no TTL
  t.same(h.fsm.sessionsWithTtl(), [{ id: 's1', ttlNs: 90e9 }], 'what the leader arms timers from');
  t.same(h.fsm.listSessions().map((s) => s.ID), ['s0', 's1'], 'sorted by ID');
  t.same(h.fsm.nodeSessions('n1').map((s) => s.ID), ['s0', 's1']);
  t.same(h.fsm.nodeSessions('n2'), []);
  t.same(h.apply(createSessionCommand('s1', 'n1')), { kind: 'error', message: "Session ID 's1' already exists" });
});

t.test('destroy: unknown ids are a no-op; known ones release their keys', async (t) => {
  const h = new Harness();
  h.nodeAndSession('n1', 's1');
  const index = h.fsm.tableIndex('sessions');
  h.done({ type: 'session-destroy', id: 'nope' });
  t.equal(h.fsm.tableIndex('sessions'), index);
  h.bool(acquire('k', 's1'));
  h.done({ type: 'session-destroy', id: 's1' });
  t.equal(h.fsm.getSession('s1'), undefined);
  t.equal(h.fsm.tableIndex('sessions'), h.index);
  t.match(h.entry('k'), { Session: '', ModifyIndex: h.index, LockIndex: 1 });
});

t.test('deregistering a node invalidates all its sessions', async (t) => {
  const h = new Harness();
  h.nodeAndSession('n1', 's1');
  h.apply(createSessionCommand('s2', 'n1', { behavior: 'delete', nodeChecks: [] }));
  h.nodeAndSession('n2', 's3');
  h.bool(acquire('a', 's1'));
  h.bool(acquire('b', 's2'));
  h.bool(acquire('c', 's3'));
  h.done({ type: 'node-deregister', node: 'n1' });
  t.same(h.fsm.listSessions().map((s) => s.ID), ['s3']);
  t.equal(h.fsm.getNode('n1'), undefined);
  t.same(h.fsm.nodeChecks('n1'), []);
  t.match(h.entry('a'), { Session: '' });
  t.equal(h.fsm.getKey('b'), undefined, 'Behavior delete');
  t.match(h.entry('c'), { Session: 's3' });
  t.equal(h.fsm.lockDelayUntil('a'), h.nowMs + 15_000);
  t.equal(h.fsm.tableIndex('nodes', 'checks', 'sessions'), h.index);
  h.done({ type: 'node-deregister', node: 'n1' });
  t.equal(h.fsm.tableIndex('nodes'), h.index - 1, 'deregistering an unknown node changes nothing');
});

t.test('a check turning critical or going away invalidates dependent sessions', async (t) => {
  const h = new Harness();
  h.done(registerNode('n1', 'passing', [check('web', 'passing')]));
  h.apply(createSessionCommand('serf', 'n1'));
  h.apply(createSessionCommand('web', 'n1', { nodeChecks: ['web'] }));
  h.apply(createSessionCommand('none', 'n1', { nodeChecks: [] }));
  h.done({ type: 'check-update', node: 'n1', checkId: 'web', status: 'warning', output: 'slow' });
  t.equal(h.fsm.listSessions().length, 3, 'warning does not invalidate');
  h.done({ type: 'check-update', node: 'n1', checkId: 'web', status: 'critical', output: 'down' });
  t.same(h.fsm.listSessions().map((s) => s.ID), ['none', 'serf']);
  t.match(h.fsm.getCheck('n1', 'web'), { Status: 'critical', Output: 'down', ModifyIndex: h.index });
  // serfHealth going critical through a re-registration (the leader's reconcile).
  h.done(registerNode('n1', 'critical'));
  t.same(h.fsm.listSessions().map((s) => s.ID), ['none']);
  h.done(registerNode('n1', 'passing'));
  h.apply(createSessionCommand('serf2', 'n1'));
  h.done({ type: 'check-deregister', node: 'n1', checkId: 'serfHealth' });
  t.same(h.fsm.listSessions().map((s) => s.ID), ['none']);
  t.same(h.apply({ type: 'check-update', node: 'n1', checkId: 'gone', status: 'passing', output: '' }),
    { kind: 'error', message: 'check "gone" on node "n1" doesn\'t exist' });
  t.same(h.apply({ type: 'check-update', node: 'nx', checkId: 'gone', status: 'passing', output: '' }),
    { kind: 'error', message: 'Missing node registration' });
});

t.test('catalog: indexes move only on change; checks sorted by node then id', async (t) => {
  const h = new Harness();
  h.done(registerNode('b'));
  h.done(registerNode('a', 'passing', [check('zz', 'warning'), check('aa', 'passing')]));
  t.same(h.fsm.listNodes().map((n) => n.Node), ['a', 'b']);
  t.same(h.fsm.checksInState('any').map((c) => `${c.Node}/${c.CheckID}`), ['a/aa', 'a/serfHealth', 'a/zz', 'b/serfHealth']);
  t.same(h.fsm.checksInState('warning').map((c) => c.CheckID), ['zz']);
  t.match(h.fsm.getNode('a'), { ID: 'id-a', Datacenter: 'dc1', TaggedAddresses: { lan: '10.0.0.1' }, CreateIndex: 2, ModifyIndex: 2 });
  const nodes = h.fsm.tableIndex('nodes');
  const checks = h.fsm.tableIndex('checks');
  h.done(registerNode('a', 'passing', [check('zz', 'warning'), check('aa', 'passing')])); // identical
  t.equal(h.fsm.tableIndex('nodes'), nodes, 'an identical registration is a no-op');
  t.equal(h.fsm.tableIndex('checks'), checks);
  h.done({ ...registerNode('a'), address: '10.0.0.2' } as Unstamped);
  t.match(h.fsm.getNode('a'), { Address: '10.0.0.2', CreateIndex: 2, ModifyIndex: h.index });
  t.equal(h.fsm.tableIndex('checks'), checks, 'the node changed, its checks did not');
});

t.test('sessions on keys do not leak into unrelated keys', async (t) => {
  const h = new Harness();
  h.nodeAndSession('n1', 's1');
  h.bool(acquire('held', 's1'));
  h.bool(put('free'));
  h.done({ type: 'session-destroy', id: 's1' });
  t.equal(h.fsm.lockDelayUntil('free'), undefined);
  t.equal(h.entry('free').ModifyIndex, 4);
});
