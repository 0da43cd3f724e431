import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { decodeBody } from '../../src/transport/frame.js';

/**
 * The Tier 2 fault proxy (RELIABILITY.md): every server-to-server byte between real agent
 * processes on loopback goes through it, and each *directed* link (bytes from A to B) can be
 * blackholed, reset, delayed with jitter, throttled, or cut one way, without touching the agents.
 *
 * How traffic gets here. Each server binds its server port on 127.0.0.1 and advertises another
 * loopback address (`-advertise=127.0.1.K`, Cluster `advertiseHosts`), where the proxy listens on
 * the same port; retry_join names those addresses too. Peers learn addresses only from hellos
 * and the Raft configuration (src/agent/cluster-formation.ts), which both carry the advertised
 * one, so every Raft message, forwarded write, read-index call and hello crosses the proxy.
 * Clients' HTTP goes straight to the agents (Jepsen's partitions are node to node).
 *
 * One listener per destination, not per directed link: a dialer cannot be made to pick a
 * different address per destination, and the kernel gives every loopback connection the source
 * 127.0.0.1. The dialer is named instead by the first frame it sends, the transport's hello
 * (src/transport/envelope.ts), whose `serverId` the proxy maps to a name. From then on a
 * connection is two pipes: dialer→acceptor bytes obey link(dialer, acceptor), acceptor→dialer
 * bytes (hello reply, RPC responses) obey link(acceptor, dialer). So "A cannot send to B" holds
 * A's Raft messages on A's connection to B *and* A's RPC answers on B's connection to A.
 *
 * Faults per directed link:
 * - `blackhole`: bytes are held (not dropped: that would cut frames in half) and the source
 *   socket is paused, so the kernel buffers fill as under an iptables DROP; the connection stays
 *   open. On heal the held bytes are delivered in order, as TCP's retransmission would.
 * - `reset`: every connection carrying the link is reset (RST), and new ones are reset as soon
 *   as their hello names the link.
 * - `delay`: each chunk is delivered `ms` + uniform(0, `jitterMs`) later, order kept.
 * - `throttle`: at most `bytesPerSecond`.
 * In-stream frame drop and reorder are Tier 1's job.
 */
export type LinkFault =
  | { readonly kind: 'pass' }
  | { readonly kind: 'blackhole' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'delay'; readonly ms: number; readonly jitterMs: number }
  | { readonly kind: 'throttle'; readonly bytesPerSecond: number };

/** One server behind the proxy: peers dial listenHost:port, the proxy dials targetHost:port. */
export interface ProxyRoute {
  readonly name: string;
  /** The server's Raft id (its `-node-id`): how its hellos are recognised. */
  readonly nodeId: string;
  readonly listenHost: string;
  readonly port: number;
  readonly targetHost: string;
  readonly targetPort: number;
}

/** Counters, for reports and the proxy's own tests. */
export interface ProxyStats {
  readonly connections: number;
  readonly open: number;
  readonly resets: number;
  /** Bytes delivered per directed link `A>B`. */
  readonly bytes: Readonly<Record<string, number>>;
  /** Connections whose first frame was not a hello we could read. */
  readonly unidentified: number;
}

const PASS: LinkFault = { kind: 'pass' };
/** A hello is a few hundred bytes; anything longer before the first frame ends is not ours. */
const HELLO_BYTES_MAX = 64 * 1024;
/** Held bytes per pipe before the source is paused (the kernel then holds the rest). */
const HELD_BYTES_PAUSE = 256 * 1024;
/** The name of a dialer that is not a server (a client agent, a fuzzer). */
export const CLIENT = 'client';

interface Pending {
  readonly at: number;
  readonly chunk: Buffer;
}

/** Bytes one way through one proxied connection. */
class Pipe {
  readonly #queue: Pending[] = [];
  #queuedBytes = 0;
  #lastAt = 0;
  #timer: NodeJS.Timeout | null = null;
  #waitingDrain = false;
  #closed = false;

  constructor(
    readonly from: string,
    readonly to: string,
    readonly source: Socket,
    readonly sink: Socket,
    readonly proxy: FaultProxy,
  ) {}

  get fault(): LinkFault {
    return this.proxy.link(this.from, this.to);
  }

