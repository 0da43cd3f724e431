import { AssertionError, assert } from '../lib/assert.js';
import type { RpcHandler } from './transport.js';
import { ERROR_CODE_LENGTH_MAX, ERROR_MESSAGE_LENGTH_MAX, METHOD_NAME_LENGTH_MAX, RPC_TIMEOUT_MS_MAX } from './limits.js';

/**
 * Codes the transport itself gives an RpcError (a remote handler's error keeps the remote code):
 * - ERR_RPC_TIMEOUT: no response in time; the call may still run, or have run, remotely;
 * - ERR_RPC_CONNECTION: could not connect, or the connection broke while the call was pending;
 * - ERR_RPC_HANDSHAKE: the peer speaks another protocol version, or lives in another
 *   datacenter or cluster (the message says which);
 * - ERR_RPC_PROTOCOL: the peer sent a bad frame, so the connection was closed;
 * - ERR_RPC_CLOSED: this transport was closed;
 * - ERR_RPC_ADDRESS: the address is not host:port;
 * - ERR_RPC_NO_HANDLER: the peer has no handler for the method (sent by the remote);
 * - ERR_OVERLOADED: too many calls pending here, or in progress there (as OverloadedError, 429);
 * - ERR_TOO_LARGE: a request or response over the frame limit (as TooLargeError, 413).
 */
export type RpcErrorCode =
  | 'ERR_RPC_TIMEOUT'
  | 'ERR_RPC_CONNECTION'
  | 'ERR_RPC_HANDSHAKE'
  | 'ERR_RPC_PROTOCOL'
  | 'ERR_RPC_CLOSED'
  | 'ERR_RPC_ADDRESS'
  | 'ERR_RPC_NO_HANDLER'
  | 'ERR_OVERLOADED'
  | 'ERR_TOO_LARGE';

/**
 * Why a call failed. `remote` tells a handler's error at the callee (message and code as it threw
 * them, so the HTTP layer can map e.g. ERR_NO_LEADER) from a failure here or on the way.
 */
export class RpcError extends Error {
  override name = 'RpcError';
  /** The remote error's code (null if it had none), or one of RpcErrorCode. */
  readonly code: string | null;
  /** True when the callee's handler threw this; false when the call failed in transit. */
  readonly remote: boolean;

  constructor(message: string, options: { code: string | null; remote?: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.remote = options.remote ?? false;
  }
}

/** Makes a transport-side RpcError. */
export function rpcError(code: RpcErrorCode, message: string, cause?: unknown): RpcError {
  return new RpcError(message, cause === undefined ? { code } : { code, cause });
}

/** The inbound side of RPC: handlers register by method name ("KVS.Apply"). */
export interface RpcRegistry {
  /** Registers the handler for `method`; each method has exactly one. */
  handle(method: string, handler: RpcHandler): void;
}

/** How a served request ended: a result to send back, or an error to send back. */
export type RpcOutcome =
  | { readonly ok: true; readonly payload: unknown }
  | { readonly ok: false; readonly message: string; readonly code: string | null };

/** Asserts that a method name is one a frame can carry (names are ours, so this is a bug check). */
export function assertMethodName(method: string): void {
  assert(method.length > 0, 'empty RPC method name');
  assert(method.length <= METHOD_NAME_LENGTH_MAX, 'RPC method name too long');
}

/** Asserts a caller-chosen timeout is in range: the limits are ours, so a bad one is a bug. */
export function assertTimeoutMs(timeoutMs: number): void {
  assert(Number.isSafeInteger(timeoutMs), 'RPC timeout must be an integer number of ms');
  assert(timeoutMs > 0, 'RPC timeout must be positive');
  assert(timeoutMs <= RPC_TIMEOUT_MS_MAX, 'RPC timeout above RPC_TIMEOUT_MS_MAX');
}

/**
 * The handler table and the one place that turns a handler's outcome into what goes back on the
 * wire. Shared by the TCP and memory transports so both report errors identically.
 */
export class RpcHandlers implements RpcRegistry {
  readonly #handlers = new Map<string, RpcHandler>();

