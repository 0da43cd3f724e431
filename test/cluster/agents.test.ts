import t from 'tap';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { Cluster, MAIN } from './harness.js';

/**
 * The agents issue end to end: 3 servers and 2 client agents formed from the config files in
 * config/, membership and the catalog, a client that dies (critical, sessions invalidated), a
 * fourth server joining, a graceful leave, and every CLI command run against the cluster.
 */
const SERVER_CONFIG = resolve('config/loopback-server.json');
const CLIENT_CONFIG = resolve('config/loopback-client.json');

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function conclave(args: readonly string[], stdin?: string): Promise<CliRun> {
  return new Promise((done, fail) => {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !/^(CONSUL_|_TAPJS_|TAP|NODE_OPTIONS$)/.test(key)) env[key] = value;
    const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

const cluster = await Cluster.create({ servers: 3, clients: 2, configFiles: { server: SERVER_CONFIG, client: CLIENT_CONFIG } });
cluster.startAll();
t.teardown(() => cluster.destroy());
const addr = (name: string): string => `-http-addr=http://127.0.0.1:${cluster.agent(name).httpPort}`;
await cluster.waitForLeader(60_000);

t.test('members and the catalog show all five agents', async (t) => {
  const nodes = await cluster.waitFor('five nodes in the catalog', async () => {
    const { text } = await cluster.http('c2', 'GET', '/v1/catalog/nodes');
    const list = JSON.parse(text) as { Node: string; Address: string }[];
    return list.length === 5 ? list : undefined;
  });
  t.same(nodes.map((n) => n.Node), ['c1', 'c2', 's1', 's2', 's3'], 'sorted by name');
  const members = JSON.parse((await cluster.http('c1', 'GET', '/v1/agent/members')).text) as { Name: string; Status: number; Tags: { role: string } }[];
  t.same(members.map((m) => [m.Name, m.Status, m.Tags.role]).sort(), [['c1', 1, 'node'], ['c2', 1, 'node'], ['s1', 1, 'consul'], ['s2', 1, 'consul'], ['s3', 1, 'consul']]);
  const cli = await conclave(['members', addr('c2')]);
  t.equal(cli.code, 0, cli.stderr);
  t.match(cli.stdout, /^Node\s+Address\s+Status\s+Type/m, 'Consul\'s members table');
  for (const name of ['s1', 's2', 's3']) t.match(cli.stdout, new RegExp(`^${name}\\s+\\S+\\s+alive\\s+server`, 'm'));
  for (const name of ['c1', 'c2']) t.match(cli.stdout, new RegExp(`^${name}\\s+\\S+\\s+alive\\s+client`, 'm'));
  const catalog = await conclave(['catalog', 'nodes', addr('s1')]);
  t.equal(catalog.code, 0, catalog.stderr);
  for (const name of ['c1', 'c2', 's1', 's2', 's3']) t.match(catalog.stdout, new RegExp(`^${name}\\s`, 'm'));
  const health = JSON.parse((await cluster.http('s2', 'GET', '/v1/health/node/c1')).text) as { CheckID: string; Status: string }[];
  t.match(health, [{ CheckID: 'serfHealth', Status: 'passing' }]);
});

t.test('every CLI command against the cluster', async (t) => {
  const put = await conclave(['kv', 'put', addr('c1'), 'cli/greeting', 'hello']);
  t.equal(put.code, 0, put.stderr);
  t.match(put.stdout, 'Success! Data written to: cli/greeting');
  const get = await conclave(['kv', 'get', addr('s2'), 'cli/greeting']);
  t.equal(get.stdout, 'hello\n');
  const detailed = await conclave(['kv', 'get', '-detailed', addr('s3'), 'cli/greeting']);
  t.match(detailed.stdout, /^ModifyIndex\s+\d+$/m);
  const missing = await conclave(['kv', 'get', addr('c2'), 'cli/missing']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, 'Error! No key exists at: cli/missing');
  await conclave(['kv', 'put', addr('c1'), 'cli/dir/a', '1']);
  const recurse = await conclave(['kv', 'get', '-recurse', addr('c1'), 'cli/']);
  t.match(recurse.stdout, 'cli/dir/a:1');
  const keys = await conclave(['kv', 'get', '-keys', '-separator=/', addr('c1'), 'cli/']);
  t.same(keys.stdout.trim().split('\n'), ['cli/dir/', 'cli/greeting']);
  const exported = await conclave(['kv', 'export', addr('s1'), 'cli/']);
  t.equal(exported.code, 0, exported.stderr);
  const items = JSON.parse(exported.stdout) as { key: string; value: string }[];
  t.same(items.map((item) => item.key), ['cli/dir/a', 'cli/greeting']);
  const del = await conclave(['kv', 'delete', '-recurse', addr('c2'), 'cli/']);
  t.equal(del.code, 0, del.stderr);
  t.equal((await cluster.http('s1', 'GET', '/v1/kv/cli/greeting?consistent')).status, 404, 'deleted cluster-wide');
  const imported = await conclave(['kv', 'import', addr('s3'), '-'], exported.stdout);
  t.equal(imported.code, 0, imported.stderr);
  t.equal((await conclave(['kv', 'get', addr('c1'), 'cli/dir/a'])).stdout, '1\n', 'import restored the export');
  const dcs = await conclave(['catalog', 'datacenters', addr('c1')]);
  t.equal(dcs.stdout, 'dc1\n');
  const services = await conclave(['catalog', 'services', addr('c1')]);
  t.equal(services.code, 0, services.stderr);
  const peers = await conclave(['operator', 'raft', 'list-peers', addr('c2')]);
  t.equal(peers.code, 0, peers.stderr);
  const rows = peers.stdout.trim().split('\n').slice(1);
  t.equal(rows.filter((row) => /\s(leader|follower)\s+true\s/.test(row)).length, 3, 'three voters');
  t.equal(rows.filter((row) => /\sleader\s/.test(row)).length, 1, 'one leader');
  const info = await conclave(['info', addr('s1')]);
  t.equal(info.code, 0, info.stderr);
  t.match(info.stdout, /server = true/);
  const sessionId = (JSON.parse((await cluster.http('c1', 'PUT', '/v1/session/create', JSON.stringify({ Name: 'cli-session' }))).text) as { ID: string }).ID;
  const sessions = await conclave(['session', 'list', addr('c2')]);
  t.match(sessions.stdout, sessionId);
  const version = await conclave(['version']);
  t.match(version.stdout, /Conclave v/);
  const unknown = await conclave(['frobnicate']);
  t.equal(unknown.code, 1);
});

t.test('kill -9 a client: it turns critical within the timeout and its sessions are invalidated', async (t) => {
  const created = await cluster.http('c1', 'PUT', '/v1/session/create', JSON.stringify({ Behavior: 'delete', LockDelay: '1ms' }));
  const session = (JSON.parse(created.text) as { ID: string; }).ID;
  t.equal((await cluster.http('c1', 'PUT', `/v1/kv/owned/by-c1?acquire=${session}`, 'x')).text, 'true');
  const killedAt = Date.now();
  await cluster.kill('c1', 'SIGKILL');
  const critical = await cluster.waitFor('c1 to turn critical', async () => {
    const checks = JSON.parse((await cluster.http('s1', 'GET', '/v1/health/node/c1')).text) as { CheckID: string; Status: string; Output: string }[];
    return checks.find((c) => c.CheckID === 'serfHealth' && c.Status === 'critical');
  }, 30_000);
  const elapsed = Date.now() - killedAt;
  t.ok(elapsed >= 2500, `not before node_timeout (3s): ${elapsed} ms`);
  t.ok(elapsed < 10_000, `promptly after it: ${elapsed} ms`);
  t.equal(critical.Output, 'Agent not live or unreachable');
  t.equal((await cluster.http('s2', 'GET', '/v1/kv/owned/by-c1?consistent')).status, 404, 'the key it held with Behavior delete is gone');
  t.equal((await cluster.http('s2', 'GET', `/v1/session/info/${session}`)).text, '[]', 'the session was invalidated');
  const members = JSON.parse((await cluster.http('s3', 'GET', '/v1/agent/members')).text) as { Name: string; Status: number }[];
  t.equal(members.find((m) => m.Name === 'c1')?.Status, 4, 'members shows it failed');
  const forced = await conclave(['force-leave', addr('s1'), 'c1']);
  t.equal(forced.code, 0, forced.stderr);
  t.equal((await cluster.http('s1', 'GET', '/v1/catalog/node/c1?consistent')).text, 'null', 'force-leave removed it from the catalog');
});

t.test('a fourth server joins and a write commits with it; leave shrinks the configuration', async (t) => {
  await cluster.addServer('s4');
  cluster.start('s4');
  const voters = await cluster.waitFor('s4 to become a voter', async () => {
    const config = JSON.parse((await cluster.http('s1', 'GET', '/v1/operator/raft/configuration')).text) as { Servers: { Node: string; Voter: boolean }[] };
    const s4 = config.Servers.find((s) => s.Node === 's4');
    return s4?.Voter === true ? config.Servers.length : undefined;
  }, 60_000);
  t.equal(voters, 4, 'four voters');
  t.equal((await cluster.http('s4', 'PUT', '/v1/kv/with-four', 'yes')).text, 'true', 'a write through the new server commits');
  t.equal((await cluster.http('s4', 'GET', '/v1/kv/with-four')).status, 200, 'a default read through it right after sees the write');
  // A ?stale read serves this server's state as it is: the leader answers a write once it applied
  // it, possibly before s4 learns the commit index (as in Consul's stale mode). It follows soon.
  const seen = await cluster.waitFor('s4 to apply the write', async () => {
    const reply = await cluster.http('s4', 'GET', '/v1/kv/with-four?stale');
    return reply.status === 200 ? reply : undefined;
  }, 10_000);
  t.equal(seen.status, 200, 'and the new server has it');
  // With s4 a voter, losing one of the original three still leaves a majority of four.
  const victim = cluster.servers.find((s) => s.name !== 's4' && s.process !== null)?.name as string;
  await cluster.kill(victim, 'SIGKILL');
  await cluster.waitForLeader(60_000);
  t.equal((await cluster.http('s4', 'PUT', '/v1/kv/with-three-of-four', 'yes')).text, 'true', 'commits with three of four');
  cluster.start(victim);
  await cluster.waitForLeader(60_000);
  const left = await conclave(['leave', addr('s4')]);
  t.equal(left.code, 0, left.stderr);
  await cluster.waitFor('s4 to exit', async () => (cluster.agent('s4').process === null ? true : undefined), 20_000);
  const after = await cluster.waitFor('the configuration to shrink', async () => {
    const config = JSON.parse((await cluster.http('s1', 'GET', '/v1/operator/raft/configuration')).text) as { Servers: { Node: string }[] };
    return config.Servers.length === 3 ? config.Servers : undefined;
  }, 30_000);
  t.notOk(after.some((s) => s.Node === 's4'), 's4 is out of the Raft configuration');
  t.equal((await cluster.http('s1', 'GET', '/v1/catalog/node/s4?consistent')).text, 'null', 'and out of the catalog (it left)');
  t.equal((await cluster.http('s2', 'PUT', '/v1/kv/after-leave', 'yes')).text, 'true', 'the three remaining servers commit');
});
