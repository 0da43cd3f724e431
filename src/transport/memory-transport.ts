import { assert } from '../lib/assert.js';
import { Prng } from '../lib/prng.js';
import type { Message } from '../raft/core/messages.js';
import type { ServerId } from '../raft/core/types.js';
import type { Envelope, RequestFrame } from './envelope.js';
import { decodeBody } from './frame.js';
import { FRAME_HEADER_BYTES, RPC_PENDING_CALLS_MAX, RPC_TIMEOUT_MS_DEFAULT } from './limits.js';
import { encodeOutcome, encodeRaftFrame, encodeRequestFrame } from './outbound.js';
import type { RpcError, RpcOutcome, RpcRegistry } from './rpc.js';
import { PendingCalls, RpcHandlers, assertMethodName, assertTimeoutMs, rpcError } from './rpc.js';
import type { RaftTransport, RpcClient, RpcHandler } from './transport.js';

/**
 * Faults the network injects, drawn from its seeded Prng. Drops and duplicates apply to Raft
 * messages only: RPC rides TCP, which neither loses nor repeats a frame; a cut link fails a call
 * with ERR_RPC_CONNECTION instead. Every delivery (Raft message, request, response) waits a
 * uniform delay in [delayMsMin, delayMsMax]; different delays reorder Raft messages.
 */
export interface MemoryFaults {
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly delayMsMin: number;
  readonly delayMsMax: number;
}

/** What a network has done so far. */
export interface MemoryNetworkStats {
  readonly deliveredCount: number;
  readonly droppedCount: number;
  readonly duplicatedCount: number;
}

const NO_FAULTS: MemoryFaults = { dropRate: 0, duplicateRate: 0, delayMsMin: 0, delayMsMax: 0 };

/** The network's side of one transport: how a MemoryTransport hands frames to its network. */
export interface MemoryNetworkPort {
  sendRaft(from: string, to: string, frame: Buffer): void;
  sendRequest(from: string, to: string, frame: Buffer): void;
  detach(address: string): void;
}

/**
 * Connects MemoryTransports in one process, for multi-node tests of everything above the
 * transport (agents, RPC, forwarding). Frames go through the real codec and validators, so a
 * payload the TCP transport would refuse fails here too. Delivery is asynchronous (setImmediate or
 * setTimeout) and real-time; the deterministic Raft simulation has its own network.
 */
export class MemoryNetwork {
  readonly #prng: Prng;
  readonly #transports = new Map<string, MemoryTransport>();
  readonly #cutLinks = new Set<string>();
  readonly #isolated = new Set<string>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #faults: MemoryFaults = NO_FAULTS;
  #deliveredCount = 0;
  #droppedCount = 0;
  #duplicatedCount = 0;

  constructor(seed: bigint | number) {
    this.#prng = new Prng(seed);
  }

