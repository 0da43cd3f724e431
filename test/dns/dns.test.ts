/**
 * consul-api.md §14: the DNS server with real UDP and TCP packets (encoded and decoded with
 * dns-packet, as a resolver would) against the LocalAgent test double: service A and SRV answers
 * with only passing instances, tags, RFC 2782 names, node lookups, NXDOMAIN with SOA, the
 * 3-answer UDP limit with TC, TCP framing; and a fuzz of malformed packets that must never stop
 * the server.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import packet from 'dns-packet';
import type { DecodedPacket, Packet } from 'dns-packet';
import t from 'tap';
import { DnsServer } from '../../src/dns/dns-server.js';
import { silentLogger } from '../../src/lib/logger.js';
import { Prng } from '../../src/lib/prng.js';
import { LocalAgent } from '../http/local-agent.js';
import { freePorts } from '../cluster/harness.js';

/** dns-packet decodes the response code, but its types leave it out. */
type Decoded = DecodedPacket & { readonly rcode: string };

function decode(message: Buffer): Decoded {
  return packet.decode(message) as Decoded;
}

interface Setup {
  readonly agent: LocalAgent;
  readonly port: number;
}

async function start(t: { teardown(fn: () => unknown): void }): Promise<Setup> {
  const agent = new LocalAgent();
  const [port] = (await freePorts(1)) as [number];
  const server = await DnsServer.start({ agent, logger: silentLogger, host: '127.0.0.1', port });
  t.teardown(async () => {
    await server.close();
    agent.close();
  });
  return { agent, port };
}

/** Registers `name` on node `node` with one catalog check of `status`. */
async function instance(agent: LocalAgent, node: string, address: string, id: string, status: 'passing' | 'critical', tags: string[] = [], port = 80): Promise<void> {
  const result = await agent.write({
    type: 'node-register', nowMs: 0, node, id: '', address, datacenter: 'dc1', taggedAddresses: {}, meta: {},
    service: { serviceId: id, service: 'web', tags, address: '', meta: {}, port, weights: { passing: 7, warning: 1 }, enableTagOverride: false },
    checks: [{ checkId: `check-${id}`, name: 'c', status, notes: '', output: '', serviceId: id, serviceName: '', serviceTags: [], type: '', interval: '', timeout: '' }],
  });
  if (result.result.kind !== 'done') throw new Error(JSON.stringify(result.result));
}

function sendUdp(port: number, message: Buffer, timeoutMs = 2000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(null);
    }, timeoutMs);
    socket.once('message', (reply) => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    });
    socket.send(message, port, '127.0.0.1');
  });
}

function query(name: string, type: string, extra: Partial<Packet> = {}): Buffer {
  return packet.encode({ type: 'query', id: 4242, flags: packet.RECURSION_DESIRED, questions: [{ name, type: type as 'A' }], ...extra });
}

async function udp(port: number, name: string, type: string): Promise<Decoded> {
  const reply = await sendUdp(port, query(name, type));
  if (reply === null) throw new Error(`no answer for ${name} ${type}`);
  return decode(reply);
}

function tcp(port: number, messages: Buffer[]): Promise<Decoded[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buffered = Buffer.alloc(0);
    const replies: Decoded[] = [];
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.byteLength >= 2 && buffered.byteLength >= 2 + buffered.readUInt16BE(0)) {
        const length = buffered.readUInt16BE(0);
        replies.push(decode(buffered.subarray(2, 2 + length)));
        buffered = buffered.subarray(2 + length);
      }
      if (replies.length === messages.length) {
        socket.end();
        resolve(replies);
      }
    });
    socket.on('error', reject);
    socket.write(Buffer.concat(messages.map((message) => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(message.byteLength);
      return Buffer.concat([length, message]);
    })));
  });
}

t.test('service A and SRV: only passing instances, TTL 0, authoritative, the node target and its A record', async (t) => {
  const { agent, port } = await start(t);
  await instance(agent, 'n1', '10.0.0.1', 'web-1', 'passing', ['v1'], 8081);
  await instance(agent, 'n2', '10.0.0.2', 'web-2', 'critical', ['v1'], 8082);
  const a = await udp(port, 'web.service.consul', 'A');
  t.equal(a.id, 4242);
  t.equal(a.rcode, 'NOERROR');
  t.ok(a.flag_aa, 'authoritative');
  t.ok(a.flag_rd, 'RD echoed');
  t.notOk(a.flag_ra, 'no recursion available');
  t.match(a.answers, [{ type: 'A', name: 'web.service.consul', ttl: 0, data: '10.0.0.1' }]);
  t.equal(a.answers?.length, 1, 'the critical instance is left out');
  const srv = await udp(port, 'web.service.consul', 'SRV');
  t.match(srv.answers, [{ type: 'SRV', ttl: 0, data: { priority: 1, weight: 7, port: 8081, target: 'n1.node.dc1.consul' } }]);
  t.match(srv.additionals, [{ type: 'A', name: 'n1.node.dc1.consul', data: '10.0.0.1' }]);
  t.match((await udp(port, '_web._tcp.service.consul', 'SRV')).answers, [{ data: { port: 8081 } }], 'RFC 2782 form');
  t.match((await udp(port, 'v1.web.service.dc1.consul', 'A')).answers, [{ data: '10.0.0.1' }], 'tag and datacenter');
  t.match((await udp(port, 'n2.node.consul', 'A')).answers, [{ type: 'A', data: '10.0.0.2' }], 'node lookups do not look at health');
  const none = await udp(port, 'web.service.consul', 'TXT');
  t.same([none.rcode, none.answers?.length, none.authorities?.[0]?.type], ['NOERROR', 0, 'SOA'], 'no data of that type: NODATA with SOA');
});

