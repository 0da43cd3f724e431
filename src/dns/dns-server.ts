/**
 * The agent's DNS interface (consul-api.md §14) on UDP and TCP, packets encoded and decoded by
 * `dns-packet`. Every query runs through the resolver (dns-resolver.ts) against the agent's read
 * path. Robustness (RELIABILITY.md: bad input never crashes the agent):
 * - a packet that does not decode is answered FORMERR when it has a header, else dropped;
 *   more than one question is FORMERR; an opcode other than QUERY is NOTIMP;
 * - UDP: at most DNS_UDP_INFLIGHT_MAX queries at once (more are dropped, clients retry), answers
 *   cut to the client's size (512 bytes, or its EDNS size up to 4096) with TC set;
 * - TCP: length-prefixed messages (RFC 1035 §4.2.2) of at most 64 KiB, at most
 *   DNS_TCP_CONNECTIONS_MAX connections, DNS_TCP_PENDING_MAX queued messages each (answered in
 *   order), closed after DNS_TCP_IDLE_MS without traffic or on a framing error;
 * - a lookup slower than DNS_QUERY_TIMEOUT_MS, or one that fails (no leader), is SERVFAIL.
 */
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv6 } from 'node:net';
import type { Server, Socket } from 'node:net';
import packet from 'dns-packet';
import type { Answer, DecodedPacket, Packet } from 'dns-packet';
import type { AgentApi } from '../agent/agent-api.js';
import { QUERY_WAIT_MS_DEFAULT } from '../agent/queries.js';
import type { Query, QueryValue } from '../agent/queries.js';
import type { Logger } from '../lib/logger.js';
import { RCODES, resolveQuestion } from './dns-resolver.js';
import type { DnsResult, Rcode } from './dns-resolver.js';
import {
  DNS_QUERY_TIMEOUT_MS, DNS_TCP_ANSWERS_MAX, DNS_TCP_CONNECTIONS_MAX, DNS_TCP_IDLE_MS, DNS_TCP_MESSAGE_BYTES_MAX, DNS_TCP_PENDING_MAX,
  DNS_UDP_ANSWERS_MAX, DNS_UDP_BYTES_DEFAULT, DNS_UDP_BYTES_MAX, DNS_UDP_INFLIGHT_MAX,
} from './limits.js';

/** Options of the DNS server. */
export interface DnsServerOptions {
  readonly agent: Pick<AgentApi, 'query' | 'info'>;
  readonly logger: Logger;
  readonly host: string;
  /** > 0. */
  readonly port: number;
  /** The shuffle's random source (tests fix it); default Math.random. */
  readonly random?: () => number;
}

const OPCODE_QUERY = 0;
const HEADER_BYTES = 12;
const RCODE_BITS = 0xf;

/** The reply to a packet we could not decode: FORMERR with its id (null when it has no header). */
function formatErrorReply(message: Buffer): Buffer | null {
  if (message.byteLength < HEADER_BYTES) return null;
  const reply = Buffer.alloc(HEADER_BYTES);
  message.copy(reply, 0, 0, 2);
  // QR + the query's opcode and RD, RCODE = FORMERR; no sections.
  const flags = message.readUInt16BE(2);
  reply.writeUInt16BE(0x8000 | (flags & 0x7900) | RCODES.FORMERR, 2);
  return reply;
}

/** The EDNS OPT record of a query, if any. */
function ednsOf(query: DecodedPacket): { udpPayloadSize: number } | null {
  const opt = (query.additionals ?? []).find((record) => record.type === 'OPT') as { udpPayloadSize?: number } | undefined;
  return opt === undefined ? null : { udpPayloadSize: opt.udpPayloadSize ?? DNS_UDP_BYTES_DEFAULT };
}

/** The DNS server of one agent. */
export class DnsServer {
  readonly #options: DnsServerOptions;
  readonly #log: Logger;
  #udp: UdpSocket | null = null;
  #tcp: Server | null = null;
  readonly #connections = new Set<Socket>();
  #udpInFlight = 0;
  #closed = false;

  private constructor(options: DnsServerOptions) {
    this.#options = options;
    this.#log = options.logger;
  }

