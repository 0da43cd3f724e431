import t from 'tap';
import { connect } from 'node:net';
import { encodeFrame } from '../../src/transport/frame.js';
import { FaultCluster } from '../faults/fault-cluster.js';
import { delay, httpCall } from '../faults/http-ops.js';
import { reportSuiteTotals } from '../faults/suite-summary.js';

/**
 * BUG (found by test/fuzz/live.test.ts; the lead fixes src/): one frame on the server port from
 * anybody kills a server. A hello naming any server id, then a Raft Heartbeat "from" that id
 * (not in the configuration) with term Number.MAX_SAFE_INTEGER: the server adopts the term (the
 * validator accepts any safe integer, and the core steps to a higher term from any sender), its
 * next election computes term + 1 = 2^53, and persisting it fails
 * ("raft storage failed: stopping err=hard state term must be a safe integer >= 0") — the process
 * exits with "fatal storage error: the server stops". With the term already on disk, every
 * restart campaigns into the same overflow. RELIABILITY P8: a bad RPC frame closes only its own
 * connection. A fix: ignore (or refuse) Raft messages from servers outside the configuration, and
 * refuse terms so high that the term space would run out.
 *
 * Steps: 1 server (bootstrap-expect 1); connect to its server port; send
 * hello{serverId: 00000000-0000-4000-8000-000000000001, role: server} and
 * raft{Heartbeat from that id to the server's id, term 9007199254740991}; wait 5 s.
 * Expected: the server runs and leads. Seen: it exits within a second or two.
 */
reportSuiteTotals(t, 'bug-forged-term');
t.setTimeout(300_000);
const todo = false; // fixed: kept as a regression test

t.test('a forged Raft message with term 2^53-1 from a stranger does not stop the server', { todo, timeout: 200_000 }, async (t) => {
  const fc = await FaultCluster.create({ servers: 1 });
  t.teardown(() => fc.destroy());
  fc.startAll();
  await fc.settle(60_000);
  const stranger = '00000000-0000-4000-8000-000000000001';
  const frames = Buffer.concat([
    encodeFrame({ kind: 'hello', protocolVersion: 1, datacenter: 'dc1', clusterId: null, serverId: stranger, role: 'server' }),
    encodeFrame({ kind: 'raft', message: { type: 'Heartbeat', from: stranger, to: fc.nodeIds.get('s1') as string, term: Number.MAX_SAFE_INTEGER, commit: 0, readContext: 0 } as never }),
  ]);
  await new Promise<void>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: fc.cluster.agent('s1').serverPort }, () => socket.write(frames));
    socket.on('error', () => undefined);
    setTimeout(() => {
      socket.destroy();
      resolve();
    }, 1000);
  });
  await delay(5000);
  t.ok(fc.running('s1'), `the server still runs${fc.running('s1') ? '' : `: ${fc.cluster.agent('s1').output.slice(-400)}`}`);
  const leader = await httpCall(fc.dispatcher, `${fc.url('s1')}/v1/status/leader`, 'GET', null, 5000);
  t.ok(leader.kind === 'reply' && leader.status === 200 && leader.body !== '""', '/v1/status/leader names a leader');
});