  /** Changes some fault knobs; the rest keep their values. */
  setFaults(faults: Partial<MemoryFaults>): void {
    const next = { ...this.#faults, ...faults };
    assert(next.dropRate >= 0 && next.dropRate <= 1, 'dropRate is a probability');
    assert(next.duplicateRate >= 0 && next.duplicateRate <= 1, 'duplicateRate is a probability');
    assert(Number.isSafeInteger(next.delayMsMin) && next.delayMsMin >= 0, 'delayMsMin is a non-negative integer');
    assert(Number.isSafeInteger(next.delayMsMax) && next.delayMsMax >= next.delayMsMin, 'delayMsMax >= delayMsMin');
    this.#faults = next;
  }

  /** A transport listening at `address` (any unique string; "host:port" reads best in logs). */
  createTransport(options: { address: string; serverId: ServerId | null }): MemoryTransport {
    assert(!this.#transports.has(options.address), `address ${options.address} already in use`);
    const port: MemoryNetworkPort = {
      sendRaft: (from, to, frame) => this.#sendRaft(from, to, frame),
      sendRequest: (from, to, frame) => this.#sendRequest(from, to, frame),
      detach: (address) => this.#transports.delete(address),
    };
    const transport = new MemoryTransport(options.address, options.serverId, port);
    this.#transports.set(options.address, transport);
    return transport;
  }

  /** Cuts every link between addresses of different groups, both ways. */
  partition(...groups: readonly (readonly string[])[]): void {
    for (const [index, group] of groups.entries()) {
      for (const other of groups.slice(index + 1)) {
        for (const a of group) {
          for (const b of other) {
            this.cut(a, b);
            this.cut(b, a);
          }
        }
      }
    }
  }

  /** Cuts the link from `from` to `to` only: a one-way partition. */
  cut(from: string, to: string): void {
    this.#cutLinks.add(linkKey(from, to));
  }

  /** Cuts `address` off from everyone, both ways. */
  isolate(address: string): void {
    this.#isolated.add(address);
  }

  /** Restores every link. Faults set by setFaults stay. */
  heal(): void {
    this.#cutLinks.clear();
    this.#isolated.clear();
  }

  /** True when a frame from `from` would currently reach `to`. */
  canReach(from: string, to: string): boolean {
    if (this.#isolated.has(from) || this.#isolated.has(to)) return false;
    return !this.#cutLinks.has(linkKey(from, to)) && this.#transports.has(to);
  }

  /** Counters since the network was created. */
  stats(): MemoryNetworkStats {
    return { deliveredCount: this.#deliveredCount, droppedCount: this.#droppedCount, duplicatedCount: this.#duplicatedCount };
  }

  /** Closes every transport and cancels every delivery in flight. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await Promise.all([...this.#transports.values()].map((transport) => transport.close()));
  }

  #sendRaft(from: string, to: string, frame: Buffer): void {
    if (!this.canReach(from, to) || this.#prng.chance(this.#faults.dropRate)) {
      this.#droppedCount++;
      return;
    }
    const copies = this.#prng.chance(this.#faults.duplicateRate) ? 2 : 1;
    if (copies === 2) this.#duplicatedCount++;
    for (let copy = 0; copy < copies; copy++) {
      this.#later(() => {
        const target = this.#transports.get(to);
        // A partition that starts while a frame is in flight loses it, as a cut cable would.
        if (target === undefined || !this.canReach(from, to)) {
          this.#droppedCount++;
          return;
        }
        this.#deliveredCount++;
        target.receiveRaft(decodeFrame(frame));
      });
    }
  }

  #sendRequest(from: string, to: string, frame: Buffer): void {
    const request = decodeFrame(frame);
    assert(request.kind === 'request', 'sendRequest carries requests');
    const fail = (why: string): void => this.#transports.get(from)?.failCall(request.id, rpcError('ERR_RPC_CONNECTION', `${why} ${to}`));
    if (!this.canReach(from, to)) return this.#later(() => fail('cannot reach'));
    this.#later(() => {
      const target = this.#transports.get(to);
      if (target === undefined || !this.canReach(from, to)) return fail('lost connection to');
      this.#deliveredCount++;
      // serve() rejects only with an AssertionError: left unhandled, it crashes, as a bug must.
      const callerServerId = this.#transports.get(from)?.serverId ?? null;
      void target.serveRequest({ remoteServerId: callerServerId, remoteAddress: from }, request).then((reply) => {
        this.#later(() => {
          const caller = this.#transports.get(from);
          if (caller === undefined) return;
          if (!this.canReach(to, from)) return fail('lost connection to');
          this.#deliveredCount++;
          caller.receiveReply(to, decodeFrame(reply));
        });
      });
    });
  }

  /** Runs `deliver` after a drawn delay; the random draw happens now, so a seed replays. */
  #later(deliver: () => void): void {
    const delayMs = this.#prng.between(this.#faults.delayMsMin, this.#faults.delayMsMax);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      deliver();
    }, delayMs);
    this.#timers.add(timer);
  }
}

/**
 * The in-memory twin of TcpTransport: same interfaces, same codec, same validation, no sockets.
 * Created by MemoryNetwork.createTransport.
 */
export class MemoryTransport implements RaftTransport, RpcClient, RpcRegistry {
  readonly address: string;
  readonly serverId: ServerId | null;
  readonly #network: MemoryNetworkPort;
  readonly #handlers = new RpcHandlers();
  readonly #pending = new PendingCalls<string>(RPC_PENDING_CALLS_MAX);
  readonly #peers = new Map<ServerId, string>();
  #messageHandler: ((message: Message, unverified: boolean) => void) | null = null;
  #closed = false;
  #unroutableCount = 0;

