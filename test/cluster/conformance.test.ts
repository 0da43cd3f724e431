import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Consul from 'consul';
import { Cluster } from './harness.js';

/**
 * The HTTP API against a real cluster (3 servers + 1 client agent, child processes on loopback)
 * with real clients: the npm `consul` package, Debian's python3-consul, and the wire flows of
 * docker/libkv (Swarm) and consul/api's Lock. Session TTLs are expired by the leader here, not
 * by a test double.
 */
const LOCK_FLAG = '3304740253564472344';
const PYTHON_SCRIPT = fileURLToPath(new URL('../../../test/http/python-client.py', import.meta.url));

interface Entry {
  Key: string;
  Value: string | null;
  Session?: string;
  LockIndex: number;
  ModifyIndex: number;
}

const cluster = await Cluster.create({ servers: 3, clients: 1 });
for (const agent of cluster.agents) {
  const file = join(agent.dataDir, 'test.json');
  writeFileSync(file, JSON.stringify({ session_ttl_min: '1s' }));
  (agent.args as string[]).push(`-config-file=${file}`);
}
cluster.startAll();
t.teardown(() => cluster.destroy());
const leader = await cluster.waitForLeader(60_000);
// Every agent registers itself through its status report; sessions need that registration.
await cluster.waitFor('every agent in the catalog', async () => {
  for (const agent of cluster.agents) {
    const created = await cluster.http(agent.name, 'PUT', '/v1/session/create', JSON.stringify({ Name: 'probe' }));
    if (created.status !== 200) return undefined;
    await cluster.http(agent.name, 'PUT', `/v1/session/destroy/${(JSON.parse(created.text) as { ID: string }).ID}`);
  }
  return true;
}, 30_000);
const followers = cluster.servers.filter((s) => s.name !== leader).map((s) => s.name);
const follower = followers[0] as string;

async function http(name: string, method: 'GET' | 'PUT' | 'DELETE', path: string, body?: string): Promise<{ status: number; index: number; text: string }> {
  const answer = await cluster.http(name, method, path, body, 30_000);
  return { status: answer.status, index: Number(answer.headers['x-consul-index'] ?? 0), text: answer.text };
}

function entries(answer: { status: number; text: string }): Entry[] {
  return answer.status === 404 ? [] : (JSON.parse(answer.text) as Entry[]);
}

t.test('a write through a follower is visible at once to ?consistent reads on every agent', async (t) => {
  t.equal((await http(follower, 'PUT', '/v1/kv/visible', 'now')).text, 'true');
  for (const agent of cluster.agents) {
    const read = await http(agent.name, 'GET', '/v1/kv/visible?consistent');
    t.equal(read.status, 200, `${agent.name} answers`);
    t.equal(Buffer.from(entries(read)[0]?.Value ?? '', 'base64').toString(), 'now', `${agent.name} sees the write`);
  }
  const stale = await cluster.http(follower, 'GET', '/v1/kv/visible?stale');
  t.equal(stale.headers['x-consul-knownleader'], 'true');
  t.ok(Number(stale.headers['x-consul-lastcontact']) >= 0, 'a stale read reports LastContact');
  const viaLeader = await cluster.http(follower, 'GET', '/v1/kv/visible');
  t.equal(viaLeader.headers['x-consul-lastcontact'], '0', 'a default read on a follower is answered by the leader');
});

