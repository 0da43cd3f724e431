import { assert } from '../lib/assert.js';
import type { Logger } from '../lib/logger.js';
import type { ServerId } from '../raft/core/types.js';
import type { RandomSource } from './backoff.js';
import { backoffDelayMs } from './backoff.js';
import type { Connection, ConnectionEvents } from './connection.js';
import type { RpcError } from './rpc.js';
import { rpcError } from './rpc.js';
import { WireError } from './wire-error.js';

/** Where a peer link is: no connection wanted, dialling, usable, waiting to redial, or closed. */
export type PeerLinkState = 'idle' | 'connecting' | 'ready' | 'backoff' | 'closed';

/** Counters for one peer, for tests, metrics and /v1/debug. */
export interface PeerLinkStats {
  readonly state: PeerLinkState;
  readonly address: string;
  readonly queuedCount: number;
  readonly queuedBytes: number;
  /** Frames dropped because the queue was full (oldest first), since the link was created. */
  readonly droppedCount: number;
  /** Frames handed to the socket. */
  readonly sentCount: number;
}

/** What a link needs from its transport. */
export interface PeerLinkOptions {
  readonly id: ServerId;
  readonly address: string;
  /** Opens an outbound connection to `address` reporting to `events`. */
  readonly dial: (address: string, events: ConnectionEvents) => Connection;
  readonly random: RandomSource;
  readonly backoffMsMin: number;
  readonly backoffMsMax: number;
  readonly queueCountMax: number;
  readonly queueBytesMax: number;
  readonly logger: Logger;
}

/**
 * The outbound Raft path to one peer: a bounded queue and one lazily dialled connection,
 * redialled with backoff while there is something to send. Frames go out in queue order,
 * pipelined (nothing waits for a response), in one corked write per turn and only as fast as the
 * socket drains, so the queue, not the socket buffer, is what grows when the peer is slow.
 *
 * When the queue is full the OLDEST frame is dropped: after an outage the newest messages (the
 * current term's votes, the latest heartbeat and commit index) are the ones worth delivering, and
 * stale ones (an old election's RequestVote, AppendEntries the leader has since retried) would
 * only delay them. Raft retransmits whatever is lost.
 */
export class PeerLink {
  readonly id: ServerId;
  readonly #options: PeerLinkOptions;
  readonly #queue: Buffer[] = [];
  #address: string;
  #queuedBytes = 0;
  #droppedCount = 0;
  #sentCount = 0;
  #state: PeerLinkState = 'idle';
  #connection: Connection | null = null;
  #failedAttempts = 0;
  #backoffTimer: NodeJS.Timeout | null = null;
  #flushScheduled = false;
  /** Set while dropping, so a full queue is logged once per episode, not once per frame. */
  #dropping = false;
  /** Set once unreachability was logged at warn; later failures log at debug until we connect. */
  #reportedUnreachable = false;

  constructor(options: PeerLinkOptions) {
    assert(options.queueCountMax > 0, 'peer queue must hold at least one frame');
    assert(options.queueBytesMax > 0, 'peer queue must hold at least one byte');
    this.#options = options;
    this.id = options.id;
    this.#address = options.address;
  }

