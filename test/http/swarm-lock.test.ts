/**
 * Wire flows of real clients, replayed request by request over a real HTTP listener (undici)
 * with the LocalAgent test double behind it:
 * - consul-api.md §8, docker/libkv as classic Swarm uses it: Get/Exists with ?consistent, Put
 *   with the lock flag, Put with TTL (session `LockDelay:"1ms"`, `Behavior:"delete"`, TTL half the
 *   key TTL, an api Lock on the key, renew) and the key vanishing after its session expires,
 *   AtomicPut/AtomicDelete, List/DeleteTree, WatchTree, and Swarm's join/manage/replication;
 * - consul-api.md §7, consul/api's Lock: exact flags, acquire/monitor/release, a contender
 *   blocking on X-Consul-Index, lock-delay after an invalidation, Destroy; and the Semaphore's
 *   flag above 2^63.
 * Session TTL expiry is the test double's (a timer at 2 × TTL), standing in for the leader's.
 */
import t from 'tap';
import { request } from 'undici';
import { listenHttp } from '../../src/http/serve.js';
import { setup, waitForWaiters } from './helpers.js';
import type { Fixture, Teardown } from './helpers.js';

const LOCK_FLAG = '3304740253564472344';
const SEMAPHORE_FLAG = '16210313421097356768';

interface Answer {
  status: number;
  index: number;
  text: string;
}

interface Entry {
  Key: string;
  Value: string | null;
  Flags: number;
  Session?: string;
  LockIndex: number;
  ModifyIndex: number;
}

type Http = (method: 'GET' | 'PUT' | 'DELETE', path: string, body?: string) => Promise<Answer>;

async function wire(t: Teardown, f: Fixture): Promise<Http> {
  const { port } = await listenHttp(f.app, '127.0.0.1', 0);
  const base = `http://127.0.0.1:${port}`;
  return async (method, path, body) => {
    const response = await request(`${base}${path}`, { method, ...(body === undefined ? {} : { body }) });
    const text = await response.body.text();
    return { status: response.statusCode, index: Number(response.headers['x-consul-index'] ?? 0), text };
  };
}

