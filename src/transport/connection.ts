import type { Socket } from 'node:net';
import { assert } from '../lib/assert.js';
import type { Logger } from '../lib/logger.js';
import type { Envelope, Hello } from './envelope.js';
import { handshakeMismatch } from './envelope.js';
import { FrameDecoder, encodeFrame } from './frame.js';
import {
  CONNECTION_WRITE_BUFFER_BYTES_MAX,
  FRAME_BYTES_MAX,
  HANDSHAKE_FRAME_BYTES_MAX,
  KEEPALIVE_INITIAL_DELAY_MS,
} from './limits.js';
import type { RpcError } from './rpc.js';
import { rpcError } from './rpc.js';
import { WireError } from './wire-error.js';

/** Who dialled: we did (outbound) or the peer did (inbound). */
export type ConnectionDirection = 'inbound' | 'outbound';

/** What a connection tells its owner. Each is called on the event loop, never re-entrantly. */
export interface ConnectionEvents {
  /** The handshake completed; frames may flow both ways. */
  onReady(connection: Connection): void;
  /** A frame after the handshake: never a hello or a refuse. */
  onFrame(connection: Connection, envelope: Envelope): void;
  /** The socket has room again after `writeBatch` stopped early. */
  onDrain(connection: Connection): void;
  /** The connection is gone, for `error`'s reason (what pending calls reject with). Called once. */
  onClose(connection: Connection, error: RpcError): void;
}

/** Everything a connection needs; the socket is fresh (inbound) or still connecting (outbound). */
export interface ConnectionOptions {
  readonly socket: Socket;
  readonly direction: ConnectionDirection;
  /** host:port of the other end, for logs and errors. */
  readonly remoteAddress: string;
  /** Our hello, read when it is sent: a server learns its cluster id after it starts. */
  readonly localHello: () => Hello;
  readonly handshakeTimeoutMs: number;
  readonly logger: Logger;
  readonly events: ConnectionEvents;
}

type ConnectionState = 'connecting' | 'handshaking' | 'ready' | 'closed';

/** How long a refused peer gets to read our refusal before the socket is destroyed. */
const REFUSAL_LINGER_MS = 1_000;

/**
 * One socket on the server port: the handshake, the frame decoder, batched writes and one close
 * path. A bad frame closes this connection only (RELIABILITY P8). The dialer sends its hello
 * first; the acceptor checks it, answers with its own hello, and on a mismatch adds a refuse
 * frame and closes. Both sides run the same checks, so both logs say why. Frames queued before
 * the handshake completes wait for it: nothing but a hello crosses to an unvetted peer.
 */
export class Connection {
  readonly direction: ConnectionDirection;
  readonly remoteAddress: string;
  /** Inbound requests being served on this connection (bounded by the transport). */
  requestsInProgress = 0;
  readonly #socket: Socket;
  readonly #options: ConnectionOptions;
  readonly #decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
  readonly #handshakeTimer: NodeJS.Timeout;
  #state: ConnectionState;
  #remoteHello: Hello | null = null;
  #outbox: Buffer[] = [];
  #outboxBytes = 0;
  #flushScheduled = false;