t.test('NXDOMAIN with the SOA for unknown names; REFUSED outside consul.', async (t) => {
  const { agent, port } = await start(t);
  await instance(agent, 'n1', '10.0.0.1', 'web-1', 'critical');
  for (const name of ['web.service.consul', 'nope.service.consul', 'v9.web.service.consul', 'nobody.node.consul', 'web.service.dc9.consul', 'x.y.z.consul']) {
    const reply = await udp(port, name, 'A');
    t.equal(reply.rcode, 'NXDOMAIN', name);
    t.match(reply.authorities, [{ type: 'SOA', name: 'consul', ttl: 0, data: { mname: 'ns.consul', rname: 'hostmaster.consul', minimum: 0 } }], name);
  }
  t.equal((await udp(port, 'example.com', 'A')).rcode, 'REFUSED');
});

t.test('UDP answers at most 3 instances, shuffled, with TC; TCP answers them all', async (t) => {
  const { agent, port } = await start(t);
  for (let i = 1; i <= 5; i++) await instance(agent, `n${i}`, `10.0.0.${i}`, `web-${i}`, 'passing');
  const seen = new Set<string>();
  for (let round = 0; round < 10; round++) {
    const reply = await udp(port, 'web.service.consul', 'A');
    t.equal(reply.answers?.length, 3);
    t.ok(reply.flag_tc, 'truncated: more instances than fit');
    for (const answer of reply.answers ?? []) seen.add(String((answer as { data?: unknown }).data));
  }
  t.ok(seen.size > 3, `shuffled: saw ${seen.size} different addresses`);
  const [a, srv] = await tcp(port, [query('web.service.consul', 'A'), query('web.service.consul', 'SRV')]);
  t.equal(a?.answers?.length, 5);
  t.notOk(a?.flag_tc);
  t.equal(srv?.answers?.length, 5);
  t.equal(srv?.additionals?.length, 5);
});

t.test('malformed packets never stop the server (fuzz), and bad headers get FORMERR', async (t) => {
  const { agent, port } = await start(t);
  await instance(agent, 'n1', '10.0.0.1', 'web-1', 'passing');
  const prng = new Prng(20_261_127n);
  const valid = query('web.service.consul', 'SRV');
  let answered = 0;
  for (let i = 0; i < 300; i++) {
    let message: Buffer;
    const mode = i % 3;
    if (mode === 0) {
      message = Buffer.from(Array.from({ length: prng.between(0, 600) }, () => prng.between(0, 255)));
    } else if (mode === 1) {
      message = Buffer.from(valid);
      for (let flips = 0; flips < 1 + prng.between(0, 8); flips++) message[prng.between(0, message.length - 1)] = prng.between(0, 255);
    } else {
      message = Buffer.from(valid.subarray(0, prng.between(0, valid.length)));
    }
    if ((await sendUdp(port, message, 150)) !== null) answered++;
  }
  t.ok(answered > 0, `some malformed packets were answered (${answered})`);
  const truncatedHeader = await sendUdp(port, valid.subarray(0, 14));
  t.ok(truncatedHeader !== null && decode(truncatedHeader).rcode === 'FORMERR', 'a header without its question: FORMERR');
  const twoQuestions = packet.encode({ type: 'query', id: 1, questions: [{ name: 'a.consul', type: 'A' }, { name: 'b.consul', type: 'A' }] });
  t.equal(decode((await sendUdp(port, twoQuestions)) as Buffer).rcode, 'FORMERR');
  const notify = packet.encode({ type: 'query', id: 2, flags: 4 << 11, questions: [{ name: 'web.service.consul', type: 'A' }] });
  t.equal(decode((await sendUdp(port, notify)) as Buffer).rcode, 'NOTIMP');
  // Over TCP: garbage frames close that connection only.
  await new Promise<void>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(Buffer.from([0x00, 0x03, 1, 2, 3])));
    socket.on('close', () => resolve());
    socket.on('error', () => undefined);
  });
  const [after] = await tcp(port, [valid]);
  t.match(after?.answers, [{ type: 'SRV' }], 'still answering over TCP');
  t.match((await udp(port, 'web.service.consul', 'A')).answers, [{ data: '10.0.0.1' }], 'still answering over UDP');
});
