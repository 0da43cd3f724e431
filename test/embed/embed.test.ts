import t from 'tap';
import { request } from 'undici';
import { startAgent } from '../../src/index.js';

/** The embedding API used the way another project would use it. */
t.test('startAgent() runs a single-node dev agent in-process on a free port', async (t) => {
  const agent = await startAgent({ httpPort: 0, serverPort: 0, logger: 'silent' });
  t.teardown(() => agent.close());
  t.match(agent.httpAddress, /^http:\/\/127\.0\.0\.1:\d+$/);
  const put = await request(`${agent.httpAddress}/v1/kv/embedded/hello`, { method: 'PUT', body: 'world' });
  t.equal(await put.body.text(), 'true');
  const get = await request(`${agent.httpAddress}/v1/kv/embedded/hello?raw`);
  t.equal(await get.body.text(), 'world');
  const self = (await (await request(`${agent.httpAddress}/v1/agent/self`)).body.json()) as { Config: { Server: boolean } };
  t.equal(self.Config.Server, true);
  t.equal(agent.config.dev, true);
});

t.test('startAgent() also takes Consul flags, and a persisted data dir survives a restart', async (t) => {
  const dir = t.testdir();
  const args = ['-server', '-bootstrap', `-data-dir=${dir}`, '-bind=127.0.0.1', '-http-port=0', '-server-port=0', '-node=embedded'];
  const first = await startAgent({ args, logger: 'silent' });
  t.equal(await (await request(`${first.httpAddress}/v1/kv/kept`, { method: 'PUT', body: 'yes' })).body.text(), 'true');
  await first.close();
  const second = await startAgent({ args, logger: 'silent' });
  t.teardown(() => second.close());
  t.equal(second.config.nodeName, 'embedded');
  t.equal(await (await request(`${second.httpAddress}/v1/kv/kept?raw`)).body.text(), 'yes', 'the value came back from disk');
});

t.test('startDevCluster() runs a 3-server cluster in-process; everything shuts down cleanly', async (t) => {
  const { startDevCluster } = await import('../../src/index.js');
  const resources = (): Record<string, number> => {
    const counts: Record<string, number> = {};
    for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
    return counts;
  };
  const before = resources();
  const cluster = await startDevCluster({ servers: 3, clients: 1, logger: 'silent' });
  const leader = await cluster.leader();
  t.ok(leader.isLeader());
  t.match(leader.rpcAddress, /^127\.0\.0\.1:\d+$/);
  t.equal(cluster.servers.filter((server) => server.isLeader()).length, 1, 'exactly one leader');
  const follower = cluster.servers.find((server) => !server.isLeader());
  t.equal(await (await request(`${follower?.httpAddress}/v1/kv/in-process`, { method: 'PUT', body: 'yes' })).body.text(), 'true');
  const client = cluster.clients[0];
  t.equal(client?.rpcAddress, null, 'a client agent has no RPC address');
  t.equal(await (await request(`${client?.httpAddress}/v1/kv/in-process?raw&consistent`)).body.text(), 'yes', 'read through the client agent');
  const leaderAddress = JSON.parse(await (await request(`${client?.httpAddress}/v1/status/leader`)).body.text()) as string;
  t.equal(leaderAddress, leader.rpcAddress, 'status/leader names the leader\'s RPC address');
  await cluster.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const after = resources();
  for (const kind of ['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'FSReqCallback']) {
    t.ok((after[kind] ?? 0) <= (before[kind] ?? 0), `no leaked ${kind} (${before[kind] ?? 0} before, ${after[kind] ?? 0} after)`);
  }
});
