import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import t from 'tap';
import { Packr } from 'msgpackr';
import type { Envelope } from '../../src/transport/envelope.js';
import { FrameDecoder, encodeFrame } from '../../src/transport/frame.js';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import { Inbox, heartbeat, startServer, withDeadline } from './helpers.js';

const plain = new Packr({ useRecords: false });

/** A raw TCP connection that records what it receives and resolves `closed` when it closes. */
async function rawConnect(address: string): Promise<{ socket: Socket; closed: Promise<void>; received: Buffer[]; localAddress: string }> {
  const [host, port] = address.split(':');
  const socket = createConnection({ host: host ?? '', port: Number(port) });
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => undefined); // resets are expected here
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return { socket, closed, received, localAddress: `${socket.localAddress ?? ''}:${socket.localPort ?? 0}` };
}

function hello(serverId: string): Buffer {
  return encodeFrame({ kind: 'hello', protocolVersion: 1, datacenter: 'dc1', clusterId: null, serverId, role: 'server' });
}

/** A frame whose body is any bytes: what a broken or hostile peer can send. */
function rawFrame(body: Uint8Array): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

/** Each case: bytes to send (and whether to half-close after), and the log code expected. */
const cases: { name: string; bytes: Buffer; end?: boolean; code: string }[] = [
  { name: 'garbage before any hello', bytes: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), code: 'ERR_FRAME_TOO_LARGE' },
  { name: 'undecodable MessagePack', bytes: Buffer.concat([hello('x1'), rawFrame(Buffer.from([0xd9, 0xff, 0x41]))]), code: 'ERR_FRAME_GARBAGE' },
  { name: 'a map that is no envelope', bytes: Buffer.concat([hello('x2'), rawFrame(plain.pack({ hello: 'world' }))]), code: 'ERR_FRAME_INVALID' },
  { name: 'a 4 GiB length prefix', bytes: Buffer.concat([hello('x3'), Buffer.from([0xff, 0xff, 0xff, 0xff])]), code: 'ERR_FRAME_TOO_LARGE' },
  { name: 'a large frame before the handshake', bytes: Buffer.from([0x00, 0x10, 0x00, 0x00]), code: 'ERR_FRAME_TOO_LARGE' },
  { name: 'a truncated frame', bytes: Buffer.concat([hello('x4'), hello('x4').subarray(0, 10)]), end: true, code: 'ERR_FRAME_TRUNCATED' },
  {
    name: 'an invalid Raft message',
    bytes: Buffer.concat([hello('x5'), rawFrame(plain.pack({ kind: 'raft', message: { ...heartbeat('x5', 's1', 1), term: -1 } }))]),
    code: 'ERR_FRAME_INVALID',
  },
  {
    name: 'entries with a gap',
    bytes: Buffer.concat([
      hello('x6'),
      rawFrame(plain.pack({ kind: 'raft', message: { type: 'AppendEntries', from: 'x6', to: 's1', term: 2, prevLogIndex: 1, prevLogTerm: 1, commit: 0, entries: [{ index: 3, term: 2, type: 'normal', data: new Uint8Array(1) }] } })),
    ]),
    code: 'ERR_FRAME_INVALID',
  },
  { name: 'a Raft message in another server\'s name', bytes: Buffer.concat([hello('x7'), encodeFrame({ kind: 'raft', message: heartbeat('s2', 's1', 1) })]), code: 'ERR_PROTOCOL' },
  { name: 'a request before the hello', bytes: encodeFrame({ kind: 'request', id: 1, method: 'Ping', payload: null }), code: 'ERR_PROTOCOL' },
  { name: 'a second hello', bytes: Buffer.concat([hello('x8'), hello('x8')]), code: 'ERR_PROTOCOL' },
  { name: 'a response sent to a server', bytes: Buffer.concat([hello('x9'), encodeFrame({ kind: 'response', id: 1, payload: null })]), code: 'ERR_PROTOCOL' },
];