  constructor(options: ConnectionOptions) {
    this.#options = options;
    this.#socket = options.socket;
    this.direction = options.direction;
    this.remoteAddress = options.remoteAddress;
    this.#state = options.direction === 'outbound' ? 'connecting' : 'handshaking';
    this.#handshakeTimer = setTimeout(() => this.#onHandshakeTimeout(), options.handshakeTimeoutMs);
    this.#socket.setNoDelay(true); // we batch per turn ourselves; Nagle would only delay heartbeats
    this.#socket.setKeepAlive(true, KEEPALIVE_INITIAL_DELAY_MS);
    this.#socket.on('connect', () => this.#onConnect());
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#socket.on('end', () => this.#onEnd());
    this.#socket.on('drain', () => {
      if (this.#state === 'ready') this.#options.events.onDrain(this);
    });
    this.#socket.on('error', (error: Error) => this.#onSocketError(error));
    this.#socket.on('close', () => this.close(rpcError('ERR_RPC_CONNECTION', `connection with ${this.remoteAddress} closed`)));
  }

  /** The peer's hello, once received. */
  get remoteHello(): Hello | null {
    return this.#remoteHello;
  }

  /** True once the handshake completed, until the connection closes. */
  get isReady(): boolean {
    return this.#state === 'ready';
  }

  /** True once closed, for whatever reason. */
  get isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** True when a batch written now would reach the socket without waiting for a drain. */
  get canWrite(): boolean {
    return this.#state === 'ready' && !this.#socket.writableNeedDrain;
  }

  /**
   * Queues one encoded frame; all frames queued in one turn reach the socket in a single corked
   * write. Before the handshake completes frames wait; after close they are dropped (the owner
   * learns of the close through onClose). Returns false, queueing nothing, when the frame would
   * take what is buffered for this peer over CONNECTION_WRITE_BUFFER_BYTES_MAX.
   */
  send(frame: Buffer): boolean {
    if (this.#state === 'closed') return true;
    const bufferedBytes = this.#outboxBytes + this.#socket.writableLength;
    if (bufferedBytes + frame.byteLength > CONNECTION_WRITE_BUFFER_BYTES_MAX) return false;
    this.#outbox.push(frame);
    this.#outboxBytes += frame.byteLength;
    if (this.#state === 'ready') this.#scheduleFlush();
    return true;
  }

  /**
   * Writes frames pulled from `next` in one corked batch until it returns undefined or the socket
   * asks us to wait (then onDrain follows). For owners with their own bounded queue (Raft peers).
   */
  writeBatch(next: () => Buffer | undefined): void {
    assert(this.#state === 'ready', 'writeBatch before the handshake');
    if (this.#socket.writableNeedDrain) return;
    this.#socket.cork();
    try {
      for (let frame = next(); frame !== undefined; frame = next()) {
        if (!this.#socket.write(frame)) break;
      }
    } finally {
      this.#socket.uncork();
    }
  }

  /** Closes because the peer broke the protocol: logged with its address, then closed. */
  fail(error: WireError): void {
    if (this.#state === 'closed') return;
    this.#options.logger.warn(
      { ...this.#logFields(), code: error.code, reason: error.message },
      'closing connection: bad frame from peer',
    );
    this.close(rpcError('ERR_RPC_PROTOCOL', `connection with ${this.remoteAddress} closed: ${error.message}`, error));
  }

  /**
   * Tells the peer why we stop talking (a refuse frame, which its pending calls reject with),
   * then closes once that is flushed. For a cluster id learned after the handshake.
   */
  refuse(reason: string, error: RpcError): void {
    if (this.#state === 'closed') return;
    if (this.#state !== 'connecting') this.#socket.write(encodeFrame({ kind: 'refuse', reason }, HANDSHAKE_FRAME_BYTES_MAX));
    this.close(error, true);
  }

  /**
   * Closes now (or, if `graceful`, after what is already written is flushed). Idempotent; the
   * first reason wins and is what onClose reports.
   */
  close(error: RpcError, graceful = false): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#handshakeTimer);
    this.#outbox = [];
    this.#outboxBytes = 0;
    if (graceful) {
      this.#socket.end();
      const linger = setTimeout(() => this.#socket.destroy(), REFUSAL_LINGER_MS);
      linger.unref();
      this.#socket.once('close', () => clearTimeout(linger));
    } else {
      this.#socket.destroy();
    }
    this.#options.logger.debug({ ...this.#logFields(), reason: error.message }, 'connection closed');
    this.#options.events.onClose(this, error);
  }

  #logFields(): Record<string, unknown> {
    return { remoteAddress: this.remoteAddress, direction: this.direction, remoteServerId: this.#remoteHello?.serverId ?? null };
  }

  #onConnect(): void {
    if (this.#state !== 'connecting') return;
    this.#state = 'handshaking';
    this.#socket.write(encodeFrame(this.#options.localHello(), HANDSHAKE_FRAME_BYTES_MAX));
  }

  #onData(chunk: Buffer): void {
    if (this.isClosed) return;
    this.#decoder.push(chunk);
    // isClosed, not #state: a frame handler may close us, which narrowing would not see.
    while (!this.isClosed) {
      let envelope: Envelope | null;
      try {
        envelope = this.#decoder.next();
      } catch (error) {
        if (!(error instanceof WireError)) throw error;
        this.fail(error);
        return;
      }
      if (envelope === null) return;
      this.#dispatch(envelope);
    }
  }

  #dispatch(envelope: Envelope): void {
    if (envelope.kind === 'refuse' && this.direction === 'outbound') return this.#onRefused(envelope.reason);
    if (this.#state === 'handshaking') {
      if (envelope.kind !== 'hello') return this.fail(new WireError('ERR_PROTOCOL', `expected a hello, got a ${envelope.kind} frame`));
      return this.#onHello(envelope);
    }
    if (envelope.kind === 'hello' || envelope.kind === 'refuse') {
      return this.fail(new WireError('ERR_PROTOCOL', `unexpected ${envelope.kind} frame after the handshake`));
    }
    this.#options.events.onFrame(this, envelope);
  }

  #onHello(remote: Hello): void {
    const local = this.#options.localHello();
    this.#remoteHello = remote;
    let mismatch = handshakeMismatch(local, remote);
    if (this.direction === 'inbound') {
      // Always answer with our hello, so a refused dialer can tell its operator why.
      this.#socket.write(encodeFrame(local, HANDSHAKE_FRAME_BYTES_MAX));
      if (mismatch !== null) this.#socket.write(encodeFrame({ kind: 'refuse', reason: mismatch }, HANDSHAKE_FRAME_BYTES_MAX));
    } else if (mismatch === null && remote.role !== 'server') {
      mismatch = 'peer is a client agent; only servers accept connections';
    }
    if (mismatch !== null) {
      this.#options.logger.warn({ ...this.#logFields(), reason: mismatch }, 'refused handshake');
      const message = `handshake with ${this.remoteAddress} refused: ${mismatch}`;
      return this.close(rpcError('ERR_RPC_HANDSHAKE', message), this.direction === 'inbound');
    }
    this.#becomeReady();
  }

  #onRefused(reason: string): void {
    this.#options.logger.warn({ ...this.#logFields(), reason }, 'peer refused handshake');
    this.close(rpcError('ERR_RPC_HANDSHAKE', `${this.remoteAddress} refused the handshake: ${reason}`));
  }

  #becomeReady(): void {
    assert(this.#state === 'handshaking', 'ready twice');
    assert(this.#remoteHello !== null, 'ready without a hello');
    this.#state = 'ready';
    clearTimeout(this.#handshakeTimer);
    this.#decoder.setFrameBytesMax(FRAME_BYTES_MAX);
    this.#options.logger.debug(this.#logFields(), 'connection ready');
    this.#options.events.onReady(this);
    if (this.#outbox.length > 0) this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // setImmediate runs after this event-loop pass has handled all its I/O: every frame queued by
    // every callback of the pass (RPC replies to many requests, several Readies) goes out in one
    // writev. A syscall per frame was ~15% of a busy leader's CPU; this adds no waiting beyond
    // the current pass.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#state !== 'ready' || this.#outbox.length === 0) return;
    const frames = this.#outbox;
    this.#outbox = [];
    this.#outboxBytes = 0;
    this.#socket.cork();
    for (const frame of frames) this.#socket.write(frame);
    this.#socket.uncork();
  }

  #onEnd(): void {
    try {
      this.#decoder.end();
    } catch (error) {
      if (!(error instanceof WireError)) throw error;
      if (this.#state !== 'closed') return this.fail(error);
    }
    this.close(rpcError('ERR_RPC_CONNECTION', `connection closed by ${this.remoteAddress}`));
  }

  #onSocketError(error: Error): void {
    const during = this.#state === 'connecting' ? 'cannot connect to' : 'connection failed with';
    this.close(rpcError('ERR_RPC_CONNECTION', `${during} ${this.remoteAddress}: ${error.message}`, error));
  }

  #onHandshakeTimeout(): void {
    if (this.#state === 'closed' || this.#state === 'ready') return;
    const connecting = this.#state === 'connecting';
    const message = connecting
      ? `could not connect to ${this.remoteAddress} within ${this.#options.handshakeTimeoutMs} ms`
      : `no handshake with ${this.remoteAddress} within ${this.#options.handshakeTimeoutMs} ms`;
    this.#options.logger.warn({ ...this.#logFields(), timeoutMs: this.#options.handshakeTimeoutMs }, 'handshake timed out');
    this.close(rpcError(connecting ? 'ERR_RPC_CONNECTION' : 'ERR_RPC_HANDSHAKE', message));
  }
}