  push(chunk: Buffer): void {
    if (this.#closed) return;
    const fault = this.fault;
    const now = performance.now();
    let at = now;
    if (fault.kind === 'delay') at = now + fault.ms + Math.random() * fault.jitterMs;
    if (fault.kind === 'throttle') at = Math.max(now, this.#lastAt) + (chunk.length * 1000) / fault.bytesPerSecond;
    at = Math.max(at, this.#lastAt);
    this.#lastAt = at;
    this.#queue.push({ at, chunk });
    this.#queuedBytes += chunk.length;
    if (this.#queuedBytes > HELD_BYTES_PAUSE) this.source.pause();
    this.pump();
  }

  /** Delivers what is due unless the link is blackholed; called again on every fault change. */
  pump(): void {
    if (this.#closed) return;
    const fault = this.fault;
    if (fault.kind === 'blackhole') {
      this.source.pause();
      return;
    }
    if (fault.kind === 'reset' || this.#waitingDrain) return;
    const now = performance.now();
    while (this.#queue.length > 0) {
      const head = this.#queue[0] as Pending;
      if (head.at > now) break;
      this.#queue.shift();
      this.#queuedBytes -= head.chunk.length;
      this.proxy.count(this.from, this.to, head.chunk.length);
      if (!this.sink.write(head.chunk)) {
        this.source.pause();
        this.#waitingDrain = true;
        this.sink.once('drain', () => {
          this.#waitingDrain = false;
          this.pump();
        });
        return;
      }
    }
    if (this.#queue.length > 0) {
      const head = this.#queue[0] as Pending;
      if (this.#timer === null) {
        this.#timer = setTimeout(() => {
          this.#timer = null;
          this.pump();
        }, Math.max(0, head.at - now));
      }
      return;
    }
    if (this.#queuedBytes <= HELD_BYTES_PAUSE && this.source.isPaused()) this.source.resume();
  }

  /** Held bytes after a blackhole: their delivery times restart from now. */
  rebase(): void {
    const fault = this.fault;
    const base = performance.now() + (fault.kind === 'delay' ? fault.ms : 0);
    for (let k = 0; k < this.#queue.length; k++) {
      const pending = this.#queue[k] as Pending;
      if (pending.at < base) this.#queue[k] = { at: base, chunk: pending.chunk };
    }
    this.#lastAt = Math.max(this.#lastAt, base);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#queue.length = 0;
  }
}

/** One accepted connection and its upstream twin. */
class ProxiedConnection {
  up: Pipe | null = null;
  down: Pipe | null = null;
  upstream: Socket | null = null;
  dialer = CLIENT;
  #closed = false;

  constructor(
    readonly acceptor: ProxyRoute,
    readonly downstream: Socket,
  ) {}

  /** True when `a>b` is one of this connection's directions. */
  carries(a: string, b: string): boolean {
    return (this.dialer === a && this.acceptor.name === b) || (this.dialer === b && this.acceptor.name === a);
  }

  close(reset: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.up?.close();
    this.down?.close();
    for (const socket of [this.downstream, this.upstream]) {
      if (socket === null || socket.destroyed) continue;
      if (reset) socket.resetAndDestroy();
      else socket.destroy();
    }
  }
}

/** The proxy: start it with the servers' routes before the servers, close it after them. */
export class FaultProxy {
  readonly #routes: readonly ProxyRoute[];
  readonly #servers: Server[] = [];
  readonly #connections = new Set<ProxiedConnection>();
  readonly #faults = new Map<string, LinkFault>();
  readonly #names = new Map<string, string>();
  readonly #bytes: Record<string, number> = {};
  #connectionCount = 0;
  #resets = 0;
  #unidentified = 0;

  private constructor(routes: readonly ProxyRoute[]) {
    this.#routes = routes;
    for (const route of routes) this.#names.set(route.nodeId, route.name);
  }

  /** Listens for every route; rejects if an address is taken. */
  static async start(routes: readonly ProxyRoute[]): Promise<FaultProxy> {
    const proxy = new FaultProxy(routes);
    try {
      for (const route of routes) await proxy.#listen(route);
    } catch (error) {
      await proxy.close();
      throw error;
    }
    return proxy;
  }

  /** Server names, in route order. */
  get names(): string[] {
    return this.#routes.map((route) => route.name);
  }

  /** The fault on bytes from `from` to `to`. */
  link(from: string, to: string): LinkFault {
    return this.#faults.get(`${from}>${to}`) ?? PASS;
  }

  /** Sets the fault on bytes from `from` to `to` (one way). */
  setLink(from: string, to: string, fault: LinkFault): void {
    if (fault.kind === 'pass') this.#faults.delete(`${from}>${to}`);
    else this.#faults.set(`${from}>${to}`, fault);
    this.#apply(from, to);
  }

  /** Both directions between `a` and `b`. */
  setPair(a: string, b: string, fault: LinkFault): void {
    this.setLink(a, b, fault);
    this.setLink(b, a, fault);
  }

  /**
   * Jepsen's partition by components: servers in different groups cannot exchange bytes (both
   * ways); servers not named keep their links. Replaces every earlier fault.
   */
  partition(groups: readonly (readonly string[])[], fault: LinkFault = { kind: 'blackhole' }): void {
    this.heal();
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue;
        for (const a of groups[i] ?? []) for (const b of groups[j] ?? []) this.setLink(a, b, fault);
      }
    }
  }

  /** Cuts exactly the given unordered pairs (ring and bridge shapes are not components). */
  cutPairs(pairs: readonly (readonly [string, string])[], fault: LinkFault = { kind: 'blackhole' }): void {
    this.heal();
    for (const [a, b] of pairs) this.setPair(a, b, fault);
  }

  /** Every link back to pass; held bytes flow again. */
  heal(): void {
    const links = [...this.#faults.keys()];
    this.#faults.clear();
    for (const key of links) {
      const [from, to] = key.split('>') as [string, string];
      this.#apply(from, to);
    }
  }

  /** The links currently faulted, as `A>B:kind`, for history lines. */
  describe(): string[] {
    return [...this.#faults.entries()].map(([key, fault]) => `${key}:${fault.kind}`).sort();
  }

  stats(): ProxyStats {
    return {
      connections: this.#connectionCount,
      open: this.#connections.size,
      resets: this.#resets,
      bytes: { ...this.#bytes },
      unidentified: this.#unidentified,
    };
  }

  /** Called by pipes: counts delivered bytes per link. */
  count(from: string, to: string, bytes: number): void {
    const key = `${from}>${to}`;
    this.#bytes[key] = (this.#bytes[key] ?? 0) + bytes;
  }

  async close(): Promise<void> {
    for (const connection of this.#connections) connection.close(false);
    this.#connections.clear();
    await Promise.all(this.#servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    this.#servers.length = 0;
  }

  #apply(from: string, to: string): void {
    const fault = this.link(from, to);
    for (const connection of [...this.#connections]) {
      if (!connection.carries(from, to)) continue;
      if (fault.kind === 'reset') {
        this.#resets++;
        connection.close(true);
        this.#connections.delete(connection);
        continue;
      }
      for (const pipe of [connection.up, connection.down]) {
        if (pipe === null || pipe.from !== from || pipe.to !== to) continue;
        pipe.rebase();
        pipe.pump();
      }
    }
  }

  async #listen(route: ProxyRoute): Promise<void> {
    const server = createServer({ allowHalfOpen: false, pauseOnConnect: false }, (socket) => this.#accept(route, socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: route.listenHost, port: route.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', () => undefined);
    this.#servers.push(server);
  }

  #accept(route: ProxyRoute, downstream: Socket): void {
    this.#connectionCount++;
    const connection = new ProxiedConnection(route, downstream);
    this.#connections.add(connection);
    downstream.setNoDelay(true);
    downstream.on('error', () => undefined);
    downstream.on('close', () => {
      connection.close(false);
      this.#connections.delete(connection);
    });
    // Read the dialer's hello before connecting upstream: it names the link.
    let head = Buffer.alloc(0);
    const onHead = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const named = nameFromHello(head, this.#names);
      if (named === undefined && head.length < HELLO_BYTES_MAX) return;
      downstream.off('data', onHead);
      downstream.pause();
      if (named === undefined || named === null) {
        if (named === undefined) this.#unidentified++;
        connection.dialer = CLIENT;
      } else {
        connection.dialer = named;
      }
      this.#connectUpstream(connection, head);
    };
    downstream.on('data', onHead);
  }

  #connectUpstream(connection: ProxiedConnection, head: Buffer): void {
    const route = connection.acceptor;
    const downstream = connection.downstream;
    if (this.link(connection.dialer, route.name).kind === 'reset' || this.link(route.name, connection.dialer).kind === 'reset') {
      this.#resets++;
      connection.close(true);
      this.#connections.delete(connection);
      return;
    }
    const upstream = createConnection({ host: route.targetHost, port: route.targetPort });
    connection.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', () => undefined);
    upstream.on('close', () => {
      connection.close(false);
      this.#connections.delete(connection);
    });
    const up = new Pipe(connection.dialer, route.name, downstream, upstream, this);
    const down = new Pipe(route.name, connection.dialer, upstream, downstream, this);
    connection.up = up;
    connection.down = down;
    downstream.on('data', (chunk: Buffer) => up.push(chunk));
    upstream.on('data', (chunk: Buffer) => down.push(chunk));
    up.push(head);
    downstream.resume();
  }
}

/**
 * The dialer's name from the first frame: undefined while incomplete or unreadable, null for a
 * hello without a server id (a client agent), else the server's name (or its id if unknown).
 */
function nameFromHello(head: Buffer, names: ReadonlyMap<string, string>): string | null | undefined {
  if (head.length < 4) return undefined;
  const length = head.readUInt32BE(0);
  if (length === 0 || length > HELLO_BYTES_MAX) return null;
  if (head.length < 4 + length) return undefined;
  try {
    const envelope = decodeBody(head.subarray(4, 4 + length));
    if (envelope.kind !== 'hello' || envelope.serverId === null) return null;
    return names.get(envelope.serverId) ?? envelope.serverId;
  } catch {
    return null;
  }
}