/** The entries of a 200, or [] for a 404. Flags are checked on the text (JSON.parse rounds them). */
function entries(answer: Answer): Entry[] {
  return answer.status === 404 ? [] : (JSON.parse(answer.text) as Entry[]);
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

/** libkv's Put with TTL: renewSession (create + api Lock + renew), then the flagged PUT. */
async function libkvPutWithTtl(http: Http, key: string, value: string, sessionTtl: string): Promise<string> {
  const current = await http('GET', `/v1/kv/${key}?consistent`);
  const session = entries(current)[0]?.Session;
  if (session !== undefined) {
    await http('PUT', `/v1/session/renew/${session}`);
  } else {
    const created = await http('PUT', '/v1/session/create', JSON.stringify({ LockDelay: '1ms', Behavior: 'delete', TTL: sessionTtl }));
    const id = (JSON.parse(created.text) as { ID: string }).ID;
    const lockRead = await http('GET', `/v1/kv/${key}?wait=15000ms`);
    if (lockRead.status !== 404) throw new Error('fresh key expected');
    const acquired = await http('PUT', `/v1/kv/${key}?acquire=${id}&flags=${LOCK_FLAG}`, value);
    if (acquired.text !== 'true') throw new Error(`acquire failed: ${acquired.text}`);
    const renewed = await http('PUT', `/v1/session/renew/${id}`);
    if (renewed.status !== 200) throw new Error(`renew failed: ${renewed.status}`);
  }
  const put = await http('PUT', `/v1/kv/${key}?flags=${LOCK_FLAG}`, value);
  if (put.text !== 'true') throw new Error('put failed');
  return entries(await http('GET', `/v1/kv/${key}?consistent`))[0]?.Session ?? '';
}

t.test('libkv: Get/Exists, Put with the lock flag, AtomicPut/AtomicDelete, List/DeleteTree', async (t) => {
  const f = await setup(t);
  const http = await wire(t, f);
  t.equal((await http('GET', '/v1/kv/docker/swarm?consistent')).status, 404, 'Exists → ErrKeyNotFound');
  t.equal((await http('PUT', `/v1/kv/docker/swarm?flags=${LOCK_FLAG}`, '')).text, 'true', 'manage: Put(dir, "")');
  const dir = await http('GET', '/v1/kv/docker/swarm?consistent');
  t.match(dir.text, new RegExp(`"Flags":${LOCK_FLAG},"Value":null`), 'Value null, flag exact');
  t.equal((await http('PUT', `/v1/kv/docker/swarm/a?cas=0&flags=${LOCK_FLAG}`, '1')).text, 'true', 'AtomicPut without previous');
  t.equal((await http('PUT', `/v1/kv/docker/swarm/a?cas=0&flags=${LOCK_FLAG}`, '2')).text, 'false', 'ErrKeyExists');
  const last = (await http('GET', '/v1/kv/docker/swarm/a?consistent')).index;
  t.equal((await http('PUT', `/v1/kv/docker/swarm/a?cas=${last}&flags=${LOCK_FLAG}`, '3')).text, 'true', 'AtomicPut with LastIndex');
  t.equal((await http('PUT', `/v1/kv/docker/swarm/a?cas=${last}&flags=${LOCK_FLAG}`, '4')).text, 'false', 'ErrKeyModified');
  await http('PUT', `/v1/kv/docker/swarm/b?flags=${LOCK_FLAG}`, 'b');
  const list = entries(await http('GET', '/v1/kv/docker/swarm?recurse')).filter((e) => e.Key !== 'docker/swarm');
  t.same(list.map((e) => e.Key), ['docker/swarm/a', 'docker/swarm/b'], 'List skips the directory entry itself');
  const previous = (await http('GET', '/v1/kv/docker/swarm/b?consistent')).index;
  t.equal((await http('DELETE', `/v1/kv/docker/swarm/b?cas=${previous - 1}`)).text, 'false', 'AtomicDelete with a stale index');
  t.equal((await http('DELETE', `/v1/kv/docker/swarm/b?cas=${previous}`)).text, 'true', 'AtomicDelete');
  t.equal((await http('DELETE', '/v1/kv/docker/swarm?recurse')).text, 'true', 'DeleteTree');
  t.equal((await http('GET', '/v1/kv/docker/swarm?recurse')).status, 404, 'List after DeleteTree → ErrKeyNotFound');
});

t.test('libkv Put with TTL: the key is held by a delete session and vanishes once it expires', async (t) => {
  const f = await setup(t, { sessionTtlMinMs: 1000 });
  const http = await wire(t, f);
  const key = 'docker/swarm/nodes/10.0.0.5:2375';
  const session = await libkvPutWithTtl(http, key, '10.0.0.5:2375', '1s');
  t.not(session, '', 'the key is held by its TTL session');
  const info = JSON.parse((await http('GET', `/v1/session/info/${session}`)).text) as { TTL: string; Behavior: string; LockDelay: number }[];
  t.match(info[0], { TTL: '1s', Behavior: 'delete', LockDelay: 1_000_000 });
  t.equal(await libkvPutWithTtl(http, key, '10.0.0.5:2375', '1s'), session, 'a second Put renews the same session');
  const held = await http('GET', `/v1/kv/${key}`);
  t.match(held.text, new RegExp(`"Flags":${LOCK_FLAG},`));
  // Watch: block on the key; it must go within the wait (2 × TTL after the last renew here).
  const watched = await http('GET', `/v1/kv/${key}?wait=5s&index=${held.index}`);
  t.equal(watched.status, 404, 'the key vanished when its session expired (test-double TTL expiry)');
  t.ok(watched.index > held.index);
  t.equal((await http('GET', `/v1/session/info/${session}`)).text, '[]');
  t.equal((await http('PUT', `/v1/session/renew/${session}`)).status, 404, 'renewing an expired session: ErrSessionExpired');
});

t.test('Swarm: join heartbeats with TTL "1m30s", manage watches the nodes directory', async (t) => {
  const f = await setup(t);
  const http = await wire(t, f);
  t.equal((await http('PUT', `/v1/kv/swarm/docker/swarm/nodes?flags=${LOCK_FLAG}`, '')).status, 200);
  const tree = await http('GET', '/v1/kv/swarm/docker/swarm/nodes?recurse&wait=15000ms');
  const watch = http('GET', `/v1/kv/swarm/docker/swarm/nodes?recurse&wait=15000ms&index=${tree.index}`);
  await waitForWaiters(f.agent, 1);
  const session = await libkvPutWithTtl(http, 'swarm/docker/swarm/nodes/10.0.0.7:2375', '10.0.0.7:2375', '1m30s');
  const woken = await watch;
  t.ok(woken.index > tree.index, 'WatchTree emits: the index moved');
  t.same(entries(woken).map((e) => e.Key), ['swarm/docker/swarm/nodes', 'swarm/docker/swarm/nodes/10.0.0.7:2375']);
  t.equal((JSON.parse((await http('GET', `/v1/session/info/${session}`)).text) as { TTL: string }[])[0]?.TTL, '1m30s',
    'the TTL is echoed exactly as given');
});

t.test('Swarm --replication: NewLock on the leader key; followers watch it', async (t) => {
  const f = await setup(t);
  const http = await wire(t, f);
  const key = 'swarm/docker/swarm/leader';
  const newLockSession = async () => (JSON.parse((await http('PUT', '/v1/session/create',
    JSON.stringify({ LockDelay: '1ms', Behavior: 'release', TTL: '10s' }))).text) as { ID: string }).ID;
  const primary = await newLockSession();
  t.equal((await http('GET', `/v1/kv/${key}?wait=15000ms`)).status, 404);
  t.equal((await http('PUT', `/v1/kv/${key}?acquire=${primary}&flags=${LOCK_FLAG}`, '10.0.0.1:4000')).text, 'true');
  const replica = await newLockSession();
  const seen = await http('GET', `/v1/kv/${key}?wait=15000ms`);
  t.equal(entries(seen)[0]?.Session, primary, 'held: the replica blocks on X-Consul-Index');
  const follower = http('GET', `/v1/kv/${key}?wait=15000ms&index=${seen.index}`);
  await waitForWaiters(f.agent, 1);
  t.equal((await http('PUT', `/v1/session/destroy/${primary}`)).text, 'true', 'the primary stops renewing');
  const released = await follower;
  t.equal(entries(released)[0]?.Session, undefined, 'Behavior release: the key stays, unlocked');
  t.equal(Buffer.from(entries(released)[0]?.Value ?? '', 'base64').toString(), '10.0.0.1:4000');
  // LockDelay "1ms": the replica gets the lock as soon as the delay has passed.
  const deadline = Date.now() + 1000;
  let acquired = 'false';
  while (acquired !== 'true' && Date.now() < deadline) {
    acquired = (await http('PUT', `/v1/kv/${key}?acquire=${replica}&flags=${LOCK_FLAG}`, '10.0.0.2:4000')).text;
  }
  t.equal(acquired, 'true', 'the replica takes over after the 1 ms lock-delay');
  t.equal(entries(await http('GET', `/v1/kv/${key}`))[0]?.LockIndex, 2);
});

t.test('consul/api Lock: flag round trip, acquire, monitor, contender, release, lock-delay, Destroy', async (t) => {
  const f = await setup(t);
  const http = await wire(t, f);
  const key = 'service/leader';
  const createLockSession = async () => (JSON.parse((await http('PUT', '/v1/session/create',
    JSON.stringify({ Name: 'Consul API Lock', TTL: '15s' }))).text) as { ID: string }).ID;
  const a = await createLockSession();
  t.equal((await http('GET', `/v1/kv/${key}?wait=15000ms`)).status, 404);
  t.equal((await http('PUT', `/v1/kv/${key}?acquire=${a}&flags=${LOCK_FLAG}`, 'a')).text, 'true');
  const held = await http('GET', `/v1/kv/${key}?consistent`);
  t.match(held.text, new RegExp(`"Flags":${LOCK_FLAG},`), 'the flag is exact (a rounded one is ErrLockConflict)');
  const monitor = http('GET', `/v1/kv/${key}?consistent&index=${held.index}`);
  const b = await createLockSession();
  const contenderRead = await http('GET', `/v1/kv/${key}?wait=15000ms`);
  t.equal(entries(contenderRead)[0]?.Session, a, 'B sees A holding the lock');
  const contender = http('GET', `/v1/kv/${key}?wait=15000ms&index=${contenderRead.index}`);
  await waitForWaiters(f.agent, 2);
  t.equal((await http('PUT', `/v1/kv/${key}?release=${a}&flags=${LOCK_FLAG}`, 'a')).text, 'true', 'Unlock');
  t.equal(entries(await monitor)[0]?.Session, undefined, 'A\'s monitor: the lock is no longer ours');
  t.equal(entries(await contender)[0]?.Session, undefined, 'B wakes: free');
  t.equal((await http('PUT', `/v1/kv/${key}?acquire=${b}&flags=${LOCK_FLAG}`, 'b')).text, 'true', 'B acquires, no lock-delay');
  t.equal(entries(await http('GET', `/v1/kv/${key}`))[0]?.LockIndex, 2);
  const bHeld = await http('GET', `/v1/kv/${key}?consistent`);
  const bMonitor = http('GET', `/v1/kv/${key}?consistent&index=${bHeld.index}`);
  await waitForWaiters(f.agent, 1);
  t.equal((await http('PUT', `/v1/session/destroy/${b}`)).text, 'true', 'B\'s session is invalidated');
  t.equal(entries(await bMonitor)[0]?.Session, undefined, 'B\'s monitor sees the loss');
  const c = await createLockSession();
  t.equal((await http('PUT', `/v1/kv/${key}?acquire=${c}&flags=${LOCK_FLAG}`, 'c')).text, 'false',
    'lock-delay (default 15 s) after an invalidation: Go sleeps 5 s and retries');
  const current = await http('GET', `/v1/kv/${key}?consistent`);
  const modifyIndex = entries(current)[0]?.ModifyIndex ?? 0;
  t.equal((await http('DELETE', `/v1/kv/${key}?cas=${modifyIndex}`)).text, 'true', 'Destroy: DELETE ?cas=<ModifyIndex>');
});

t.test('consul/api Semaphore: the flag above 2^63 survives; cas on .lock; delete contenders', async (t) => {
  const f = await setup(t);
  const http = await wire(t, f);
  const id = (JSON.parse((await http('PUT', '/v1/session/create',
    JSON.stringify({ Name: 'Consul API Semaphore', TTL: '15s', Behavior: 'delete' }))).text) as { ID: string }).ID;
  t.equal((await http('PUT', `/v1/kv/sem/${id}?acquire=${id}&flags=${SEMAPHORE_FLAG}`, '')).text, 'true');
  const lock = JSON.stringify({ Limit: 2, Holders: { [id]: true } });
  t.equal((await http('PUT', `/v1/kv/sem/.lock?cas=0&flags=${SEMAPHORE_FLAG}`, lock)).text, 'true');
  const listing = await http('GET', '/v1/kv/sem?recurse&wait=15000ms');
  t.match(listing.text, new RegExp(`"Key":"sem/.lock","Flags":${SEMAPHORE_FLAG},"Value":"${b64(lock)}"`));
  t.match(listing.text, new RegExp(`"Key":"sem/${id}","Flags":${SEMAPHORE_FLAG},"Value":null,"Session":"${id}"`));
  await http('PUT', `/v1/session/destroy/${id}`);
  t.same(entries(await http('GET', '/v1/kv/sem?recurse')).map((e) => e.Key), ['sem/.lock'], 'Behavior delete drops the contender key');
});
