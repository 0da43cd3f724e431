/**
 * Conformance with the npm `consul` client (node-consul 2.x), against a real HTTP listener on
 * 127.0.0.1 (the LocalAgent test double behind it): KV get/set/del/keys, sessions
 * create/renew/destroy/info, acquire/release, and its `watch` helper (which stops on a missing or
 * zero X-Consul-Index and aborts at wait + max(10%, 500 ms)).
 */
import { once } from 'node:events';
import Consul from 'consul';
import t from 'tap';
import { listenHttp } from '../../src/http/serve.js';
import { setup, waitForWaiters } from './helpers.js';
import type { Fixture, Teardown } from './helpers.js';

interface KvItem {
  Key: string;
  Value: string | null;
  Flags: number;
  Session?: string;
  LockIndex: number;
  ModifyIndex: number;
}

async function client(t: Teardown, f: Fixture): Promise<Consul> {
  const { port } = await listenHttp(f.app, '127.0.0.1', 0);
  const consul = new Consul({ host: '127.0.0.1', port });
  t.teardown(() => consul.destroy());
  return consul;
}

t.test('node-consul: kv set/get/keys/del, raw, recurse, encoded keys', async (t) => {
  const f = await setup(t);
  const consul = await client(t, f);
  t.equal(await consul.kv.set('app/config', 'value'), true);
  t.equal(await consul.kv.set({ key: 'app/flags', value: 'f', flags: 42 }), true);
  t.equal(await consul.kv.set('app/dir/a:1 b', 'spaced'), true, 'node-consul encodes keys with encodeURIComponent');
  t.equal(await consul.kv.set('app/empty', ''), true);
  const item = (await consul.kv.get('app/config')) as KvItem;
  t.match(item, { Key: 'app/config', Value: 'value', Flags: 0, LockIndex: 0 });
  t.equal(((await consul.kv.get('app/flags')) as KvItem).Flags, 42);
  t.equal(((await consul.kv.get('app/dir/a:1 b')) as KvItem).Value, 'spaced');
  t.equal(((await consul.kv.get('app/empty')) as KvItem).Value, null, 'an empty body is stored as null');
  t.equal(await consul.kv.get('app/missing'), undefined, 'a 404 is "no value"');
  const tree = (await consul.kv.get({ key: 'app/', recurse: true })) as KvItem[];
  t.same(tree.map((entry) => entry.Key), ['app/config', 'app/dir/a:1 b', 'app/empty', 'app/flags']);
  t.same(await consul.kv.keys('app/'), ['app/config', 'app/dir/a:1 b', 'app/empty', 'app/flags']);
  t.same(await consul.kv.keys({ key: 'app/', separator: '/' }), ['app/config', 'app/dir/', 'app/empty', 'app/flags']);
  const raw = (await consul.kv.get({ key: 'app/config', raw: true })) as unknown as Buffer;
  t.equal(Buffer.from(raw).toString(), 'value');
  t.equal(await consul.kv.del('app/config'), true);
  t.equal(await consul.kv.get('app/config'), undefined);
  t.equal(await consul.kv.del({ key: 'app/', recurse: true }), true);
  t.same(await consul.kv.keys(''), []);
});

t.test('node-consul: sessions create/info/renew/destroy; acquire and release', async (t) => {
  const f = await setup(t);
  const consul = await client(t, f);
  const { ID: id } = (await consul.session.create({ name: 'node', ttl: '10s', behavior: 'delete', lockdelay: '1s' })) as { ID: string };
  const { ID: other } = (await consul.session.create()) as { ID: string };
  const info = (await consul.session.info(id)) as unknown as Record<string, unknown>;
  t.match(info, { ID: id, Name: 'node', TTL: '10s', Behavior: 'delete', LockDelay: 1_000_000_000, NodeChecks: ['serfHealth'] });
  const renewed = (await consul.session.renew(id)) as unknown as Record<string, unknown>[];
  t.equal(renewed.length, 1);
  t.equal(renewed[0]?.['ID'], id);
  t.equal(await consul.kv.set({ key: 'lock', value: 'mine', acquire: id }), true);
  // node-consul turns a `false` body into undefined: anything but `true` is a refusal to it.
  t.not(await consul.kv.set({ key: 'lock', value: 'theirs', acquire: other }), true);
  t.equal(((await consul.kv.get('lock')) as KvItem).Session, id);
  t.not(await consul.kv.set({ key: 'lock', value: 'mine', release: other }), true);
  t.equal(await consul.kv.set({ key: 'lock', value: 'mine', release: id }), true);
  t.equal(await consul.kv.set({ key: 'lock', value: 'theirs', acquire: other }), true);
  t.equal(await consul.session.destroy(id), undefined, 'node-consul answers destroy with nothing');
  t.equal(await consul.session.info(id), undefined);
  const list = (await consul.session.list()) as { ID: string }[];
  t.same(list.map((session) => session.ID), [other]);
  await t.rejects(consul.session.renew(id), { message: /Session id '.*' not found/ }, 'a 404 on renew');
  await t.rejects(consul.kv.set({ key: 'x', value: 'v', acquire: 'no-such-session' }), { message: /invalid session/ });
});

