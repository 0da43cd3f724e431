import { createConnection, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { assert } from '../lib/assert.js';
import type { Logger } from '../lib/logger.js';
import { silentLogger } from '../lib/logger.js';
import type { Message } from '../raft/core/messages.js';
import type { ServerId } from '../raft/core/types.js';
import { formatAddress, parseAddress } from './address.js';
import type { RandomSource } from './backoff.js';
import { Connection } from './connection.js';
import type { ConnectionEvents } from './connection.js';
import type { AgentRole, Envelope, Hello, RequestFrame } from './envelope.js';
import { PROTOCOL_VERSION } from './envelope.js';
import { encodeFrame } from './frame.js';
import {
  BACKOFF_MS_MAX,
  BACKOFF_MS_MIN,
  HANDSHAKE_FRAME_BYTES_MAX,
  HANDSHAKE_TIMEOUT_MS,
  IDENTIFIER_LENGTH_MAX,
  INBOUND_CONNECTIONS_MAX,
  INBOUND_REQUESTS_PER_CONNECTION_MAX,
  OUTBOUND_RPC_CONNECTIONS_MAX,
  PEER_SEND_QUEUE_BYTES_MAX,
  PEER_SEND_QUEUE_COUNT_MAX,
  RPC_PENDING_CALLS_MAX,
  RPC_TIMEOUT_MS_DEFAULT,
} from './limits.js';
import { PeerLink } from './peer-link.js';
import type { PeerLinkStats } from './peer-link.js';
import { encodeOutcome, encodeRaftFrame, encodeRequestFrame } from './outbound.js';
import type { RpcOutcome, RpcRegistry } from './rpc.js';
import { PendingCalls, RpcHandlers, assertMethodName, assertTimeoutMs, rpcError } from './rpc.js';
import type { RaftTransport, RpcClient, RpcHandler } from './transport.js';
import { WireError } from './wire-error.js';

/** Servers whose reported cluster id is remembered (clusterIdReportedBy); far above any cluster. */
const PEER_CLUSTER_IDS_MAX = 256;

/** How an agent is set up on the server port. Limits default to limits.ts; tests shrink them. */
export interface TcpTransportOptions {
  readonly role: AgentRole;
  /** Required for servers; null for client agents. */
  readonly serverId: ServerId | null;
  readonly datacenter: string;
  /** Known from the start only on a restarted server; see setClusterId. */
  readonly clusterId?: string | null;
  readonly logger?: Logger;
  /** Jitter for reconnect backoff; Math.random unless a test injects a seeded source. */
  readonly random?: RandomSource;
  /** Only tests speak another version, to check that peers refuse it. */
  readonly protocolVersion?: number;
  readonly handshakeTimeoutMs?: number;
  readonly rpcTimeoutMsDefault?: number;
  readonly backoffMsMin?: number;
  readonly backoffMsMax?: number;
  readonly peerQueueCountMax?: number;
  readonly peerQueueBytesMax?: number;
  readonly inboundConnectionsMax?: number;
}

/** Counters for tests, metrics and /v1/debug. */
export interface TcpTransportStats {
  readonly peers: Readonly<Record<ServerId, PeerLinkStats>>;
  readonly inboundConnections: number;
  readonly rpcConnections: number;
  readonly pendingCalls: number;
  /** Raft messages handed to the onMessage handler. */
  readonly raftReceivedCount: number;
  /** Inbound Raft messages dropped: addressed to another server id, or no handler yet. */
  readonly raftDroppedCount: number;
  /** Outbound Raft messages dropped because the peer's address is unknown. */
  readonly raftUnroutableCount: number;
  /** Connections closed because the peer sent a bad frame. */
  readonly badFrameCloseCount: number;
  /** Inbound connections refused at accept (over the connection limit). */
  readonly refusedConnectionCount: number;
}

/**
 * The server port: Raft messages (one-way) and RPC calls (request/response) over TCP with
 * length-prefixed MessagePack frames (wire format: envelope.ts), after a handshake that checks
 * protocol version, datacenter and cluster id (connection.ts). A bad frame closes only the
 * connection it came on. The onMessage handler and RPC handlers must not throw synchronously out
 * of the transport: the Raft receiver is called from the socket callback, and a bug there
 * crashes the process, as STYLE §5 wants.
 *
 * Connections: one outbound connection per Raft peer (PeerLink), dialled on first send, and one
 * per address for RPC calls, shared by all calls to it. They are separate so that heartbeats
 * never queue behind a multi-MiB forwarded read, and so that the Raft path's drop-oldest queue
 * and the RPC path's reject-when-full bound stay independent. Inbound connections carry either.
 */
export class TcpTransport implements RaftTransport, RpcClient, RpcRegistry {
  readonly #role: AgentRole;
  readonly #serverId: ServerId | null;
  readonly #datacenter: string;
  readonly #protocolVersion: number;
  readonly #logger: Logger;
  readonly #random: RandomSource;
  readonly #handshakeTimeoutMs: number;
  readonly #rpcTimeoutMsDefault: number;
  readonly #backoffMsMin: number;
  readonly #backoffMsMax: number;
  readonly #peerQueueCountMax: number;
  readonly #peerQueueBytesMax: number;
  readonly #inboundConnectionsMax: number;
  readonly #handlers = new RpcHandlers();
  readonly #pending = new PendingCalls<Connection>(RPC_PENDING_CALLS_MAX);
  readonly #links = new Map<ServerId, PeerLink>();
  readonly #rpcConnections = new Map<string, Connection>();
  readonly #connections = new Set<Connection>();
  readonly #refusedSockets = new Set<Socket>();
  #clusterId: string | null;
  /** The cluster id each server that dialled us gave in its hello (bounded). */
  readonly #peerClusterIds = new Map<string, string>();
  #messageHandler: ((message: Message, unverified: boolean) => void) | null = null;
  #peerLostHandler: ((id: ServerId) => void) | null = null;
  #server: Server | null = null;
  #boundAddress: string | null = null;
  #inboundCount = 0;
  #closed = false;
  #raftReceivedCount = 0;
  #raftDroppedCount = 0;
  #raftUnroutableCount = 0;
  #badFrameCloseCount = 0;
  #refusedConnectionCount = 0;

  constructor(options: TcpTransportOptions) {
    assert(options.role === 'client' || options.serverId !== null, 'a server needs a server id');
    assertIdentifier(options.datacenter, 'datacenter');
    if (options.serverId !== null) assertIdentifier(options.serverId, 'server id');
    if (options.clusterId !== undefined && options.clusterId !== null) assertIdentifier(options.clusterId, 'cluster id');
    this.#role = options.role;
    this.#serverId = options.serverId;
    this.#datacenter = options.datacenter;
    this.#clusterId = options.clusterId ?? null;
    this.#protocolVersion = options.protocolVersion ?? PROTOCOL_VERSION;
    this.#logger = options.logger ?? silentLogger;
    this.#random = options.random ?? Math.random;
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    this.#rpcTimeoutMsDefault = options.rpcTimeoutMsDefault ?? RPC_TIMEOUT_MS_DEFAULT;
    this.#backoffMsMin = options.backoffMsMin ?? BACKOFF_MS_MIN;
    this.#backoffMsMax = options.backoffMsMax ?? BACKOFF_MS_MAX;
    this.#peerQueueCountMax = options.peerQueueCountMax ?? PEER_SEND_QUEUE_COUNT_MAX;
    this.#peerQueueBytesMax = options.peerQueueBytesMax ?? PEER_SEND_QUEUE_BYTES_MAX;
    this.#inboundConnectionsMax = options.inboundConnectionsMax ?? INBOUND_CONNECTIONS_MAX;
    assertTimeoutMs(this.#rpcTimeoutMsDefault);
    assert(this.#handshakeTimeoutMs > 0, 'handshake timeout must be positive');
    assert(this.#inboundConnectionsMax > 0, 'inbound connection limit must be positive');
  }

  /** host:port the listener is bound to (port 0 resolved), or null before listen(). */
  get address(): string | null {
    return this.#boundAddress;
  }

  /** Listens on host:port (port 0 picks a free one); resolves to the bound host:port. */
  async listen(host: string, port: number): Promise<string> {
    assert(this.#role === 'server', 'client agents do not listen on the server port');
    assert(this.#server === null, 'listen called twice');
    assert(!this.#closed, 'listen after close');
    assert(Number.isSafeInteger(port) && port >= 0 && port <= 65_535, 'port out of range');
    const server = createServer({ allowHalfOpen: false });
    this.#server = server;
    server.on('connection', (socket) => this.#onInboundSocket(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.#logger.error({ err: error }, 'server port listener failed'));
    const bound = server.address() as AddressInfo;
    this.#boundAddress = formatAddress(bound.address, bound.port);
    this.#logger.info({ address: this.#boundAddress }, 'listening on the server port');
    return this.#boundAddress;
  }

  /**
   * Sets the cluster id once it is known (at bootstrap). From then on peers of another cluster are
   * refused, and open connections to one are closed.
   */
  setClusterId(clusterId: string): void {
    assertIdentifier(clusterId, 'cluster id');
    assert(this.#clusterId === null || this.#clusterId === clusterId, 'the cluster id never changes once set');
    const learned = this.#clusterId === null;
    this.#clusterId = clusterId;
    // Raft links dialled before we knew the id said "no cluster id" in their hello: redial, so
    // peers that know the id do not take our messages for a stranger's (they may not yet have
    // us in their configuration).
    if (learned) for (const link of this.#links.values()) link.reconnect();
    for (const connection of [...this.#connections]) {
      const remoteClusterId = connection.remoteHello?.clusterId ?? null;
      if (remoteClusterId === null || remoteClusterId === clusterId) continue;
      const reason = `peer belongs to cluster ${remoteClusterId}, we belong to ${clusterId}`;
      this.#logger.warn({ remoteAddress: connection.remoteAddress, reason }, 'closing connection to another cluster');
      connection.refuse(reason, rpcError('ERR_RPC_HANDSHAKE', `connection with ${connection.remoteAddress} closed: ${reason}`));
    }
  }

  /**
   * The cluster id server `serverId` gave in the hello of a connection it dialled to us
   * (remembered after the connection closes), or null. A member that got its state from
   * another founder's bootstrap learns the id this way even if that founder is gone since.
   */
  clusterIdReportedBy(serverId: string): string | null {
    return this.#peerClusterIds.get(serverId) ?? null;
  }

  /** Registers the handler for RPC `method`. */
  handle(method: string, handler: RpcHandler): void {
    this.#handlers.handle(method, handler);
  }

  /** Registers the single receiver of inbound Raft messages (called once per message, in order). */
  onMessage(handler: (message: Message, unverified: boolean) => void): void {
    assert(this.#messageHandler === null, 'onMessage registers the single receiver once');
    this.#messageHandler = handler;
  }

  /** Registers the receiver of 'a server's connection to us closed' (a hint for Raft's timers). */
  onPeerConnectionLost(handler: (id: ServerId) => void): void {
    assert(this.#peerLostHandler === null, 'onPeerConnectionLost registers the single receiver once');
    this.#peerLostHandler = handler;
  }

  /** Where peer `id` listens; a new address redirects its queue there. Our own id is ignored. */
  setPeerAddress(id: ServerId, address: string): void {
    assert(this.#role === 'server', 'client agents have no Raft peers');
    assertIdentifier(id, 'peer id');
    if (id === this.#serverId || this.#closed) return;
    if (parseAddress(address) === null) {
      this.#logger.error({ peerId: id, address }, 'ignoring peer address: not host:port');
      return;
    }
    const link = this.#links.get(id);
    if (link !== undefined) return link.setAddress(address);
    this.#links.set(id, this.#createLink(id, address));
  }

  /** Drops the connection to a peer we hear nothing from and dials it afresh (queue kept). */
  reconnectPeer(id: ServerId): void {
    this.#links.get(id)?.reconnect();
  }

  /** Forgets a peer that left the configuration: closes its connection and drops its queue. */
  removePeer(id: ServerId): void {
    this.#links.get(id)?.close();
    this.#links.delete(id);
  }

  /**
   * Queues `message` for its peer; never blocks, never throws for the network. An invalid or
   * oversized message is a core bug and fails an assertion.
   */
  send(message: Message): void {
    assert(this.#role === 'server', 'client agents send no Raft messages');
    const frame = encodeRaftFrame(message);
    assert(message.from === this.#serverId, 'a server sends Raft messages as itself');
    assert(message.to !== this.#serverId, 'the core never sends a message to itself');
    if (this.#closed) return;
    const link = this.#links.get(message.to);
    if (link === undefined) {
      this.#raftUnroutableCount++;
      this.#logger.debug({ peerId: message.to, type: message.type }, 'dropping Raft message: peer address unknown');
      return;
    }
    link.enqueue(frame);
  }

  /**
   * Calls `method` at `address` over that address's shared RPC connection (dialled on first use).
   * Rejects with RpcError: the remote error (remote: true, its code kept), or ERR_RPC_TIMEOUT,
   * ERR_RPC_CONNECTION, ERR_RPC_HANDSHAKE, ERR_RPC_CLOSED, ERR_RPC_ADDRESS, ERR_OVERLOADED,
   * ERR_TOO_LARGE. The payload must be plain data (asserted).
   */
  async call(address: string, method: string, payload: unknown, options: { timeoutMs?: number } = {}): Promise<unknown> {
    assertMethodName(method);
    const timeoutMs = options.timeoutMs ?? this.#rpcTimeoutMsDefault;
    assertTimeoutMs(timeoutMs);
    if (this.#closed) throw rpcError('ERR_RPC_CLOSED', 'transport closed');
    if (this.#pending.isFull) throw rpcError('ERR_OVERLOADED', `too many RPC calls pending (max ${RPC_PENDING_CALLS_MAX})`);
    const id = this.#pending.allocateId();
    const frame = encodeRequestFrame(id, method, payload);
    const connection = this.#rpcConnectionFor(address);
    const result = this.#pending.start(id, connection, timeoutMs, `RPC ${method} to ${address}`);
    if (!connection.send(frame)) {
      this.#pending.fail(id, rpcError('ERR_OVERLOADED', `too much data queued for ${address}`));
    }
    return result;
  }

  /** Counters and per-peer queues. */
  stats(): TcpTransportStats {
    const peers: Record<ServerId, PeerLinkStats> = {};
    for (const [id, link] of this.#links) peers[id] = link.stats();
    return {
      peers,
      inboundConnections: this.#inboundCount,
      rpcConnections: this.#rpcConnections.size,
      pendingCalls: this.#pending.size,
      raftReceivedCount: this.#raftReceivedCount,
      raftDroppedCount: this.#raftDroppedCount,
      raftUnroutableCount: this.#raftUnroutableCount,
      badFrameCloseCount: this.#badFrameCloseCount,
      refusedConnectionCount: this.#refusedConnectionCount,
    };
  }

  /** Closes the listener and every connection; pending calls reject with ERR_RPC_CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const error = rpcError('ERR_RPC_CLOSED', 'transport closed');
    for (const link of this.#links.values()) link.close();
    this.#links.clear();
    this.#pending.failAll(error);
    for (const connection of [...this.#connections]) connection.close(error);
    for (const socket of this.#refusedSockets) socket.destroy();
    this.#refusedSockets.clear();
    const server = this.#server;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.#logger.info({ address: this.#boundAddress }, 'server port closed');
  }

  #localHello(): Hello {
    return {
      kind: 'hello',
      protocolVersion: this.#protocolVersion,
      datacenter: this.#datacenter,
      clusterId: this.#clusterId,
      serverId: this.#serverId,
      role: this.#role,
    };
  }

  /** Opens a tracked outbound connection; `address` has been parsed already. */
  #dial(address: string, events: ConnectionEvents): Connection {
    const target = parseAddress(address);
    assert(target !== null, 'dial of an unparsed address');
    const socket = createConnection({ host: target.host, port: target.port });
    return this.#track(socket, 'outbound', address, events);
  }

  #track(socket: Socket, direction: 'inbound' | 'outbound', remoteAddress: string, events: ConnectionEvents): Connection {
    const connection = new Connection({
      socket,
      direction,
      remoteAddress,
      localHello: () => this.#localHello(),
      handshakeTimeoutMs: this.#handshakeTimeoutMs,
      logger: this.#logger,
      events: {
        ...events,
        onClose: (closed, error) => {
          this.#connections.delete(closed);
          if (error.code === 'ERR_RPC_PROTOCOL') this.#badFrameCloseCount++;
          events.onClose(closed, error);
        },
      },
    });
    this.#connections.add(connection);
    return connection;
  }

  #createLink(id: ServerId, address: string): PeerLink {
    return new PeerLink({
      id,
      address,
      dial: (target, events) => this.#dial(target, events),
      random: this.#random,
      backoffMsMin: this.#backoffMsMin,
      backoffMsMax: this.#backoffMsMax,
      queueCountMax: this.#peerQueueCountMax,
      queueBytesMax: this.#peerQueueBytesMax,
      logger: this.#logger,
    });
  }

  #onInboundSocket(socket: Socket): void {
    const remoteAddress = formatAddress(socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0);
    if (this.#closed) {
      socket.destroy();
      return;
    }
    if (this.#inboundCount >= this.#inboundConnectionsMax) return this.#refuseSocket(socket, remoteAddress);
    this.#inboundCount++;
    this.#logger.debug({ remoteAddress }, 'accepted connection');
    this.#track(socket, 'inbound', remoteAddress, {
      onReady: (connection) => this.#notePeerClusterId(connection),
      onFrame: (connection, envelope) => this.#onInboundFrame(connection, envelope),
      onDrain: () => undefined,
      onClose: (connection) => {
        this.#inboundCount--;
        const remote = connection.remoteHello;
        if (remote !== null && remote.role === 'server' && remote.serverId !== null && !this.#closed) this.#peerLostHandler?.(remote.serverId);
      },
    });
  }

  /** Once per inbound handshake (not per message): the cluster id a server dialling us gave. */
  #notePeerClusterId(connection: Connection): void {
    const remote = connection.remoteHello;
    if (remote === null || remote.role !== 'server' || remote.serverId === null || remote.clusterId === null) return;
    if (this.#peerClusterIds.get(remote.serverId) === remote.clusterId) return;
    if (this.#peerClusterIds.size >= PEER_CLUSTER_IDS_MAX) this.#peerClusterIds.delete(this.#peerClusterIds.keys().next().value as string);
    this.#peerClusterIds.set(remote.serverId, remote.clusterId);
  }

  /** Over the connection limit: say so in a refuse frame, read and discard, close soon. */
  #refuseSocket(socket: Socket, remoteAddress: string): void {
    this.#refusedConnectionCount++;
    this.#logger.warn({ remoteAddress, inboundConnectionsMax: this.#inboundConnectionsMax }, 'refusing connection: too many inbound connections');
    this.#refusedSockets.add(socket);
    socket.on('error', () => undefined); // a reset from the refused peer is expected
    socket.on('close', () => this.#refusedSockets.delete(socket));
    socket.resume(); // consume its hello: closing with unread data would reset the connection
    const reason = `too many connections (max ${this.#inboundConnectionsMax})`;
    socket.end(encodeFrame({ kind: 'refuse', reason }, HANDSHAKE_FRAME_BYTES_MAX));
    setTimeout(() => socket.destroy(), this.#handshakeTimeoutMs).unref();
  }

  #onInboundFrame(connection: Connection, envelope: Envelope): void {
    switch (envelope.kind) {
      case 'raft':
        return this.#receiveRaft(connection, envelope.message);
      case 'request':
        return this.#serveRequest(connection, envelope);
      default:
        return connection.fail(new WireError('ERR_PROTOCOL', `unexpected ${envelope.kind} frame on an inbound connection`));
    }
  }

  #receiveRaft(connection: Connection, message: Message): void {
    const remote = connection.remoteHello;
    assert(remote !== null, 'frame before the handshake');
    // A peer speaks for itself only: a message claiming another sender is a protocol violation.
    if (remote.role !== 'server' || remote.serverId !== message.from || this.#role !== 'server') {
      return connection.fail(new WireError('ERR_PROTOCOL', `Raft message from ${message.from} on a connection from ${remote.serverId ?? 'a client agent'}`));
    }
    if (message.to !== this.#serverId || this.#messageHandler === null) {
      // Addressed to the server that used to listen here, or we are not wired up yet.
      this.#raftDroppedCount++;
      this.#logger.debug({ from: message.from, to: message.to, type: message.type }, 'dropping inbound Raft message');
      return;
    }
    this.#raftReceivedCount++;
    this.#messageHandler(message, remote.clusterId === null && this.#clusterId !== null);
  }

  #serveRequest(connection: Connection, request: RequestFrame): void {
    if (connection.requestsInProgress >= INBOUND_REQUESTS_PER_CONNECTION_MAX) {
      const message = `too many requests in progress on one connection (max ${INBOUND_REQUESTS_PER_CONNECTION_MAX})`;
      this.#reply(connection, encodeFrame({ kind: 'error', id: request.id, message, code: 'ERR_OVERLOADED' }));
      return;
    }
    connection.requestsInProgress++;
    const remote = connection.remoteHello;
    assert(remote !== null, 'request before the handshake');
    const context = { remoteServerId: remote.serverId, remoteAddress: connection.remoteAddress };
    // serve() rejects only with an AssertionError: left unhandled, it crashes the process, as a
    // bug must (STYLE §5).
    void this.#handlers.serve(request.method, request.payload, context).then((outcome) => {
      connection.requestsInProgress--;
      if (!connection.isClosed) this.#reply(connection, encodeOutcome(request, outcome));
    });
  }

  #reply(connection: Connection, frame: Buffer): void {
    if (connection.send(frame)) return;
    this.#logger.warn({ remoteAddress: connection.remoteAddress }, 'closing connection: peer does not read its responses');
    connection.close(rpcError('ERR_RPC_CONNECTION', `connection with ${connection.remoteAddress} closed: peer does not read`));
  }

  #rpcConnectionFor(address: string): Connection {
    const existing = this.#rpcConnections.get(address);
    if (existing !== undefined) return existing;
    if (parseAddress(address) === null) throw rpcError('ERR_RPC_ADDRESS', `not a host:port address: ${address}`);
    if (this.#rpcConnections.size >= OUTBOUND_RPC_CONNECTIONS_MAX) this.#evictIdleRpcConnection();
    const connection = this.#dial(address, {
      onReady: () => undefined,
      onFrame: (from, envelope) => this.#onRpcFrame(from, envelope),
      onDrain: () => undefined,
      onClose: (closed, error) => {
        if (this.#rpcConnections.get(address) === closed) this.#rpcConnections.delete(address);
        this.#pending.failRoute(closed, error);
      },
    });
    this.#rpcConnections.set(address, connection);
    return connection;
  }

  /** Makes room for one more RPC connection by closing one with nothing pending. */
  #evictIdleRpcConnection(): void {
    for (const connection of this.#rpcConnections.values()) {
      if (this.#pending.hasRoute(connection)) continue;
      connection.close(rpcError('ERR_RPC_CLOSED', 'idle connection evicted'));
      return;
    }
    throw rpcError('ERR_OVERLOADED', `calls pending on ${OUTBOUND_RPC_CONNECTIONS_MAX} addresses already`);
  }

  #onRpcFrame(connection: Connection, envelope: Envelope): void {
    let outcome: RpcOutcome;
    if (envelope.kind === 'response') outcome = { ok: true, payload: envelope.payload };
    else if (envelope.kind === 'error') outcome = { ok: false, message: envelope.message, code: envelope.code };
    else return connection.fail(new WireError('ERR_PROTOCOL', `unexpected ${envelope.kind} frame on an outbound RPC connection`));
    if (!this.#pending.settle(envelope.id, connection, outcome)) {
      this.#logger.debug({ remoteAddress: connection.remoteAddress, id: envelope.id }, 'response for no pending call (timed out)');
    }
  }
}

function assertIdentifier(value: string, what: string): void {
  assert(value.length > 0, `${what} must not be empty`);
  assert(value.length <= IDENTIFIER_LENGTH_MAX, `${what} too long`);
}