  /** Queues one encoded frame, dropping the oldest when over a bound; dials if idle. */
  enqueue(frame: Buffer): void {
    if (this.#state === 'closed') return;
    assert(frame.byteLength <= this.#options.queueBytesMax, 'a frame larger than the whole peer queue');
    this.#queue.push(frame);
    this.#queuedBytes += frame.byteLength;
    while (this.#queue.length > this.#options.queueCountMax || this.#queuedBytes > this.#options.queueBytesMax) {
      this.#dropOldest();
    }
    if (this.#state === 'idle') this.#dial();
    else if (this.#state === 'ready') this.#scheduleFlush();
  }

  /** Points the link elsewhere: the current connection closes, queued frames stay. */
  setAddress(address: string): void {
    if (address === this.#address || this.#state === 'closed') return;
    this.#address = address;
    this.#failedAttempts = 0;
    this.#cancelBackoff();
    const connection = this.#connection;
    this.#connection = null;
    this.#state = 'idle';
    connection?.close(rpcError('ERR_RPC_CLOSED', `peer ${this.id} moved to ${address}`));
    if (this.#queue.length > 0) this.#dial();
  }

  /**
   * Drops the current connection and dials again (re-resolving a host name). For a connection
   * that is open but silent: after a partition heals, TCP may keep retransmitting into it with
   * back-off for minutes, or to an address the peer no longer has.
   */
  reconnect(): void {
    if (this.#state === 'closed') return;
    this.#failedAttempts = 0;
    this.#cancelBackoff();
    const connection = this.#connection;
    this.#connection = null;
    this.#state = 'idle';
    connection?.close(rpcError('ERR_RPC_CONNECTION', `connection with peer ${this.id} reset: nothing heard from it`));
    if (this.#queue.length > 0) this.#dial();
  }

  /** Closes the connection and forgets the queue; the link is unusable afterwards. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#cancelBackoff();
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    const connection = this.#connection;
    this.#connection = null;
    connection?.close(rpcError('ERR_RPC_CLOSED', 'transport closed'));
  }

  /** Counters and state. */
  stats(): PeerLinkStats {
    return {
      state: this.#state,
      address: this.#address,
      queuedCount: this.#queue.length,
      queuedBytes: this.#queuedBytes,
      droppedCount: this.#droppedCount,
      sentCount: this.#sentCount,
    };
  }

  #dropOldest(): void {
    const dropped = this.#queue.shift();
    assert(dropped !== undefined, 'dropping from an empty queue');
    this.#queuedBytes -= dropped.byteLength;
    this.#droppedCount++;
    if (!this.#dropping) {
      this.#dropping = true;
      this.#options.logger.warn(
        { peerId: this.id, address: this.#address, state: this.#state, droppedCount: this.#droppedCount },
        'peer send queue full: dropping oldest Raft messages',
      );
    }
  }

  #dial(): void {
    assert(this.#state === 'idle' || this.#state === 'backoff', 'dial from a busy state');
    this.#state = 'connecting';
    const connection = this.#options.dial(this.#address, {
      onReady: () => this.#onReady(connection),
      onFrame: (from) => from.fail(new WireError('ERR_PROTOCOL', 'a frame arrived on an outbound Raft connection')),
      onDrain: () => this.#scheduleFlush(),
      onClose: (_, error) => this.#onClose(connection, error),
    });
    // Events arrive from socket callbacks only, so none can have fired before this line.
    assert(!connection.isClosed, 'dial must not close synchronously');
    this.#connection = connection;
  }

  #onReady(connection: Connection): void {
    if (connection !== this.#connection || this.#state !== 'connecting') return;
    this.#state = 'ready';
    this.#failedAttempts = 0;
    if (this.#reportedUnreachable) this.#options.logger.info({ peerId: this.id, address: this.#address }, 'peer reachable again');
    this.#reportedUnreachable = false;
    this.#scheduleFlush();
  }

  #onClose(connection: Connection, error: RpcError): void {
    if (this.#state === 'closed' || connection !== this.#connection) return; // a replaced connection
    const wasReady = this.#state === 'ready';
    this.#connection = null;
    this.#state = 'idle';
    const fields = { peerId: this.id, address: this.#address, reason: error.message };
    if (wasReady) {
      this.#options.logger.info(fields, 'lost connection to peer');
    } else if (!this.#reportedUnreachable) {
      this.#reportedUnreachable = true;
      this.#options.logger.warn(fields, 'cannot reach peer; retrying with backoff');
    } else {
      this.#options.logger.debug(fields, 'cannot reach peer');
    }
    // Even a connection that was up waits out a (short, first-step) backoff before the redial:
    // a peer that accepts and then drops us at once must not make us spin.
    this.#failedAttempts++;
    this.#scheduleRedial();
  }

  #scheduleRedial(): void {
    const delayMs = backoffDelayMs(this.#failedAttempts, this.#options.random, this.#options.backoffMsMin, this.#options.backoffMsMax);
    this.#state = 'backoff';
    this.#backoffTimer = setTimeout(() => {
      this.#backoffTimer = null;
      if (this.#state !== 'backoff') return;
      this.#state = 'idle';
      if (this.#queue.length > 0) this.#dial();
    }, delayMs);
    this.#backoffTimer.unref();
  }

  #cancelBackoff(): void {
    if (this.#backoffTimer !== null) clearTimeout(this.#backoffTimer);
    this.#backoffTimer = null;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Every frame queued in this event-loop pass (all the Readies of the driver's turns, all
    // heartbeats) goes out in one corked write; see Connection.#scheduleFlush.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const connection = this.#connection;
    if (this.#state !== 'ready' || connection === null || !connection.canWrite) return;
    connection.writeBatch(() => {
      const frame = this.#queue.shift();
      if (frame === undefined) return undefined;
      this.#queuedBytes -= frame.byteLength;
      this.#sentCount++;
      return frame;
    });
    if (this.#queue.length === 0) this.#dropping = false;
  }
}