  /** Use MemoryNetwork.createTransport. */
  constructor(address: string, serverId: ServerId | null, network: MemoryNetworkPort) {
    this.address = address;
    this.serverId = serverId;
    this.#network = network;
  }

  /** Raft messages dropped because the peer's address was unknown. */
  get unroutableCount(): number {
    return this.#unroutableCount;
  }

  /** Registers the handler for RPC `method`. */
  handle(method: string, handler: RpcHandler): void {
    this.#handlers.handle(method, handler);
  }

  /** Registers the single receiver of inbound Raft messages. */
  onMessage(handler: (message: Message, unverified: boolean) => void): void {
    assert(this.#messageHandler === null, 'onMessage registers the single receiver once');
    this.#messageHandler = handler;
  }

  /** Where peer `id` is attached to the network. */
  setPeerAddress(id: ServerId, address: string): void {
    this.#peers.set(id, address);
  }

  /** Forgets a peer that left the configuration (TcpTransport.removePeer's twin). */
  removePeer(id: ServerId): void {
    this.#peers.delete(id);
  }

  /** Hands `message` to the network (which may drop, duplicate or delay it). */
  send(message: Message): void {
    const frame = encodeRaftFrame(message);
    assert(message.from === this.serverId, 'a server sends Raft messages as itself');
    if (this.#closed) return;
    const address = this.#peers.get(message.to);
    if (address === undefined) {
      this.#unroutableCount++;
      return;
    }
    this.#network.sendRaft(this.address, address, frame);
  }

  /** Calls `method` at `address` through the network; errors as TcpTransport.call. */
  async call(address: string, method: string, payload: unknown, options: { timeoutMs?: number } = {}): Promise<unknown> {
    assertMethodName(method);
    const timeoutMs = options.timeoutMs ?? RPC_TIMEOUT_MS_DEFAULT;
    assertTimeoutMs(timeoutMs);
    if (this.#closed) throw rpcError('ERR_RPC_CLOSED', 'transport closed');
    if (this.#pending.isFull) throw rpcError('ERR_OVERLOADED', `too many RPC calls pending (max ${RPC_PENDING_CALLS_MAX})`);
    const id = this.#pending.allocateId();
    const frame = encodeRequestFrame(id, method, payload);
    const result = this.#pending.start(id, address, timeoutMs, `RPC ${method} to ${address}`);
    this.#network.sendRequest(this.address, address, frame);
    return result;
  }

  /** Detaches from the network; pending calls reject with ERR_RPC_CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#network.detach(this.address);
    this.#pending.failAll(rpcError('ERR_RPC_CLOSED', 'transport closed'));
  }

  /** Network side: a Raft message arrives. */
  receiveRaft(envelope: Envelope): void {
    assert(envelope.kind === 'raft', 'receiveRaft carries Raft frames');
    if (this.#closed || this.#messageHandler === null || envelope.message.to !== this.serverId) return;
    this.#messageHandler(envelope.message, false);
  }

  /** Network side: serve a request; resolves to the encoded reply. */
  async serveRequest(context: Parameters<RpcHandler>[1], request: RequestFrame): Promise<Buffer> {
    const outcome: RpcOutcome = this.#closed
      ? { ok: false, message: 'transport closed', code: 'ERR_RPC_CLOSED' }
      : await this.#handlers.serve(request.method, request.payload, context);
    return encodeOutcome(request, outcome);
  }

  /** Network side: the reply to one of our calls, from the address it was sent to. */
  receiveReply(from: string, envelope: Envelope): void {
    if (envelope.kind === 'response') this.#pending.settle(envelope.id, from, { ok: true, payload: envelope.payload });
    else if (envelope.kind === 'error') this.#pending.settle(envelope.id, from, { ok: false, message: envelope.message, code: envelope.code });
    else assert(false, 'receiveReply carries responses');
  }

  /** Network side: one call could not be delivered. */
  failCall(id: number, error: RpcError): void {
    this.#pending.fail(id, error);
  }
}

function linkKey(from: string, to: string): string {
  return `${from}\u0000${to}`;
}

/** Decodes a frame we encoded ourselves: failure would be a codec bug. */
function decodeFrame(frame: Buffer): Envelope {
  assert(frame.readUInt32BE(0) === frame.byteLength - FRAME_HEADER_BYTES, 'frame length prefix');
  return decodeBody(frame.subarray(FRAME_HEADER_BYTES));
}
