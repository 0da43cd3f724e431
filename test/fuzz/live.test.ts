import t from 'tap';
import fc from 'fast-check';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { encodeFrame } from '../../src/transport/frame.js';
import { FaultCluster } from '../faults/fault-cluster.js';
import { httpCall } from '../faults/http-ops.js';
import { reportSuiteTotals } from '../faults/suite-summary.js';

/**
 * Bad input against a live server (RELIABILITY.md "Bad input": 2k cases in CI): raw HTTP
 * requests (bad request lines, wrong Content-Length, garbage headers, a slowloris sender) on the
 * HTTP port, and garbage, oversized, truncated and well-formed-but-wrong frames (unknown kinds,
 * forged Raft messages with stale or future terms) on the server port. Oracle: the process
 * lives, `/v1/status/leader` answers, a write still commits, every HTTP reply carries a status,
 * and RSS stays bounded. CONCLAVE_LIVE_FUZZ_RUNS scales the case count.
 */
const RUNS = Number(process.env.CONCLAVE_LIVE_FUZZ_RUNS ?? 1000);
const figures: Record<string, unknown> = { runs: RUNS };
reportSuiteTotals(t, 'fuzz-live', figures);
t.setTimeout(600_000);

function rssMB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Sends raw bytes, collects what comes back until close or `ms`. */
function raw(port: number, bytes: Buffer, ms: number, slowMs = 0): Promise<string> {
  return new Promise((resolveReply) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (): void => {
      socket.destroy();
      resolveReply(reply);
    };
    const timer = setTimeout(done, ms);
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n\r\n')) done(); // a whole status line and headers: enough
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolveReply(reply);
    });
    socket.on('connect', () => {
      if (slowMs === 0) {
        socket.write(bytes);
        return;
      }
      let k = 0;
      const drip = setInterval(() => {
        if (k >= bytes.length || socket.destroyed) return clearInterval(drip);
        socket.write(bytes.subarray(k, k + 1));
        k++;
      }, slowMs);
    });
  });
}

const requestLine = fc.oneof(
  fc.constantFrom('GET /v1/kv/a HTTP/1.1', 'PUT /v1/kv/a?cas=abc HTTP/1.1', 'GET /v1/kv/%zz HTTP/1.1', 'GARBAGE', 'GET / HTTP/9.9', 'PUT /v1/session/create HTTP/1.1', 'GET /v1/kv/a?index=1&wait=1ms HTTP/1.1', `GET /v1/kv/${'x'.repeat(9000)} HTTP/1.1`),
  fc.string({ maxLength: 60 }),
);
const headerLines = fc.array(fc.oneof(
  fc.constantFrom('Host: x', 'Content-Length: 5', 'Content-Length: -1', 'Content-Length: 99999999999', 'Content-Length: abc', 'Transfer-Encoding: chunked', 'Transfer-Encoding: bogus', 'Connection: close', 'Content-Type: application/json'),
  fc.string({ maxLength: 40 }),
), { maxLength: 4 });

