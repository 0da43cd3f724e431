import t from 'tap';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster } from './harness.js';

/**
 * Every founder of a cluster formed with bootstrap_expect records the cluster id. A founder
 * whose own bootstrap came after another founder's messages had given it state used to stop
 * without one (3 clusters in 4 had such a server): its hellos then said "no cluster", so a wiped
 * server rejoining through servers that all lacked the id waited to bootstrap for ever (found by
 * test/faults/bitflip.test.ts), and its transport did not refuse peers of other clusters.
 */

/** The agent of the same build as this test. */
const AGENT_MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));
const TRIALS = 3;

function storedClusterId(dataDir: string): string | null {
  const path = join(dataDir, 'cluster-id');
  return existsSync(path) ? (readFileSync(path, 'utf8').split('\n')[0] ?? null) : null;
}

for (let trial = 1; trial <= TRIALS; trial++) {
  t.test(`trial ${trial}: all three founders record the same cluster id`, async (t) => {
    const cluster = await Cluster.create({ servers: 3, main: AGENT_MAIN });
    t.teardown(() => cluster.destroy());
    cluster.startAll();
    await cluster.waitForLeader(60_000);
    const ids = await cluster.waitFor('every server to record the cluster id', async () => {
      const stored = cluster.servers.map((server) => storedClusterId(server.dataDir));
      return stored.every((id) => id !== null) ? stored : undefined;
    }, 30_000, 200).catch(() => cluster.servers.map((server) => storedClusterId(server.dataDir)));
    t.ok(ids.every((id) => id !== null), `every founder has a cluster-id file (${JSON.stringify(ids)})`);
    t.equal(new Set(ids).size, 1, 'and all hold the same id');
  });
}

/**
 * A founder that came late to the round: s2 and s3 are up and waiting for a third server when s1
 * starts, sees all three pristine at its first attempt and bootstraps at once — before s2's and
 * s3's next attempts, which then meet a server of an existing cluster. They used to ask s1 to
 * let them join and wait for a leader; s1 (election timeout 60 s, as in the zombie positive
 * control) does not campaign, so no leader came for a minute (a red CI run). They now see that
 * founding with the servers they see gives that very cluster id and bootstrap the same
 * configuration, so one of them is elected at its normal election timeout.
 */
t.test('founders that came late to the round bootstrap the same configuration', async (t) => {
  const cluster = await Cluster.create({ servers: 3, main: AGENT_MAIN });
  t.teardown(() => cluster.destroy());
  const slow = join(cluster.root, 's1-slow.json');
  writeFileSync(slow, JSON.stringify({ raft_election_timeout: '60s' }));
  cluster.addArgs('s1', `-config-file=${slow}`);
  cluster.start('s2');
  cluster.start('s3');
  // Both made an attempt that saw two pristine servers of three.
  await cluster.waitFor('s2 and s3 to wait for a third server', async () => (['s2', 's3'].every((name) => cluster.agent(name).output.includes('waiting for servers before bootstrapping')) ? true : undefined), 30_000, 100);
  cluster.start('s1');
  const leader = await cluster.waitForLeader(20_000);
  t.not(leader, 's1', `a late founder leads (${leader}): s1 never campaigns within the test`);
  const late = ['s2', 's3'].filter((name) => cluster.agent(name).output.includes('bootstrapping the same configuration'));
  t.comment(`late founders: ${late.join(', ') || 'none (they bootstrapped in the same round as s1)'}`);
  const peers = JSON.parse((await cluster.http(leader, 'GET', '/v1/status/peers')).text) as string[];
  t.equal(peers.length, 3, `three voters (${peers.join(', ')})`);
  const ids = await cluster.waitFor('every server to record the cluster id', async () => {
    const stored = cluster.servers.map((server) => storedClusterId(server.dataDir));
    return stored.every((id) => id !== null) ? stored : undefined;
  }, 30_000, 200);
  t.equal(new Set(ids).size, 1, `one cluster id (${JSON.stringify(ids)})`);
});

/**
 * Late founding is only for a cluster that has not moved on: a founder wiped after an election
 * that comes back with its node id (given with -node-id) asks to join, as before, rather than
 * bootstrapping the founders' configuration again (which may have changed since).
 */
t.test('a wiped founder with its old node id joins a cluster that has moved on', async (t) => {
  const nodeIds = ['5e2f3a10-0000-4000-8000-000000000001', '5e2f3a10-0000-4000-8000-000000000002', '5e2f3a10-0000-4000-8000-000000000003'];
  const cluster = await Cluster.create({ servers: 3, main: AGENT_MAIN, nodeIds });
  t.teardown(() => cluster.destroy());
  cluster.startAll();
  await cluster.waitForLeader(60_000);
  const victim = (await cluster.leader()) === 's3' ? 's2' : 's3';
  await cluster.kill(victim);
  rmSync(cluster.agent(victim).dataDir, { recursive: true, force: true });
  mkdirSync(cluster.agent(victim).dataDir, { recursive: true });
  cluster.agent(victim).output = '';
  cluster.start(victim);
  await cluster.waitFor(`${victim} to ask to join`, async () => (cluster.agent(victim).output.includes('joining an existing cluster') ? true : undefined), 30_000, 100);
  t.notOk(cluster.agent(victim).output.includes('bootstrapping the same configuration'), 'it did not bootstrap as a founder');
  const leader = await cluster.waitForLeader(30_000);
  const { status, text } = await cluster.http(leader, 'PUT', '/v1/kv/after-wipe', 'v');
  t.equal(`${status} ${text}`, '200 true', 'the cluster takes writes');
  const value = await cluster.waitFor(`${victim} to catch up`, async () => {
    const reply = await cluster.http(victim, 'GET', '/v1/kv/after-wipe?stale&raw');
    return reply.status === 200 ? reply.text : undefined;
  }, 30_000, 200);
  t.equal(value, 'v', `${victim} has the state again`);
});
