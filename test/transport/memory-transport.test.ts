import t from 'tap';
import { NoLeaderError } from '../../src/lib/errors.js';
import { Prng } from '../../src/lib/prng.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import type { MemoryFaults } from '../../src/transport/memory-transport.js';
import { RpcError } from '../../src/transport/rpc.js';
import { Inbox, appendEntries, heartbeat, normalize, waitUntil } from './helpers.js';

/** Two connected servers on a fresh network. */
function pair(seed: number) {
  const network = new MemoryNetwork(seed);
  const a = network.createTransport({ address: 'a:8300', serverId: 'a' });
  const b = network.createTransport({ address: 'b:8300', serverId: 'b' });
  a.setPeerAddress('b', 'b:8300');
  b.setPeerAddress('a', 'a:8300');
  const inboxA = new Inbox();
  const inboxB = new Inbox();
  a.onMessage(inboxA.receive);
  b.onMessage(inboxB.receive);
  return { network, a, b, inboxA, inboxB };
}

/** Sends `count` heartbeats a→b under `faults`; returns the commits b received once all settled. */
async function runWithFaults(seed: number, count: number, faults: Partial<MemoryFaults>): Promise<number[]> {
  const { network, a, inboxB } = pair(seed);
  network.setFaults(faults);
  for (let commit = 0; commit < count; commit++) a.send(heartbeat('a', 'b', commit));
  const settled = (): boolean => {
    const stats = network.stats();
    return stats.deliveredCount + stats.droppedCount === count + stats.duplicatedCount;
  };
  await waitUntil(settled, 'every message delivered or dropped');
  await network.close();
  return inboxB.messages.map((message) => (message.type === 'Heartbeat' ? message.commit : -1));
}

t.test('Raft messages and RPC calls cross the network through the real codec', async (t) => {
  const { network, a, b, inboxA, inboxB } = pair(1);
  t.teardown(async () => network.close());
  const message = appendEntries('a', 'b', 5, 10, new Prng(1));
  a.send(message);
  b.send(heartbeat('b', 'a', 4));
  const [received] = await inboxB.waitForCount(1);
  t.same(normalize(received), normalize(message));
  t.not(received, message, 'the receiver gets its own copy');
  await inboxA.waitForCount(1);

  b.handle('Echo', async (payload, context) => ({ payload, from: context.remoteServerId }));
  b.handle('Leader', async () => {
    throw new NoLeaderError();
  });
  t.same(normalize(await a.call('b:8300', 'Echo', { bytes: new Uint8Array([1, 2]) })), normalize({ payload: { bytes: new Uint8Array([1, 2]) }, from: 'a' }));
  const failure = await a.call('b:8300', 'Leader', null).catch((error: unknown) => error);
  t.ok(failure instanceof RpcError && failure.code === 'ERR_NO_LEADER' && failure.remote, 'remote errors keep their code');
  const missing = await a.call('nowhere:1', 'Echo', null).catch((error: unknown) => error);
  t.ok(missing instanceof RpcError && missing.code === 'ERR_RPC_CONNECTION', 'an unknown address fails like a refused connection');
});

t.test('drops are seeded: the same seed loses the same messages', async (t) => {
  const first = await runWithFaults(42, 300, { dropRate: 0.3 });
  const again = await runWithFaults(42, 300, { dropRate: 0.3 });
  const other = await runWithFaults(43, 300, { dropRate: 0.3 });
  t.same(again, first, 'same seed, same survivors, same order');
  t.not(JSON.stringify(other), JSON.stringify(first), 'another seed, another outcome');
  t.ok(first.length > 150 && first.length < 270, `about 70% survive (${first.length})`);
});

t.test('duplicates and delays: everything arrives, some twice, reordered', async (t) => {
  const received = await runWithFaults(7, 200, { duplicateRate: 0.5, delayMsMin: 0, delayMsMax: 20 });
  t.ok(received.length > 200, `duplicates delivered (${received.length})`);
  t.same([...new Set(received)].sort((x, y) => x - y), Array.from({ length: 200 }, (_, index) => index), 'no message lost');
  t.not(JSON.stringify(received), JSON.stringify([...received].sort((x, y) => x - y)), 'delays reorder');
});

t.test('partitions cut Raft traffic and fail calls until healed; cuts can be one-way', async (t) => {
  const { network, a, b, inboxA, inboxB } = pair(3);
  t.teardown(async () => network.close());
  b.handle('Ping', async () => 'pong');
  a.handle('Ping', async () => 'pong');
  network.partition(['a:8300'], ['b:8300']);
  a.send(heartbeat('a', 'b', 1));
  const cut = await a.call('b:8300', 'Ping', null).catch((error: unknown) => error);
  t.ok(cut instanceof RpcError && cut.code === 'ERR_RPC_CONNECTION', 'a call across the partition fails');
  t.equal(network.stats().droppedCount, 1);

  network.heal();
  network.cut('a:8300', 'b:8300');
  a.send(heartbeat('a', 'b', 2));
  b.send(heartbeat('b', 'a', 3));
  await inboxA.waitForCount(1, 'b→a still flows');
  t.equal(inboxB.messages.length, 0, 'a→b is cut');
  const oneWay = await b.call('a:8300', 'Ping', null).catch((error: unknown) => error);
  t.ok(oneWay instanceof RpcError && oneWay.code === 'ERR_RPC_CONNECTION', 'a response cannot cross a one-way cut back');

  network.heal();
  a.send(heartbeat('a', 'b', 4));
  const [healed] = await inboxB.waitForCount(1);
  t.equal(healed?.type === 'Heartbeat' ? healed.commit : null, 4);
  t.equal(await a.call('b:8300', 'Ping', null), 'pong');
  network.isolate('b:8300');
  const isolated = await a.call('b:8300', 'Ping', null).catch((error: unknown) => error);
  t.ok(isolated instanceof RpcError && isolated.code === 'ERR_RPC_CONNECTION', 'an isolated server is unreachable');
});

t.test('timeouts and close', async (t) => {
  const { network, a, b } = pair(4);
  b.handle('Never', () => new Promise(() => undefined));
  const timedOut = await a.call('b:8300', 'Never', null, { timeoutMs: 20 }).catch((error: unknown) => error);
  t.ok(timedOut instanceof RpcError && timedOut.code === 'ERR_RPC_TIMEOUT');
  const pending = a.call('b:8300', 'Never', null).catch((error: unknown) => error);
  await a.close();
  const closed = await pending;
  t.ok(closed instanceof RpcError && closed.code === 'ERR_RPC_CLOSED');
  await network.close();
});
