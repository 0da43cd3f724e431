import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Cluster, MAIN } from './harness.js';

/**
 * Operator tools against a real cluster: leadership transfer, and snapshot save/restore (the
 * restore goes through the log, so every server ends in the same state).
 */
function conclave(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !/^(CONSUL_|_TAPJS_|TAP|NODE_OPTIONS$)/.test(key)) env[key] = value;
    const child = spawn(process.execPath, [MAIN, ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

const cluster = await Cluster.create({ servers: 3, clients: 1 });
cluster.startAll();
t.teardown(() => cluster.destroy());
await cluster.waitForLeader(60_000);
const addr = (name: string): string => `-http-addr=http://127.0.0.1:${cluster.agent(name).httpPort}`;

t.test('operator raft transfer-leader hands leadership to the named server', async (t) => {
  const leader = await cluster.waitForLeader(60_000);
  const target = cluster.servers.find((s) => s.name !== leader)?.name as string;
  const config = JSON.parse((await cluster.http('c1', 'GET', '/v1/operator/raft/configuration')).text) as { Servers: { ID: string; Address: string }[] };
  const targetId = config.Servers.find((s) => s.Address === `127.0.0.1:${cluster.agent(target).serverPort}`)?.ID as string;
  const moved = await conclave(['operator', 'raft', 'transfer-leader', addr('c1'), `-id=${targetId}`]);
  t.equal(moved.code, 0, moved.stderr);
  t.equal(moved.stdout.trim(), 'Success');
  t.equal(await cluster.leader(), target, 'the named server leads');
  const http = await cluster.http(target, 'PUT', '/v1/operator/raft/transfer-leader');
  t.equal(http.status, 200, http.text);
  t.same(JSON.parse(http.text), { Success: true });
  t.not(await cluster.waitForLeader(60_000), target, 'without an id it goes to another voter');
  const bad = await cluster.http('s1', 'PUT', '/v1/operator/raft/transfer-leader?id=no-such-server');
  t.equal(bad.status, 400);
});

t.test('snapshot save, then restore: every server returns to the saved state', async (t) => {
  for (let k = 0; k < 50; k++) await cluster.http('c1', 'PUT', `/v1/kv/snap/${k}`, `v${k}`);
  const session = (JSON.parse((await cluster.http('c1', 'PUT', '/v1/session/create', JSON.stringify({ Name: 'kept', TTL: '60s' }))).text) as { ID: string }).ID;
  const file = join(cluster.root, 'backup.snap');
  const saved = await conclave(['snapshot', 'save', addr('c1'), file]);
  t.equal(saved.code, 0, saved.stderr);
  t.match(saved.stdout, /^Saved and verified snapshot to index \d+/);
  // Change things after the snapshot: they must be undone by the restore.
  await cluster.http('c1', 'PUT', '/v1/kv/snap/after', 'later');
  await cluster.http('c1', 'DELETE', '/v1/kv/snap/7');
  await cluster.http('c1', 'PUT', `/v1/session/destroy/${session}`);
  const restored = await conclave(['snapshot', 'restore', addr('s2'), file]);
  t.equal(restored.code, 0, restored.stderr);
  t.equal(restored.stdout.trim(), 'Restored snapshot');
  const leader = await cluster.waitForLeader(60_000);
  const keys = JSON.parse((await cluster.http(leader, 'GET', '/v1/kv/snap/?keys&consistent')).text) as string[];
  t.equal(keys.length, 50, 'the 50 saved keys and nothing else');
  t.ok(keys.includes('snap/7') && !keys.includes('snap/after'));
  t.equal(JSON.parse((await cluster.http(leader, 'GET', `/v1/session/info/${session}`)).text).length, 1, 'the destroyed session is back');
  // Same state on every server at the same index.
  const digests = await cluster.waitFor('identical state on all servers', async () => {
    const all = await Promise.all(cluster.servers.map(async (s) => JSON.parse((await cluster.http(s.name, 'GET', '/v1/debug/loghash')).text) as { Index: number; Hash: string }));
    return all.every((d) => d.Index === all[0]?.Index && d.Hash === all[0]?.Hash) ? all : undefined;
  }, 30_000);
  t.equal(new Set(digests.map((d) => d.Hash)).size, 1);
  const garbage = await cluster.http('s1', 'PUT', '/v1/snapshot', 'not a snapshot');
  t.equal(garbage.status, 400, 'a corrupt archive is refused before anything is proposed');
  t.match(garbage.text, /gzip/);
});
