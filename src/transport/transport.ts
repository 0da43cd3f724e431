import type { Message } from '../raft/core/messages.js';
import type { ServerId } from '../raft/core/types.js';

/**
 * How Raft messages travel between servers. One-way and best effort: a full queue or a broken
 * connection drops messages (Raft retransmits), it never blocks the caller.
 */
export interface RaftTransport {
  /** Queues `message` for `message.to`. Never throws for network conditions. */
  send(message: Message): void;
  /**
   * Registers the single receiver of inbound Raft messages. `unverified`: the sender gave no
   * cluster id at its handshake while we have one (a server still joining, or a stranger).
   */
  onMessage(handler: (message: Message, unverified: boolean) => void): void;
  /**
   * Registers the receiver of a hint: the connection on which a peer sends us Raft messages
   * closed (a killed process closes its sockets at once). Optional; only timing depends on it.
   */
  onPeerConnectionLost?(handler: (id: ServerId) => void): void;
  /** Tells the transport where a peer listens (from the Raft configuration or join). */
  setPeerAddress(id: ServerId, address: string): void;
  close(): Promise<void>;
}

/** A request/response call over the server port: forwarding, status reports, join. */
export interface RpcClient {
  /**
   * Calls `method` at `address` with a msgpack-able payload. Rejects with RpcError on timeout,
   * connection failure, handshake refusal or a remote error (its message kept).
   */
  call(address: string, method: string, payload: unknown, options?: { timeoutMs?: number }): Promise<unknown>;
}

/** Handlers for inbound RPC calls, by method name. A handler's thrown error goes back to the caller. */
export type RpcHandler = (payload: unknown, context: { remoteServerId: ServerId | null; remoteAddress: string }) => Promise<unknown>;