t.test('a live server survives bad HTTP and bad frames', { timeout: 500_000 }, async (t) => {
  const fcl = await FaultCluster.create({ servers: 1 });
  t.teardown(() => fcl.destroy());
  fcl.startAll();
  await fcl.settle(60_000);
  const agent = fcl.cluster.agent('s1');
  const pid = agent.process?.pid as number;
  const rssBefore = rssMB(pid);
  const httpStatuses: Record<string, number> = {};
  await fc.assert(fc.asyncProperty(requestLine, headerLines, fc.string({ maxLength: 64 }), async (line, headers, body) => {
    const text = `${line}\r\nHost: conclave\r\n${headers.join('\r\n')}${headers.length > 0 ? '\r\n' : ''}\r\n${body}`;
    const reply = await raw(agent.httpPort, Buffer.from(text, 'latin1'), 2000);
    const status = /^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? (reply.length === 0 ? 'closed' : 'other');
    httpStatuses[status] = (httpStatuses[status] ?? 0) + 1;
    if (status === 'other') throw new Error(`unparseable reply: ${reply.slice(0, 100)}`);
  }), { numRuns: RUNS });
  figures['httpStatuses'] = httpStatuses;
  t.ok(Object.keys(httpStatuses).length > 1, `HTTP replies: ${JSON.stringify(httpStatuses)}`);

  // A slowloris sender is cut off by the request timeout, not served forever; the agent goes on.
  const slow = await raw(agent.httpPort, Buffer.from('GET /v1/kv/a HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'y'.repeat(40)), 3000, 50);
  t.ok(typeof slow === 'string', 'slowloris sender handled');

  const frameCases: Record<string, number> = {};
  const hello = encodeFrame({ kind: 'hello', protocolVersion: 1, datacenter: 'dc1', clusterId: null, serverId: '00000000-0000-4000-8000-000000000001', role: 'server' });
  const forged = (term: number): Buffer => encodeFrame({ kind: 'raft', message: { type: 'Heartbeat', from: '00000000-0000-4000-8000-000000000001', to: fcl.nodeIds.get('s1') as string, term, commit: 0, readContext: 0 } as never });
  await fc.assert(fc.asyncProperty(fc.oneof(
    fc.uint8Array({ maxLength: 512 }).map((b) => ['garbage', Buffer.from(b)] as const),
    fc.integer({ min: 16 * 1024 * 1024 + 1, max: 0xffff_ffff }).map((n) => { const b = Buffer.alloc(8); b.writeUInt32BE(n, 0); return ['oversized', b] as const; }),
    fc.nat({ max: hello.length - 1 }).map((n) => ['truncated-hello', hello.subarray(0, n)] as const),
    fc.uint8Array({ maxLength: 128 }).map((b) => ['hello+garbage', Buffer.concat([hello, Buffer.from(b)])] as const),
    // Number.MAX_SAFE_INTEGER kills the server today: bug-forged-term.test.ts.
    fc.constantFrom(0, 1, 2 ** 40).map((term) => ['forged-raft', Buffer.concat([hello, forged(term)])] as const),
    fc.constant(['unknown-kind', Buffer.concat([hello, encodeFrame({ kind: 'response', id: 1, payload: null })])] as const),
  ), async ([kind, bytes]) => {
    frameCases[kind] = (frameCases[kind] ?? 0) + 1;
    await raw(agent.serverPort, bytes, 20);
  }), { numRuns: RUNS });
  figures['frameCases'] = frameCases;

  t.ok(fcl.running('s1'), 'the server process lives');
  const leader = await httpCall(fcl.dispatcher, `${fcl.url('s1')}/v1/status/leader`, 'GET', null, 5000);
  t.ok(leader.kind === 'reply' && leader.status === 200, `/v1/status/leader answers (${leader.kind === 'reply' ? leader.body : leader.message})`);
  const leaderName = await fcl.settle(60_000);
  t.equal(leaderName, 's1', 'it still leads and commits writes');
  const rssAfter = rssMB(pid);
  figures['rssMB'] = { before: Math.round(rssBefore), after: Math.round(rssAfter) };
  t.ok(rssAfter < rssBefore + 200, `RSS bounded: ${Math.round(rssBefore)} → ${Math.round(rssAfter)} MB`);
  const raft = await fcl.raft('s1', 5000);
  // A stranger (no cluster id in its hello, not in the configuration) cannot move the term.
  t.ok(raft !== null && raft.term < 2 ** 40, `forged future terms from a stranger did not move the term (term ${raft?.term})`);
  const debug = await httpCall(fcl.dispatcher, `${fcl.url('s1')}/v1/debug/raft`, 'GET', null, 5000);
  const dropped = debug.kind === 'reply' ? (JSON.parse(debug.body) as { stats: { strangerTermsDropped: number } }).stats.strangerTermsDropped : 0;
  t.ok(dropped > 0 || (frameCases['forged-raft'] ?? 0) === 0, `the forged messages were dropped as a stranger's (${dropped})`);
});