t.test('Swarm registration (docker/libkv on the wire): the key lives while renewed and vanishes after', async (t) => {
  const client = 'c1';
  const key = 'docker/swarm/nodes/10.0.0.5:2375';
  const tree = await http(follower, 'GET', '/v1/kv/docker/swarm/nodes/?recurse');
  // libkv Put with TTL 2s: a session of TTL 1s (ttl/2), Behavior delete, LockDelay 1ms.
  const created = await http(client, 'PUT', '/v1/session/create', JSON.stringify({ LockDelay: '1ms', Behavior: 'delete', TTL: '1s' }));
  t.equal(created.status, 200);
  const session = (JSON.parse(created.text) as { ID: string }).ID;
  t.equal((await http(client, 'GET', `/v1/kv/${key}?wait=15000ms`)).status, 404);
  t.equal((await http(client, 'PUT', `/v1/kv/${key}?acquire=${session}&flags=${LOCK_FLAG}`, '10.0.0.5:2375')).text, 'true');
  t.equal((await http(client, 'PUT', `/v1/kv/${key}?flags=${LOCK_FLAG}`, '10.0.0.5:2375')).text, 'true', 'a plain PUT keeps the session');
  const watched = await http(follower, 'GET', `/v1/kv/docker/swarm/nodes/?recurse&index=${tree.index}&wait=15000ms`);
  t.same(entries(watched).map((e) => e.Key), [key], 'the watcher sees the node register');
  t.equal(entries(watched)[0]?.Session, session);
  // Renew every 400 ms for 3 s: longer than 2 × TTL, so only renewals keep the key alive.
  const renewUntil = Date.now() + 3000;
  let lastRenewSentAt = 0;
  while (Date.now() < renewUntil) {
    lastRenewSentAt = Date.now();
    t.equal((await http(client, 'PUT', `/v1/session/renew/${session}`)).status, 200);
    await new Promise((r) => setTimeout(r, 400));
  }
  const stillThere = await http(follower, 'GET', '/v1/kv/docker/swarm/nodes/?recurse&consistent');
  t.same(entries(stillThere).map((e) => e.Key), [key], 'renewals keep the registration');
  // The registrant stops renewing: the leader expires the session at 2 × TTL, deleting the key.
  const stoppedAt = Date.now();
  let index = stillThere.index;
  let gone = false;
  while (!gone && Date.now() - stoppedAt < 10_000) {
    const next = await http(follower, 'GET', `/v1/kv/docker/swarm/nodes/?recurse&index=${index}&wait=5s`);
    index = next.index;
    gone = next.status === 404;
  }
  const elapsed = Date.now() - stoppedAt;
  // The TTL runs from the last renewal, which the leader applied after we sent it.
  const sinceRenewal = Date.now() - lastRenewSentAt;
  t.ok(gone, 'the watcher sees the key disappear');
  t.ok(sinceRenewal >= 1500, `not before 2 × TTL after the last renewal (TTL is a lower bound): ${sinceRenewal} ms`);
  t.ok(elapsed < 6000, `and promptly after: ${elapsed} ms`);
  t.equal((await http(client, 'GET', `/v1/session/info/${session}`)).text, '[]', 'the session is gone');
  t.equal((await http(client, 'PUT', `/v1/session/renew/${session}`)).status, 404, 'renew says it expired');
});

