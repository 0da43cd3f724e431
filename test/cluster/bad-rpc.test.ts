import t from 'tap';
import { statePackr } from '../../src/state/wire.js';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import { Cluster } from './harness.js';

/**
 * Well-framed RPC calls with malformed bodies (RELIABILITY.md P8): a forwarded write whose
 * command does not decode, or a forwarded query with wrong field types, is a 400-style error to
 * the caller. Before these checks, such a command reached the state machine's asserting decoder
 * on the leader and stopped it.
 */
t.test('malformed forwarded commands and queries are refused; the leader keeps serving', async (t) => {
  const cluster = await Cluster.create({ servers: 1 });
  const agent = cluster.agents[0];
  if (agent !== undefined) Object.assign(agent, { args: agent.args.map((arg) => (arg === '-bootstrap-expect=1' ? '-bootstrap' : arg)) });
  cluster.startAll();
  const transport = new TcpTransport({ role: 'client', serverId: null, datacenter: 'dc1' });
  t.teardown(async () => {
    await transport.close();
    await cluster.destroy();
  });
  const leader = await cluster.waitForLeader(30_000);
  const address = `127.0.0.1:${cluster.agent(leader).serverPort}`;
  const query = (q: unknown) => ({ packed: statePackr.pack({ query: q, consistency: 'default', minIndex: 0, waitMs: 10, hop: 1 }) });
  const cases: [string, string, unknown][] = [
    ['a command with missing fields', 'Raft.Apply', { command: statePackr.pack({ type: 'kv-set', key: 5 }), hop: 1 }],
    ['bytes that are not msgpack', 'Raft.Apply', { command: new Uint8Array([1, 2, 3]), hop: 1 }],
    ['an unknown command type', 'Raft.Apply', { command: statePackr.pack({ type: 'drop-everything', nowMs: 0 }), hop: 1 }],
    ['a query with a numeric key', 'Raft.Query', query({ kind: 'kv-get', key: 7 })],
    ['an unknown query kind', 'Raft.Query', query({ kind: 'everything' })],
    ['a read-only txn with a bad op', 'Raft.Query', query({ kind: 'txn-read', ops: [{ verb: 'get', key: 3 }] })],
  ];
  for (const [what, method, payload] of cases) {
    const error = await transport.call(address, method, payload, { timeoutMs: 5000 }).then(() => null, (e: unknown) => e as { code?: string });
    t.equal(error?.code, 'ERR_BAD_REQUEST', `${what}: refused as a bad request`);
  }
  t.equal((await cluster.http(leader, 'PUT', '/v1/kv/still-alive', 'yes')).text, 'true', 'the leader still commits');
});