  /** Listens on UDP and TCP `host:port`; rejects (closing what opened) if either cannot bind. */
  static async start(options: DnsServerOptions): Promise<DnsServer> {
    const server = new DnsServer(options);
    try {
      await server.#listen();
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }

  /** The UDP and TCP port (the same number). */
  get port(): number {
    const address = this.#udp?.address();
    return address === undefined ? 0 : address.port;
  }

  async #listen(): Promise<void> {
    const { host, port } = this.#options;
    const udp = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    this.#udp = udp;
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    udp.on('error', (error) => this.#log.warn({ err: error }, 'DNS UDP socket error'));
    udp.on('message', (message, remote) => this.#onUdp(message, remote.port, remote.address));
    const tcp = createServer((socket) => this.#onConnection(socket));
    this.#tcp = tcp;
    tcp.maxConnections = DNS_TCP_CONNECTIONS_MAX;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(this.port, host, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    tcp.on('error', (error) => this.#log.warn({ err: error }, 'DNS TCP server error'));
  }

  /** Stops both listeners and closes every TCP connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const socket of this.#connections) socket.destroy();
    const udp = this.#udp;
    const tcp = this.#tcp;
    if (udp !== null) await new Promise<void>((resolve) => udp.close(() => resolve())).catch(() => undefined);
    if (tcp !== null) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }

  #onUdp(message: Buffer, port: number, address: string): void {
    if (this.#udpInFlight >= DNS_UDP_INFLIGHT_MAX || this.#closed) return;
    this.#udpInFlight++;
    void this.#answer(message, 'udp').then((reply) => {
      if (reply !== null && !this.#closed) this.#udp?.send(reply, port, address);
    }).finally(() => {
      this.#udpInFlight--;
    });
  }

  #onConnection(socket: Socket): void {
    this.#connections.add(socket);
    socket.setTimeout(DNS_TCP_IDLE_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#connections.delete(socket));
    let buffered = Buffer.alloc(0);
    const pending: Buffer[] = [];
    let busy = false;
    const next = async (): Promise<void> => {
      busy = true;
      for (let message = pending.shift(); message !== undefined; message = pending.shift()) {
        const reply = await this.#answer(message, 'tcp');
        if (reply === null || socket.destroyed) continue;
        const length = Buffer.alloc(2);
        length.writeUInt16BE(reply.byteLength);
        socket.write(Buffer.concat([length, reply]));
      }
      busy = false;
    };
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.byteLength >= 2) {
        const length = buffered.readUInt16BE(0);
        if (length < HEADER_BYTES || length > DNS_TCP_MESSAGE_BYTES_MAX) {
          socket.destroy();
          return;
        }
        if (buffered.byteLength < 2 + length) break;
        pending.push(buffered.subarray(2, 2 + length));
        buffered = buffered.subarray(2 + length);
        if (pending.length > DNS_TCP_PENDING_MAX) {
          socket.destroy();
          return;
        }
      }
      if (!busy && pending.length > 0) void next();
    });
  }

  /** The encoded reply to one message, or null to stay silent. Never throws. */
  async #answer(message: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | null> {
    let query: DecodedPacket;
    try {
      query = packet.decode(message);
    } catch {
      return formatErrorReply(message);
    }
    // Never answer an answer: two servers would bounce it between them forever.
    if (query.type === 'response') return null;
    try {
      return await this.#reply(query, transport);
    } catch (error) {
      this.#log.debug({ err: error }, 'DNS query failed');
      try {
        return packet.encode(this.#response(query, { rcode: 'SERVFAIL', answers: [], authorities: [], additionals: [], truncated: false }));
      } catch {
        return formatErrorReply(message);
      }
    }
  }

  async #reply(query: DecodedPacket, transport: 'udp' | 'tcp'): Promise<Buffer> {
    const empty: DnsResult = { rcode: 'NOERROR', answers: [], authorities: [], additionals: [], truncated: false };
    const opcode = (query.flags ?? 0) >> 11 & 0xf;
    if (opcode !== OPCODE_QUERY) return packet.encode(this.#response(query, { ...empty, rcode: 'NOTIMP' }));
    const question = query.questions?.[0];
    if (question === undefined || (query.questions?.length ?? 0) !== 1) return packet.encode(this.#response(query, { ...empty, rcode: 'FORMERR' }));
    const result = await this.#withTimeout(resolveQuestion(question, {
      lookup: (read) => this.#lookup(read),
      datacenter: this.#options.agent.info.datacenter,
      answersMax: transport === 'udp' ? DNS_UDP_ANSWERS_MAX : DNS_TCP_ANSWERS_MAX,
      random: this.#options.random ?? Math.random,
      serial: Math.floor(Date.now() / 1000),
    }));
    const response = this.#response(query, result);
    return transport === 'udp' ? this.#fitUdp(query, response) : packet.encode(response);
  }

  /** Cuts a UDP response to the client's size: additionals first, then answers, setting TC. */
  #fitUdp(query: DecodedPacket, response: Packet): Buffer {
    const edns = ednsOf(query);
    const bytesMax = edns === null ? DNS_UDP_BYTES_DEFAULT : Math.min(Math.max(edns.udpPayloadSize, DNS_UDP_BYTES_DEFAULT), DNS_UDP_BYTES_MAX);
    let encoded = packet.encode(response);
    const trimmed: Packet = { ...response, answers: [...(response.answers ?? [])], additionals: [...(response.additionals ?? [])] };
    while (encoded.byteLength > bytesMax) {
      const additionals = trimmed.additionals as Answer[];
      const nonOpt = additionals.findLastIndex((record) => record.type !== 'OPT');
      if (nonOpt >= 0) additionals.splice(nonOpt, 1);
      else if ((trimmed.answers?.length ?? 0) > 0) trimmed.answers?.pop();
      else break;
      trimmed.flags = (trimmed.flags ?? 0) | packet.TRUNCATED_RESPONSE;
      encoded = packet.encode(trimmed);
    }
    return encoded;
  }

  #response(query: DecodedPacket, result: DnsResult): Packet {
    const queryFlags = query.flags ?? 0;
    // Keep the opcode and RD of the query; authoritative; no recursion available.
    let flags = (queryFlags & 0x7900) | packet.AUTHORITATIVE_ANSWER | (RCODES[result.rcode satisfies Rcode] & RCODE_BITS);
    if (result.truncated) flags |= packet.TRUNCATED_RESPONSE;
    const additionals = [...result.additionals];
    if (ednsOf(query) !== null) {
      additionals.push({ type: 'OPT', name: '.', udpPayloadSize: DNS_UDP_BYTES_MAX, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] });
    }
    return {
      type: 'response', id: query.id ?? 0, flags, questions: (query.questions ?? []).slice(0, 1),
      answers: result.answers, authorities: result.authorities, additionals,
    };
  }

  async #lookup<Q extends Query>(read: Q): Promise<QueryValue<Q>> {
    const { value } = await this.#options.agent.query(read, {
      consistency: 'default', minIndex: 0, waitMs: QUERY_WAIT_MS_DEFAULT, maxStaleMs: null, signal: AbortSignal.timeout(DNS_QUERY_TIMEOUT_MS),
    });
    return value;
  }

  #withTimeout<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('DNS lookup timed out')), DNS_QUERY_TIMEOUT_MS);
    });
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }
}
