import { AssertionError, assert } from '../lib/assert.js';
import type { Message } from '../raft/core/messages.js';
import type { Envelope, RequestFrame } from './envelope.js';
import { findNonPlainData } from './envelope.js';
import { encodeFrame } from './frame.js';
import type { RpcOutcome } from './rpc.js';
import { RpcError, rpcError } from './rpc.js';
import { validateMessage } from './validate-message.js';
import { WireError } from './wire-error.js';

/**
 * Encoding of what we send, shared by the TCP and memory transports. Assert before encoding
 * (STYLE §5): our own code must never emit a frame a peer would refuse, because the peer would
 * close the connection and fail every call on it.
 */

/** Encodes a Raft message; an invalid or oversized one is a core bug (the core bounds its messages). */
export function encodeRaftFrame(message: Message): Buffer {
  try {
    validateMessage(message);
    return encodeFrame({ kind: 'raft', message });
  } catch (error) {
    if (error instanceof WireError) throw new AssertionError(`cannot send Raft ${message.type}: ${error.message}`);
    throw error;
  }
}

/** Encodes an RPC request; a payload over the frame limit is an operating error (ERR_TOO_LARGE). */
export function encodeRequestFrame(id: number, method: string, payload: unknown): Buffer {
  const problem = findNonPlainData(payload, 'payload', true);
  assert(problem === null, `RPC ${method}: ${problem ?? ''} is not plain data`);
  return encodeOrTooLarge({ kind: 'request', id, method, payload }, `request for ${method}`);
}

/** The reply to a served request; a result too large for a frame becomes an ERR_TOO_LARGE error. */
export function encodeOutcome(request: RequestFrame, outcome: RpcOutcome): Buffer {
  if (!outcome.ok) return encodeFrame({ kind: 'error', id: request.id, message: outcome.message, code: outcome.code });
  const problem = findNonPlainData(outcome.payload, 'result', true);
  assert(problem === null, `RPC ${request.method} handler returned non-plain data at ${problem ?? ''}`);
  try {
    return encodeOrTooLarge({ kind: 'response', id: request.id, payload: outcome.payload }, `result of ${request.method}`);
  } catch (error) {
    if (!(error instanceof RpcError) || error.code !== 'ERR_TOO_LARGE') throw error;
    return encodeFrame({ kind: 'error', id: request.id, message: error.message, code: 'ERR_TOO_LARGE' });
  }
}

function encodeOrTooLarge(envelope: Envelope, what: string): Buffer {
  try {
    return encodeFrame(envelope);
  } catch (error) {
    if (error instanceof WireError && error.code === 'ERR_FRAME_TOO_LARGE') {
      throw rpcError('ERR_TOO_LARGE', `${what} too large: ${error.message}`, error);
    }
    throw error;
  }
}