t.test('a bad connection is closed alone; the server keeps serving a well-behaved peer', async (t) => {
  const server = await startServer('s1');
  const good = await startServer('s2');
  t.teardown(async () => Promise.all([server.transport.close(), good.transport.close()]));
  const inbox = new Inbox();
  server.transport.onMessage(inbox.receive);
  server.transport.handle('Ping', async (payload) => payload);
  good.transport.setPeerAddress('s1', server.address);
  good.transport.send(heartbeat('s2', 's1', 0));
  t.equal(await good.transport.call(server.address, 'Ping', 0), 0, 'the good peer is connected');
  await inbox.waitForCount(1);

  for (const [index, badCase] of cases.entries()) {
    const raw = await rawConnect(server.address);
    raw.socket.write(badCase.bytes);
    if (badCase.end === true) raw.socket.end();
    await withDeadline(raw.closed, `${badCase.name}: the server closes the connection`);
    const line = await server.logger.waitFor(
      (logged) => logged.level === 'warn' && logged.fields['remoteAddress'] === raw.localAddress,
      `${badCase.name}: a warning naming ${raw.localAddress}`,
    );
    t.equal(line.fields['code'], badCase.code, `${badCase.name}: closed with ${badCase.code}, logged with the remote address`);

    // The same connections as before still work: no reconnect, nothing lost.
    good.transport.send(heartbeat('s2', 's1', index + 1));
    t.equal(await good.transport.call(server.address, 'Ping', index + 1), index + 1, `${badCase.name}: RPC still served`);
    await inbox.waitForCount(index + 2, `${badCase.name}: Raft still delivered`);
  }
  t.equal(server.transport.stats().badFrameCloseCount, cases.length, 'every bad connection was counted');
  t.equal(server.transport.stats().inboundConnections, 2, 'only the good peer\'s two connections remain');
  t.equal(good.transport.stats().peers['s1']?.state, 'ready', 'the good Raft link never dropped');
  t.equal(good.transport.stats().peers['s1']?.sentCount, cases.length + 1);
});

t.test('a silent connection is closed at the handshake timeout', async (t) => {
  const server = await startServer('s1', { handshakeTimeoutMs: 100 });
  t.teardown(async () => server.transport.close());
  const raw = await rawConnect(server.address);
  await withDeadline(raw.closed, 'the server closes a connection that never says hello');
  const line = await server.logger.waitFor((logged) => logged.message === 'handshake timed out', 'the timeout log');
  t.equal(line.fields['remoteAddress'], raw.localAddress);
});

t.test('over the connection limit, a dialer is refused with the reason', async (t) => {
  const server = await startServer('s1', { inboundConnectionsMax: 2 });
  t.teardown(async () => server.transport.close());
  server.transport.handle('Ping', async () => 'pong');
  const first = await rawConnect(server.address);
  const second = await rawConnect(server.address);
  const client = new TcpTransport({ role: 'client', serverId: null, datacenter: 'dc1' });
  t.teardown(async () => client.close());
  const error = await client.call(server.address, 'Ping', null).then(
    () => null,
    (failure: unknown) => failure as Error,
  );
  t.match(error?.message, /refused the handshake: too many connections \(max 2\)/);
  t.equal(server.transport.stats().refusedConnectionCount, 1);

  first.socket.destroy();
  await first.closed;
  await withDeadline(
    (async () => {
      while (server.transport.stats().inboundConnections > 1) await new Promise((resolve) => setTimeout(resolve, 5));
    })(),
    'the server to see the close',
  );
  t.equal(await client.call(server.address, 'Ping', null), 'pong', 'a slot freed is a slot usable');
  second.socket.destroy();
});

t.test('the acceptor answers a hello with its own, then frames flow', async (t) => {
  const server = await startServer('s1');
  t.teardown(async () => server.transport.close());
  server.transport.handle('Ping', async (payload) => payload);
  const raw = await rawConnect(server.address);
  raw.socket.write(Buffer.concat([hello('x1'), encodeFrame({ kind: 'request', id: 7, method: 'Ping', payload: 'hi' })]));
  const decoder = new FrameDecoder();
  const frames: Envelope[] = [];
  await withDeadline(
    (async () => {
      while (frames.length < 2) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        for (const chunk of raw.received.splice(0)) decoder.push(chunk);
        for (let frame = decoder.next(); frame !== null; frame = decoder.next()) frames.push(frame);
      }
    })(),
    'hello and response',
  );
  t.equal(frames[0]?.kind, 'hello');
  t.same(frames[1], { kind: 'response', id: 7, payload: 'hi' });
  raw.socket.destroy();
});