t.test('node-consul: watch emits the initial state, then each change; never sees index 0', async (t) => {
  const f = await setup(t);
  const consul = await client(t, f);
  const watch = consul.watch({ method: consul.kv.get, options: { key: 'watched', wait: '10s' } as never });
  const errors: Error[] = [];
  watch.on('error', (error: Error) => errors.push(error));
  t.teardown(() => watch.end());
  const [initial] = await once(watch, 'change');
  t.equal(initial, undefined, 'the missing key');
  await waitForWaiters(f.agent, 1);
  const nextChange = once(watch, 'change');
  await consul.kv.set('watched', 'one');
  const [first] = (await nextChange) as [KvItem];
  t.equal(first.Value, 'one');
  await waitForWaiters(f.agent, 1);
  const afterDelete = once(watch, 'change');
  await consul.kv.del('watched');
  const [deleted] = await afterDelete;
  t.equal(deleted, undefined, 'a delete is a change to "missing" (the 404 carries a larger index)');
  const tree = consul.watch({ method: consul.kv.get, options: { key: 'dir/', recurse: true, wait: '10s' } as never });
  t.teardown(() => tree.end());
  await once(tree, 'change');
  await waitForWaiters(f.agent, 2);
  const treeChange = once(tree, 'change');
  await consul.kv.set('dir/a', 'x');
  const [entries] = (await treeChange) as [KvItem[]];
  t.same(entries.map((entry) => entry.Key), ['dir/a']);
  t.same(errors, [], 'no watch errors (e.g. "Consul returned zero index value")');
});

t.test('node-consul: catalog, health and agent membership calls', async (t) => {
  const f = await setup(t);
  const consul = await client(t, f);
  t.same(await consul.catalog.datacenters(), ['dc1']);
  await consul.catalog.register({ node: 'web-1', address: '10.0.0.5', nodemeta: { rack: 'r1' }, check: { checkid: 'mem', name: 'Memory', status: 'warning' } } as never);
  const nodes = (await consul.catalog.node.list()) as { Node: string; Meta: Record<string, string> }[];
  t.same(nodes.map((node) => node.Node), ['local-node', 'web-1']);
  t.same(nodes[1]?.Meta, { rack: 'r1' });
  t.match(await consul.catalog.node.services('web-1'), { Node: { Node: 'web-1', Address: '10.0.0.5' }, Services: {} });
  const checks = (await consul.health.node('web-1')) as { CheckID: string; Status: string }[];
  t.same(checks.map((check) => [check.CheckID, check.Status]), [['mem', 'warning']]);
  const local = (await consul.health.node('local-node')) as { CheckID: string }[];
  t.equal(local[0]?.CheckID, 'serfHealth', 'node-consul expects serfHealth first');
  t.same(((await consul.health.state('warning')) as { Node: string }[]).map((check) => check.Node), ['web-1']);
  t.same(await consul.health.checks('web'), []);
  t.same(await consul.health.service({ service: 'web', passing: true } as never), []);
  const members = (await consul.agent.members()) as { Name: string; Tags: Record<string, string> }[];
  t.same(members.map((member) => member.Name), ['local-node', 'web-1']);
  t.equal(members[0]?.Tags['role'], 'consul');
  await consul.agent.join('10.0.0.2:8301');
  await consul.catalog.deregister({ node: 'web-1', checkid: 'mem' } as never);
  t.same(await consul.health.node('web-1'), []);
  await consul.agent.forceLeave('web-1');
  t.notOk(await consul.catalog.node.services('web-1'), 'an unknown node: `200 null`, which node-consul hands back as no value');
});
