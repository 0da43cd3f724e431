import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { NoLeaderError } from '../../src/lib/errors.js';
import { Prng } from '../../src/lib/prng.js';
import type { Message } from '../../src/raft/core/messages.js';
import { RpcError } from '../../src/transport/rpc.js';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import { Inbox, RecordingLogger, appendEntries, heartbeat, installSnapshot, normalize, startServer, waitUntil, withDeadline } from './helpers.js';

/** The RpcError a promise rejects with (fails the test if it resolves or rejects otherwise). */
async function rpcFailure(promise: Promise<unknown>): Promise<RpcError> {
  try {
    await withDeadline(promise, 'the call to fail');
  } catch (error) {
    if (error instanceof RpcError) return error;
    throw error;
  }
  throw new Error('the call succeeded');
}

/** A port with nothing listening on it. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

t.test('two servers exchange Raft messages both ways, in order, with bytes intact', async (t) => {
  const a = await startServer('s1');
  const b = await startServer('s2');
  t.teardown(async () => Promise.all([a.transport.close(), b.transport.close()]));
  const inboxA = new Inbox();
  const inboxB = new Inbox();
  a.transport.onMessage(inboxA.receive);
  b.transport.onMessage(inboxB.receive);
  a.transport.setPeerAddress('s2', b.address);
  b.transport.setPeerAddress('s1', a.address);

  const prng = new Prng(7);
  const toB: Message[] = [heartbeat('s1', 's2', 1), appendEntries('s1', 's2', 10, 50, prng), installSnapshot('s1', 's2', 1024 * 1024)];
  // A pipelined burst in one turn: nothing waits for a response.
  for (let index = 0; index < 500; index++) toB.push(appendEntries('s1', 's2', 100 + index, 1, prng));
  for (const message of toB) a.transport.send(message);
  const toA: Message = { type: 'AppendEntriesResponse', from: 's2', to: 's1', term: 3, success: true, matchIndex: 60, rejectedIndex: 0, conflictIndex: 0, conflictTerm: 0 };
  b.transport.send(toA);

  t.same(normalize(await inboxB.waitForCount(toB.length)), normalize(toB), 'every message arrives, in send order');
  t.same(normalize(await inboxA.waitForCount(1)), normalize([toA]), 'and the other way');
  const snapshot = inboxB.messages[2];
  t.ok(snapshot?.type === 'InstallSnapshot' && snapshot.chunk instanceof Uint8Array && snapshot.chunk.byteLength === 1024 * 1024, 'a 1 MiB chunk arrives as bytes');
  const peer = a.transport.stats().peers['s2'];
  t.equal(peer?.state, 'ready');
  t.equal(peer?.sentCount, toB.length);
  t.equal(peer?.droppedCount, 0);
});

t.test('RPC calls: results, remote errors with code, unknown methods, client agents', async (t) => {
  const server = await startServer('s1');
  const caller = await startServer('s2');
  const client = new TcpTransport({ role: 'client', serverId: null, datacenter: 'dc1' });
  t.teardown(async () => Promise.all([server.transport.close(), caller.transport.close(), client.close()]));
  server.transport.handle('Echo', async (payload, context) => ({ payload, context }));
  server.transport.handle('Leader', async () => {
    throw new NoLeaderError();
  });
  server.transport.handle('Broken', async () => {
    throw new Error('plain failure');
  });

  const payload = { key: 'docker/swarm/nodes/10.0.0.5:2375', value: new Uint8Array([0, 1, 255]), flags: 0, cas: null };
  const echoed = (await caller.transport.call(server.address, 'Echo', payload)) as { payload: unknown; context: { remoteServerId: unknown } };
  t.same(normalize(echoed.payload), normalize(payload), 'payload round-trips, bytes included');
  t.equal(echoed.context.remoteServerId, 's2', 'the handler learns the caller id from the handshake');
  const calls = await Promise.all(Array.from({ length: 100 }, (_, index) => caller.transport.call(server.address, 'Echo', index)));
  t.same(calls.map((result) => (result as { payload: unknown }).payload), Array.from({ length: 100 }, (_, index) => index), 'concurrent calls matched by id');
  t.equal(caller.transport.stats().rpcConnections, 1, 'calls to one address share a connection');

  const noLeader = await rpcFailure(caller.transport.call(server.address, 'Leader', null));
  t.equal(noLeader.message, 'No cluster leader');
  t.equal(noLeader.code, 'ERR_NO_LEADER');
  t.equal(noLeader.remote, true);
  const broken = await rpcFailure(caller.transport.call(server.address, 'Broken', null));
  t.equal(broken.message, 'plain failure');
  t.equal(broken.code, null, 'no code when the remote error had none');
  t.equal((await rpcFailure(caller.transport.call(server.address, 'Nope', null))).code, 'ERR_RPC_NO_HANDLER');

  const fromClient = (await client.call(server.address, 'Echo', 'hi')) as { context: { remoteServerId: unknown } };
  t.equal(fromClient.context.remoteServerId, null, 'a client agent has no server id');
  t.equal((await rpcFailure(client.call('not-an-address', 'Echo', null))).code, 'ERR_RPC_ADDRESS');
  t.equal((await rpcFailure(client.call(`127.0.0.1:${await deadPort()}`, 'Echo', null))).code, 'ERR_RPC_CONNECTION');
});

t.test('a call times out, and a late response is ignored', async (t) => {
  const server = await startServer('s1');
  const caller = await startServer('s2');
  t.teardown(async () => Promise.all([server.transport.close(), caller.transport.close()]));
  let release: (value: unknown) => void = () => undefined;
  server.transport.handle('Slow', () => new Promise((resolve) => (release = resolve)));
  server.transport.handle('Fast', async () => 'fast');

  const timedOut = await rpcFailure(caller.transport.call(server.address, 'Slow', null, { timeoutMs: 50 }));
  t.equal(timedOut.code, 'ERR_RPC_TIMEOUT');
  t.match(timedOut.message, /timed out after 50 ms/);
  release('too late');
  await caller.logger.waitFor((line) => line.message === 'response for no pending call (timed out)', 'the late response');
  t.equal(await caller.transport.call(server.address, 'Fast', null), 'fast', 'the connection is still good');
});

t.test('close() rejects pending calls; a peer closing fails its calls', async (t) => {
  const server = await startServer('s1');
  const caller = await startServer('s2');
  const other = await startServer('s3');
  t.teardown(async () => Promise.all([server.transport.close(), caller.transport.close(), other.transport.close()]));
  server.transport.handle('Never', () => new Promise(() => undefined));
  other.transport.handle('Never', () => new Promise(() => undefined));

  const pending = caller.transport.call(server.address, 'Never', null);
  await waitUntil(() => server.transport.stats().inboundConnections === 1, 'the call reached the server');
  const serverClosing = server.transport.close();
  const lost = await rpcFailure(pending);
  t.equal(lost.code, 'ERR_RPC_CONNECTION', 'the callee went away');
  await serverClosing;

  const pendingAtClose = caller.transport.call(other.address, 'Never', null);
  await waitUntil(() => other.transport.stats().inboundConnections === 1, 'the call reached the other server');
  await caller.transport.close();
  t.equal((await rpcFailure(pendingAtClose)).code, 'ERR_RPC_CLOSED');
  t.equal((await rpcFailure(caller.transport.call(other.address, 'Never', null))).code, 'ERR_RPC_CLOSED', 'calls after close fail at once');
});

t.test('after the listener restarts, the sender reconnects and later messages arrive', async (t) => {
  const a = await startServer('s1');
  const first = await startServer('s2');
  const port = Number(first.address.split(':')[1]);
  a.transport.setPeerAddress('s2', first.address);
  const firstInbox = new Inbox();
  first.transport.onMessage(firstInbox.receive);
  a.transport.send(heartbeat('s1', 's2', 1));
  await firstInbox.waitForCount(1);

  await first.transport.close();
  await waitUntil(() => a.transport.stats().peers['s2']?.state !== 'ready', 'the sender noticed the close');
  a.transport.send(heartbeat('s1', 's2', 2)); // queued while the peer is down

  const second = new TcpTransport({ role: 'server', serverId: 's2', datacenter: 'dc1' });
  t.teardown(async () => Promise.all([a.transport.close(), second.close()]));
  const secondInbox = new Inbox();
  second.onMessage(secondInbox.receive);
  second.handle('Ping', async () => 'pong');
  await second.listen('127.0.0.1', port);
  const [queued] = await secondInbox.waitForCount(1, 'the queued message after reconnecting');
  t.equal(queued?.type === 'Heartbeat' ? queued.commit : null, 2);
  a.transport.send(heartbeat('s1', 's2', 3));
  const messages = await secondInbox.waitForCount(2);
  t.equal(messages[1]?.type === 'Heartbeat' ? messages[1].commit : null, 3, 'and later ones');
  t.equal(await a.transport.call(second.address ?? '', 'Ping', null), 'pong', 'RPC reconnects too');
});

t.test('handshake refusals name the reason on both sides', async (t) => {
  const server = await startServer('s1', { clusterId: 'B' });
  t.teardown(async () => server.transport.close());
  server.transport.handle('Ping', async () => 'pong');
  const cases: [string, ConstructorParameters<typeof TcpTransport>[0], string, string][] = [
    ['another cluster', { role: 'server', serverId: 's9', datacenter: 'dc1', clusterId: 'A' }, 'peer belongs to cluster B, we belong to A', 'peer belongs to cluster A, we belong to B'],
    ['another datacenter', { role: 'client', serverId: null, datacenter: 'dc2' }, 'peer is in datacenter dc1, we are in dc2', 'peer is in datacenter dc2, we are in dc1'],
    ['a newer protocol', { role: 'client', serverId: null, datacenter: 'dc1', protocolVersion: 2 }, 'incompatible protocol version 1 (we speak 2)', 'incompatible protocol version 2 (we speak 1)'],
  ];
  for (const [name, options, dialerReason, acceptorReason] of cases) {
    const dialer = new TcpTransport(options);
    const failure = await rpcFailure(dialer.call(server.address, 'Ping', null));
    t.equal(failure.code, 'ERR_RPC_HANDSHAKE', `${name}: refused`);
    t.ok(failure.message.includes(dialerReason), `${name}: the dialer reads "${dialerReason}" in "${failure.message}"`);
    const logged = await server.logger.waitFor((line) => line.level === 'warn' && line.fields['reason'] === acceptorReason, acceptorReason);
    t.equal(logged.message, 'refused handshake', `${name}: the acceptor logs why`);
    await dialer.close();
  }
  const older = await startServer('s7', { protocolVersion: 2 });
  const client = new TcpTransport({ role: 'client', serverId: null, datacenter: 'dc1' });
  t.teardown(async () => Promise.all([older.transport.close(), client.close()]));
  t.match((await rpcFailure(client.call(older.address, 'Ping', null))).message, /incompatible protocol version 2 \(we speak 1\)/);
});

t.test('a Raft peer in another cluster is refused, and so is a connection once the id is learned', async (t) => {
  const a = await startServer('s1', { clusterId: 'A' });
  const b = await startServer('s2');
  t.teardown(async () => Promise.all([a.transport.close(), b.transport.close()]));
  b.transport.handle('Ping', async () => 'pong');
  const inbox = new Inbox();
  b.transport.onMessage(inbox.receive);
  a.transport.setPeerAddress('s2', b.address);
  t.equal(await a.transport.call(b.address, 'Ping', null), 'pong', 'b has no cluster id yet: allowed');

  b.transport.setClusterId('B');
  await b.logger.waitFor((line) => line.message === 'closing connection to another cluster', 'b closes the connection from A');
  await a.logger.waitFor((line) => line.message === 'peer refused handshake', 'a reads why');
  await waitUntil(() => a.transport.stats().rpcConnections === 0, 'a dropped the refused connection');
  const refused = await rpcFailure(a.transport.call(b.address, 'Ping', null));
  t.match(refused.message, /peer belongs to cluster B, we belong to A/);
  a.transport.send(heartbeat('s1', 's2', 1));
  await a.logger.waitFor((line) => line.message === 'refused handshake' && line.fields['remoteServerId'] === 's2', 'the Raft link is refused');
  await waitUntil(() => a.transport.stats().peers['s2']?.state === 'backoff', 'the link backs off');
  t.equal(inbox.messages.length, 0, 'nothing crossed');
});

t.test('an unreachable peer never queues more than the bound; the drops are counted', async (t) => {
  const a = await startServer('s1');
  t.teardown(async () => a.transport.close());
  a.transport.setPeerAddress('dead', `127.0.0.1:${await deadPort()}`);
  const sent = 5_000;
  for (let commit = 0; commit < sent; commit++) a.transport.send(heartbeat('s1', 'dead', commit));
  let peer = a.transport.stats().peers['dead'];
  t.equal(peer?.queuedCount, 1024, 'the queue stops at PEER_SEND_QUEUE_COUNT_MAX');
  t.equal(peer?.droppedCount, sent - 1024, 'everything beyond it is dropped and counted');
  await a.logger.waitFor((line) => line.message === 'cannot reach peer; retrying with backoff', 'a failed dial');
  await a.logger.waitFor((line) => line.message === 'cannot reach peer', 'a second failed dial, after backoff');

  for (let chunk = 0; chunk < 40; chunk++) a.transport.send(installSnapshot('s1', 'dead', 1024 * 1024));
  peer = a.transport.stats().peers['dead'];
  t.ok((peer?.queuedBytes ?? Infinity) <= 32 * 1024 * 1024, `queued bytes stay within PEER_SEND_QUEUE_BYTES_MAX (${peer?.queuedBytes})`);
  t.ok((peer?.queuedCount ?? Infinity) <= 1024);
  t.equal((peer?.droppedCount ?? 0) + (peer?.queuedCount ?? 0), sent + 40, 'every message is either queued or counted as dropped');
  t.ok(a.logger.lines.filter((line) => line.message.startsWith('peer send queue full')).length >= 1, 'the full queue was logged');

  a.transport.send(heartbeat('s1', 'nobody', 1));
  t.equal(a.transport.stats().raftUnroutableCount, 1, 'a peer without an address is counted, not queued');
});

t.test('a full queue keeps the newest messages; they flow once the peer is reachable', async (t) => {
  const a = await startServer('s1');
  const late = await startServer('s2');
  t.teardown(async () => Promise.all([a.transport.close(), late.transport.close()]));
  const inbox = new Inbox();
  late.transport.onMessage(inbox.receive);
  a.transport.setPeerAddress('s2', `127.0.0.1:${await deadPort()}`);
  for (let commit = 0; commit < 2_000; commit++) a.transport.send(heartbeat('s1', 's2', commit));
  a.transport.setPeerAddress('s2', late.address); // the peer moved: same queue, new address
  const received = await inbox.waitForCount(1024);
  const commits = received.map((message) => (message.type === 'Heartbeat' ? message.commit : -1));
  t.same(commits, Array.from({ length: 1024 }, (_, index) => 2_000 - 1024 + index), 'the newest 1024, in order');
  t.equal(a.transport.stats().peers['s2']?.droppedCount, 2_000 - 1024);
});

t.test('a server remembers the cluster id a peer gave in the hello of its Raft messages, after the peer is gone', async (t) => {
  // A founder that got its state from another founder's bootstrap learns the id this way even if
  // that founder is wiped before anyone answers a hello (test/cluster/membership.test.ts flaked).
  const founder = await startServer('s1', { clusterId: 'C1' });
  const member = await startServer('s2');
  t.teardown(async () => member.transport.close());
  const inbox = new Inbox();
  member.transport.onMessage(inbox.receive);
  founder.transport.setPeerAddress('s2', member.address);
  t.equal(member.transport.clusterIdReportedBy('s1'), null, 'nothing reported before any message');
  founder.transport.send(heartbeat('s1', 's2', 1));
  await inbox.waitForCount(1);
  t.equal(member.transport.clusterIdReportedBy('s1'), 'C1', 'the sender\'s cluster id is remembered');
  await founder.transport.close();
  t.equal(member.transport.clusterIdReportedBy('s1'), 'C1', 'and kept after the sender is gone');
  t.equal(member.transport.clusterIdReportedBy('s3'), null, 'nothing for a server that never sent');
});

t.test('when a server that sent us Raft messages goes away, its id is reported once its connection closes', async (t) => {
  const leader = await startServer('s1');
  const follower = await startServer('s2');
  t.teardown(async () => follower.transport.close());
  const inbox = new Inbox();
  const lost: string[] = [];
  follower.transport.onMessage(inbox.receive);
  follower.transport.onPeerConnectionLost((id) => lost.push(id));
  leader.transport.setPeerAddress('s2', follower.address);
  leader.transport.send(heartbeat('s1', 's2', 1));
  await inbox.waitForCount(1);
  t.same(lost, [], 'nothing reported while the connection is up');
  await leader.transport.close();
  await waitUntil(() => lost.length > 0, 'the loss to be reported');
  t.same([...new Set(lost)], ['s1'], 'the sender is named');
});
