import t from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Level } from 'level';
import { Cluster } from './harness.js';

/**
 * A real 3-server cluster of child processes on loopback: formation, kill -9 of leaders and of
 * everyone, catch-up through InstallSnapshot, garbage on the server port, corrupt data dirs.
 * Every acknowledged write must survive, in order, on every server.
 */

async function writeLoop(cluster: Cluster, stop: { done: boolean }, acked: number[], prefix: string): Promise<void> {
  let n = 0;
  while (!stop.done) {
    const live = cluster.servers.filter((s) => s.process !== null);
    if (live.length === 0) {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    const target = live[n % live.length] as { name: string };
    n++;
    try {
      const { status, text } = await cluster.http(target.name, 'PUT', `/v1/kv/${prefix}/${String(n).padStart(6, '0')}`, String(n), 3000);
      if (status === 200 && text === 'true') acked.push(n);
    } catch {
      // connection refused or timed out: the outcome is unknown, so it is not counted as acked
    }
  }
}

/** Reads `prefix` from every server once it has caught up with the leader; returns key → ModifyIndex per server. */
async function readEverywhere(cluster: Cluster, prefix: string): Promise<Map<string, Map<string, number>>> {
  const leader = await cluster.waitForLeader(60_000);
  const head = await cluster.http(leader, 'GET', `/v1/kv/${prefix}/?recurse&consistent`);
  const target = Number(head.headers['x-consul-index']);
  const result = new Map<string, Map<string, number>>();
  for (const server of cluster.servers) {
    const entries = await cluster.waitFor(`${server.name} to catch up to index ${target}`, async () => {
      const { status, headers, text } = await cluster.http(server.name, 'GET', `/v1/kv/${prefix}/?recurse&stale`);
      if (status !== 200 || Number(headers['x-consul-index']) < target) return undefined;
      return JSON.parse(text) as { Key: string; ModifyIndex: number }[];
    }, 60_000);
    result.set(server.name, new Map(entries.map((e) => [e.Key, e.ModifyIndex])));
  }
  return result;
}

function checkAcked(t: { same: (a: unknown, b: unknown, m: string) => unknown; ok: (a: unknown, m: string) => unknown }, views: Map<string, Map<string, number>>, acked: readonly number[], prefix: string): void {
  for (const [server, view] of views) {
    const missing = acked.filter((n) => !view.has(`${prefix}/${String(n).padStart(6, '0')}`));
    t.same(missing, [], `${server}: every acknowledged write is present (${acked.length} acked)`);
    // One writer, one write at a time: acknowledgement order must be commit order.
    let previous = 0;
    let inOrder = true;
    for (const n of acked) {
      const index = view.get(`${prefix}/${String(n).padStart(6, '0')}`) ?? 0;
      if (index <= previous) inOrder = false;
      previous = index;
    }
    t.ok(inOrder, `${server}: acknowledged writes are in order`);
  }
}

t.test('3 servers form a cluster; kill -9 the leader; a new leader commits; the old one catches up', async (t) => {
  const cluster = await Cluster.create({ servers: 3 });
  t.teardown(() => cluster.destroy());
  cluster.startAll();
  const leader = await cluster.waitForLeader(60_000);
  for (const server of cluster.servers) {
    const peers = JSON.parse((await cluster.http(server.name, 'GET', '/v1/status/peers')).text) as string[];
    t.equal(peers.length, 3, `${server.name} sees three peers`);
  }
  t.equal((await cluster.http(leader, 'PUT', '/v1/kv/before', 'x')).text, 'true');
  await cluster.kill(leader, 'SIGKILL');
  const next = await cluster.waitForLeader(60_000);
  t.not(next, leader, 'another server leads');
  t.equal((await cluster.http(next, 'PUT', '/v1/kv/after', 'y')).text, 'true', 'the new leader commits writes');
  cluster.start(leader);
  const caughtUp = await cluster.waitFor('the old leader to catch up', async () => {
    const { status, text } = await cluster.http(leader, 'GET', '/v1/kv/after?stale');
    return status === 200 ? (JSON.parse(text) as { Value: string }[])[0]?.Value : undefined;
  });
  t.equal(Buffer.from(caughtUp, 'base64').toString(), 'y', 'the restarted server has the write made while it was down');
});

t.test('kill -9 one server at a time, then all three at once: every acknowledged write survives in order', async (t) => {
  const cluster = await Cluster.create({ servers: 3 });
  t.teardown(() => cluster.destroy());
  cluster.startAll();
  await cluster.waitForLeader(60_000);
  const acked: number[] = [];
  const stop = { done: false };
  const writer = writeLoop(cluster, stop, acked, 'w');
  for (let round = 0; round < 3; round++) {
    const victim = cluster.servers[(round * 2) % 3] as { name: string };
    await new Promise((r) => setTimeout(r, 700));
    await cluster.kill(victim.name, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1200));
    cluster.start(victim.name);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const beforeAll = acked.length;
  await Promise.all(cluster.servers.map((s) => cluster.kill(s.name, 'SIGKILL')));
  for (const server of cluster.servers) cluster.start(server.name);
  await cluster.waitForLeader(60_000);
  await new Promise((r) => setTimeout(r, 1000));
  stop.done = true;
  await writer;
  t.ok(beforeAll > 20, `writes were acknowledged before the total crash (${beforeAll})`);
  t.ok(acked.length > beforeAll, 'and after the restart');
  checkAcked(t, await readEverywhere(cluster, 'w'), acked, 'w');
});

t.test('a follower down for thousands of entries catches up through InstallSnapshot', async (t) => {
  const cluster = await Cluster.create({ servers: 3 });
  t.teardown(() => cluster.destroy());
  for (const agent of cluster.agents) {
    const file = join(agent.dataDir, 'raft-tuning.json');
    writeFileSync(file, JSON.stringify({ raft_snapshot_threshold: 200, raft_trailing_logs: 20 }));
    (agent.args as string[]).push(`-config-file=${file}`);
  }
  cluster.startAll();
  const leader = await cluster.waitForLeader(60_000);
  const follower = cluster.servers.find((s) => s.name !== leader)?.name as string;
  await cluster.kill(follower, 'SIGKILL');
  // Small batches: the leader pipelines at most 256 AppendEntries to the dead follower (and its
  // transport queues them), so few entries per message make the follower fall behind the
  // leader's compacted log for real.
  const writes = 2500;
  for (let start = 0; start < writes; start += 4) {
    await Promise.all(Array.from({ length: 4 }, (_, k) => cluster.http(leader, 'PUT', `/v1/kv/bulk/${start + k}`, `v${start + k}`)));
  }
  cluster.start(follower);
  const view = await readEverywhere(cluster, 'bulk');
  t.equal(view.get(follower)?.size, writes, `the follower has all ${writes} keys`);
  t.match(cluster.agent(follower).output, /installing snapshot from leader/, 'it got them through a snapshot');
  const snapshots = readdirSync(join(cluster.agent(follower).dataDir, 'raft', 'snapshots')).filter((name) => name.endsWith('.snap'));
  t.ok(snapshots.length >= 1 && snapshots.length <= 2, `it keeps at most two snapshot files (${snapshots.length})`);
});

t.test('servers that come back on new addresses (same data) re-form the cluster and keep their data', async (t) => {
  const cluster = await Cluster.create({ servers: 3 });
  t.teardown(() => cluster.destroy());
  cluster.startAll();
  const leader = await cluster.waitForLeader(60_000);
  t.equal((await cluster.http(leader, 'PUT', '/v1/kv/moved', 'kept')).text, 'true');
  await cluster.stopAll();
  await cluster.moveServers();
  cluster.startAll();
  const next = await cluster.waitForLeader(60_000);
  const value = await cluster.http(next, 'GET', '/v1/kv/moved?consistent');
  t.equal(value.status, 200, 'the data survived');
  const expected = cluster.servers.map((s) => `127.0.0.1:${s.serverPort}`).sort();
  const peers = await cluster.waitFor('the configuration to carry the new addresses', async () => {
    const list = (JSON.parse((await cluster.http(next, 'GET', '/v1/status/peers')).text) as string[]).sort();
    return JSON.stringify(list) === JSON.stringify(expected) ? list : undefined;
  }, 30_000);
  t.same(peers, expected, 'status/peers shows where the servers are now');
});

t.test('garbage, oversized and truncated frames on the server port do not hurt the server', async (t) => {
  const cluster = await Cluster.create({ servers: 3 });
  t.teardown(() => cluster.destroy());
  cluster.startAll();
  const leader = await cluster.waitForLeader(60_000);
  const target = cluster.agent(leader);
  const payloads: Buffer[] = [
    Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
    Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]), // a 4 GiB length prefix
    Buffer.concat([Buffer.from([0, 0, 0, 20]), Buffer.from('not msgpack at all!!')]),
    Buffer.from([0, 0, 1, 0, 0x81]), // truncated: promises 256 bytes, sends 1
    Buffer.from(Array.from({ length: 4096 }, (_, k) => (k * 131) % 256)),
  ];
  for (const payload of payloads) {
    await new Promise<void>((resolve) => {
      const socket = connect(target.serverPort, '127.0.0.1', () => {
        socket.write(payload);
        setTimeout(() => socket.destroy(), 200);
      });
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
  }
  t.ok(target.process !== null, 'the server process is alive');
  t.equal((await cluster.http(leader, 'PUT', '/v1/kv/after-garbage', 'ok')).text, 'true', 'and the cluster still commits');
  t.match(target.output, /frame|handshake|connection/i, 'the bad connections were logged');
});

t.test('a corrupt log or snapshot makes the server refuse to start with a clear message', async (t) => {
  const cluster = await Cluster.create({ servers: 3 });
  t.teardown(() => cluster.destroy());
  for (const agent of cluster.agents) {
    const file = join(agent.dataDir, 'raft-tuning.json');
    writeFileSync(file, JSON.stringify({ raft_snapshot_threshold: 50, raft_trailing_logs: 5 }));
    (agent.args as string[]).push(`-config-file=${file}`);
  }
  cluster.startAll();
  const leader = await cluster.waitForLeader(60_000);
  for (let k = 0; k < 120; k++) await cluster.http(leader, 'PUT', `/v1/kv/c/${k}`, `v${k}`);
  const [a, b] = cluster.servers.filter((s) => s.name !== leader) as unknown as [{ name: string; dataDir: string }, { name: string; dataDir: string }];
  await cluster.kill(a.name, 'SIGKILL');
  await cluster.kill(b.name, 'SIGKILL');

  // a: flip a byte in the newest snapshot file.
  const snapshotDir = join(a.dataDir, 'raft', 'snapshots');
  const snapshotIndex = (name: string): number => Number(/-(\d+)\.snap$/.exec(name)?.[1] ?? -1);
  const newest = readdirSync(snapshotDir).filter((name) => name.endsWith('.snap')).sort((x, y) => snapshotIndex(x) - snapshotIndex(y)).pop() as string;
  const path = join(snapshotDir, newest);
  const data = readFileSync(path);
  data[data.length - 3] = (data[data.length - 3] as number) ^ 0x55;
  writeFileSync(path, data);
  const exitA = await runToExit(cluster, a.name);
  t.not(exitA.code, 0, 'a exits non-zero');
  t.match(exitA.output, /refusing to start/i);
  t.match(exitA.output, /checksum|corrupt/i, 'and says the snapshot is corrupt');
  t.match(exitA.output, new RegExp(newest.replace('.', '\\.')), 'naming the file');

  // b: overwrite a log record with garbage through LevelDB itself.
  const db = new Level<Uint8Array, Uint8Array>(join(b.dataDir, 'raft', 'log'), { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  let entryKey: Uint8Array | null = null;
  for await (const key of db.keys()) {
    if (key[0] === 'e'.charCodeAt(0)) entryKey = key;
  }
  t.ok(entryKey !== null, 'b has log entries on disk');
  if (entryKey !== null) await db.put(entryKey, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  await db.close();
  const exitB = await runToExit(cluster, b.name);
  t.not(exitB.code, 0, 'b exits non-zero');
  t.match(exitB.output, /refusing to start/i);
  t.match(exitB.output, /CRC|corrupt|checksum/i, 'and says the log record is corrupt');
});

async function runToExit(cluster: Cluster, name: string): Promise<{ code: number | null; output: string }> {
  const agent = cluster.agent(name);
  agent.output = '';
  cluster.start(name);
  const child = agent.process;
  if (child === null) return { code: null, output: agent.output };
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(null);
    }, 20_000);
    child.once('exit', (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  return { code, output: agent.output };
}