  handle(method: string, handler: RpcHandler): void {
    assertMethodName(method);
    assert(!this.#handlers.has(method), `RPC method ${method} registered twice`);
    this.#handlers.set(method, handler);
  }

  /**
   * Runs the handler for `method`. Never rejects for a handler's operating error: that becomes
   * an error outcome with its message and code. An AssertionError is a bug in our own code and is
   * rethrown, never turned into a reply (STYLE §5).
   */
  async serve(method: string, payload: unknown, context: Parameters<RpcHandler>[1]): Promise<RpcOutcome> {
    const handler = this.#handlers.get(method);
    if (handler === undefined) return { ok: false, message: `no handler for RPC method ${method}`, code: 'ERR_RPC_NO_HANDLER' };
    try {
      return { ok: true, payload: await handler(payload, context) };
    } catch (error) {
      if (error instanceof AssertionError) throw error;
      return errorOutcome(error);
    }
  }
}

/** A thrown value as it travels back: message and string code, both cut to their limits. */
export function errorOutcome(error: unknown): RpcOutcome {
  const message = error instanceof Error ? error.message : `non-error thrown: ${String(error)}`;
  const code = (error as { code?: unknown } | null)?.code;
  return {
    ok: false,
    message: message.slice(0, ERROR_MESSAGE_LENGTH_MAX),
    code: typeof code === 'string' && code.length > 0 ? code.slice(0, ERROR_CODE_LENGTH_MAX) : null,
  };
}

interface PendingCall<Route> {
  readonly route: Route;
  readonly resolve: (payload: unknown) => void;
  readonly reject: (error: RpcError) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Calls awaiting a response: ids, timeouts and a bound. `Route` is what a response must come back
 * on (the TCP connection, or the callee's address in memory): a response from elsewhere with a
 * matching id is ignored, and a broken route fails exactly the calls that used it.
 */
export class PendingCalls<Route> {
  readonly #calls = new Map<number, PendingCall<Route>>();
  readonly #countMax: number;
  #nextId = 1;

  constructor(countMax: number) {
    assert(Number.isSafeInteger(countMax) && countMax > 0, 'pending call bound must be positive');
    this.#countMax = countMax;
  }

  /** Calls in progress. */
  get size(): number {
    return this.#calls.size;
  }

  /** True when no further call may start. */
  get isFull(): boolean {
    return this.#calls.size >= this.#countMax;
  }

  /** A fresh request id: allocated before encoding, so a frame that fails to encode costs nothing. */
  allocateId(): number {
    return this.#nextId++;
  }

  /**
   * Starts call `id`: the promise of its result, which rejects with ERR_RPC_TIMEOUT after
   * `timeoutMs`. The caller must check `isFull` first.
   */
  start(id: number, route: Route, timeoutMs: number, label: string): Promise<unknown> {
    assert(!this.isFull, 'pending calls over their bound');
    assert(!this.#calls.has(id), 'request id reused');
    assertTimeoutMs(timeoutMs);
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#calls.delete(id);
        reject(rpcError('ERR_RPC_TIMEOUT', `${label} timed out after ${timeoutMs} ms; it may still run remotely`));
      }, timeoutMs);
      this.#calls.set(id, { route, resolve, reject, timer });
    });
  }

  /** True when some call is pending on `route` (linear: used only to pick a connection to evict). */
  hasRoute(route: Route): boolean {
    for (const call of this.#calls.values()) if (call.route === route) return true;
    return false;
  }

  /**
   * Settles call `id` if it is pending on `route`. Returns false for an unknown id (it timed out
   * already, or was never ours): not a protocol error, since a late response is normal.
   */
  settle(id: number, route: Route, outcome: RpcOutcome): boolean {
    const call = this.#calls.get(id);
    if (call === undefined || call.route !== route) return false;
    this.#calls.delete(id);
    clearTimeout(call.timer);
    if (outcome.ok) call.resolve(outcome.payload);
    else call.reject(new RpcError(outcome.message, { code: outcome.code, remote: true }));
    return true;
  }

  /** Fails call `id` (a frame that could not be sent, ...). */
  fail(id: number, error: RpcError): void {
    const call = this.#calls.get(id);
    if (call === undefined) return;
    this.#calls.delete(id);
    clearTimeout(call.timer);
    call.reject(error);
  }

  /** Fails every call pending on `route`: its connection broke. */
  failRoute(route: Route, error: RpcError): void {
    for (const [id, call] of this.#calls) {
      if (call.route === route) this.fail(id, error);
    }
  }

  /** Fails every pending call: the transport is closing. */
  failAll(error: RpcError): void {
    for (const id of [...this.#calls.keys()]) this.fail(id, error);
  }
}
