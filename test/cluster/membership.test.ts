import t from 'tap';
import { rmSync, mkdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { Cluster, MAIN } from './harness.js';

/**
 * Membership beyond joins and leaves: a server whose data directory was wiped rejoins as a new
 * member (its old identity is replaced), a dead server is removed by an operator command, and
 * a client agent leaves the catalog on SIGTERM (Consul's defaults) while a server does not.
 */
interface RaftServer {
  ID: string;
  Node: string;
  Address: string;
  Voter: boolean;
}

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

async function configuration(via: string): Promise<RaftServer[]> {
  return (JSON.parse((await cluster.http(via, 'GET', '/v1/operator/raft/configuration')).text) as { Servers: RaftServer[] }).Servers;
}

t.test('a server whose data directory was wiped rejoins as a new member', async (t) => {
  const address = `127.0.0.1:${cluster.agent('s3').serverPort}`;
  const before = await configuration('s1');
  const oldId = before.find((s) => s.Address === address)?.ID;
  t.ok(oldId !== undefined, 's3 is in the configuration');
  await cluster.kill('s3', 'SIGKILL');
  rmSync(cluster.agent('s3').dataDir, { recursive: true, force: true });
  mkdirSync(cluster.agent('s3').dataDir, { recursive: true });
  cluster.start('s3');
  const after = await cluster.waitFor('the new s3 to be a voter and the old one gone', async () => {
    const servers = await configuration('s1');
    const ids = servers.map((s) => s.ID);
    const fresh = servers.find((s) => s.Address === address);
    return servers.length === 3 && !ids.includes(oldId as string) && fresh !== undefined && fresh.ID !== oldId && fresh.Voter ? servers : undefined;
  }, 60_000);
  t.equal(after.length, 3, 'three servers again');
  t.notOk(after.some((s) => s.ID === oldId), 'the wiped identity is gone');
  const value = await cluster.waitFor('s3 to have the data', async () => {
    const { status } = await cluster.http('s3', 'GET', '/v1/kv/conclave-test-ready?stale');
    return status === 200 ? true : undefined;
  });
  t.ok(value, 'the new member caught up');
});

t.test('a dead server is removed by an operator command; the rest keep committing', async (t) => {
  const servers = await configuration('s1');
  const victim = servers.find((s) => s.Address === `127.0.0.1:${cluster.agent('s2').serverPort}`);
  t.ok(victim !== undefined, 's2 is in the configuration');
  await cluster.kill('s2', 'SIGKILL');
  await cluster.waitForLeader(60_000);
  const removed = await conclave(['operator', 'raft', 'remove-peer', `-http-addr=http://127.0.0.1:${cluster.agent('s1').httpPort}`, `-id=${victim?.ID ?? ''}`]);
  t.equal(removed.code, 0, removed.stderr);
  t.match(removed.stdout, /Removed peer with id/);
  const left = await configuration('s1');
  t.equal(left.length, 2, 'two servers left in the configuration');
  t.notOk(left.some((s) => s.ID === victim?.ID), 'without the dead one');
  const leader = await cluster.waitForLeader(60_000);
  t.equal((await cluster.http(leader, 'PUT', '/v1/kv/after-removal', 'ok')).text, 'true', 'two of two commit');
});

t.test('SIGTERM: a client agent leaves the catalog', async (t) => {
  await cluster.waitFor('c1 in the catalog', async () => ((await cluster.http('s1', 'GET', '/v1/catalog/node/c1')).text !== 'null' ? true : undefined));
  await cluster.kill('c1', 'SIGTERM');
  const gone = await cluster.waitFor('c1 to leave', async () => ((await cluster.http('s1', 'GET', '/v1/catalog/node/c1?consistent')).text === 'null' ? true : undefined), 20_000);
  t.ok(gone, 'the client deregistered itself on SIGTERM (left, not failed)');
});