t.test('consul/api Lock across agents: never two holders; lock-delay honoured after invalidation', async (t) => {
  const key = 'service/db/leader';
  const session = async (agent: string, lockDelay: string) => (JSON.parse((await http(agent, 'PUT', '/v1/session/create', JSON.stringify({ Name: 'Consul API Lock', TTL: '15s', LockDelay: lockDelay }))).text) as { ID: string }).ID;
  const a = await session(follower, '2s');
  const b = await session('c1', '2s');
  t.equal((await http(follower, 'PUT', `/v1/kv/${key}?acquire=${a}&flags=${LOCK_FLAG}`, 'a')).text, 'true', 'A acquires');
  t.equal((await http('c1', 'PUT', `/v1/kv/${key}?acquire=${b}&flags=${LOCK_FLAG}`, 'b')).text, 'false', 'B cannot while A holds it');
  const held = await http('c1', 'GET', `/v1/kv/${key}?consistent`);
  t.match(held.text, new RegExp(`"Flags":${LOCK_FLAG},`), 'the lock flag round-trips exactly');
  t.equal(entries(held)[0]?.Session, a);
  t.equal(entries(held)[0]?.LockIndex, 1);
  const monitor = http(follower, 'GET', `/v1/kv/${key}?consistent&index=${held.index}`);
  t.equal((await http(leader, 'PUT', `/v1/session/destroy/${a}`)).text, 'true', 'A\'s session is invalidated');
  const invalidatedAt = Date.now();
  t.equal(entries(await monitor)[0]?.Session, undefined, 'A\'s monitor sees the loss');
  // Within lock-delay every acquire fails; afterwards B gets it.
  let acquired = false;
  let refusedEarly = 0;
  while (!acquired && Date.now() - invalidatedAt < 10_000) {
    const attempt = await http('c1', 'PUT', `/v1/kv/${key}?acquire=${b}&flags=${LOCK_FLAG}`, 'b');
    acquired = attempt.text === 'true';
    if (!acquired) {
      refusedEarly++;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  t.ok(acquired, 'B acquires once the lock-delay passed');
  t.ok(refusedEarly > 0, 'B was refused during the lock-delay');
  t.ok(Date.now() - invalidatedAt >= 1900, `not before the 2 s lock-delay (${Date.now() - invalidatedAt} ms)`);
  t.equal(entries(await http(follower, 'GET', `/v1/kv/${key}?consistent`))[0]?.LockIndex, 2, 'LockIndex counts holders');
});

t.test('npm consul client through the client agent and a follower: kv, sessions, locks, watch', async (t) => {
  const consul = new Consul({ host: '127.0.0.1', port: cluster.agent('c1').httpPort });
  const viaFollower = new Consul({ host: '127.0.0.1', port: cluster.agent(follower).httpPort });
  t.equal(await consul.kv.set('npm/a', 'one'), true);
  t.match(await viaFollower.kv.get('npm/a'), { Key: 'npm/a', Value: 'one' });
  t.same(await viaFollower.kv.keys('npm/'), ['npm/a']);
  const { ID: id } = (await consul.session.create({ name: 'npm', ttl: '10s' })) as { ID: string };
  t.equal(await consul.kv.set({ key: 'npm/lock', value: 'x', acquire: id }), true);
  t.not(await viaFollower.kv.set({ key: 'npm/lock', value: 'y', acquire: 'other' }).catch(() => false), true, 'an unknown session cannot acquire');
  const renewed = (await viaFollower.session.renew(id)) as unknown as { ID: string }[];
  t.equal(renewed[0]?.ID, id, 'renew through a follower reaches the leader');
  t.equal(await consul.kv.set({ key: 'npm/lock', value: 'x', release: id }), true);
  const watch = viaFollower.watch({ method: viaFollower.kv.get, options: { key: 'npm/watched', wait: '10s' } as never });
  t.teardown(() => watch.end());
  const [initial] = await once(watch, 'change');
  t.equal(initial, undefined);
  const next = once(watch, 'change');
  await consul.kv.set('npm/watched', 'seen');
  const [changed] = (await next) as [{ Value: string }];
  t.equal(changed.Value, 'seen', 'a watch on a follower wakes for a write through the client agent');
  await consul.session.destroy(id);
  consul.destroy();
  viaFollower.destroy();
});

const python = [process.env['PYTHON'], 'python3', '/usr/bin/python3'].filter((c): c is string => c !== undefined)
  .find((candidate) => spawnSync(candidate, ['-c', 'import consul'], { stdio: 'ignore' }).status === 0);
const pythonSkip = python === undefined ? 'SKIPPED: python3-consul is not installed (apt-get install -y python3-consul) — CI must not skip this' : false;
if (pythonSkip !== false) console.error(`\n*** ${pythonSkip} ***\n`);

t.test('Debian python3-consul against the client agent', { skip: pythonSkip }, async (t) => {
  if (python === undefined) return;
  const leaderAddress = JSON.parse((await http('c1', 'GET', '/v1/status/leader')).text) as string;
  const child = spawn(python, [PYTHON_SCRIPT, String(cluster.agent('c1').httpPort), 'c1', leaderAddress, '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  t.equal(code, 0, output);
  t.match(output, /ALL OK/);
});

t.test('sessions survive a leader failover; their TTL restarts at full length on the new leader', async (t) => {
  const created = await http('c1', 'PUT', '/v1/session/create', JSON.stringify({ TTL: '2s', Behavior: 'delete' }));
  const id = (JSON.parse(created.text) as { ID: string }).ID;
  t.equal((await http('c1', 'PUT', `/v1/kv/failover/held?acquire=${id}`, 'v')).text, 'true');
  const current = (await cluster.leader()) as string;
  await cluster.kill(current, 'SIGKILL');
  const next = await cluster.waitForLeader(30_000);
  t.not(next, current);
  t.equal((await http('c1', 'PUT', `/v1/session/renew/${id}`)).status, 200, 'the session exists on the new leader');
  const held = await http(next, 'GET', '/v1/kv/failover/held?consistent');
  t.equal(entries(held)[0]?.Session, id, 'and still holds its key');
  let gone = false;
  const stoppedAt = Date.now();
  while (!gone && Date.now() - stoppedAt < 15_000) {
    gone = (await http(next, 'GET', '/v1/kv/failover/held?consistent')).status === 404;
    if (!gone) await new Promise((r) => setTimeout(r, 250));
  }
  t.ok(gone, 'without renewals the new leader expires it');
  cluster.start(current);
});
