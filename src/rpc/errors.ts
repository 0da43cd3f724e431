import type { AgentError, WriteOutcome } from '../lib/errors.js';
import {
  BadRequestError,
  InternalError,
  NoLeaderError,
  NotFoundError,
  OverloadedError,
  TooLargeError,
  UnknownOutcomeError,
  withOutcome,
} from '../lib/errors.js';
import { RpcError } from '../transport/rpc.js';

/**
 * Errors that crossed an RPC hop become AgentErrors again, with Consul's prefix
 * (`rpc error making call: No cluster leader`, consul-api.md §2) and, for writes, whether the
 * write may have happened: a refusal by the remote handler is `not-applied` unless it says
 * otherwise; a call lost in transit after it was sent is `unknown`.
 */
const PREFIX = 'rpc error making call: ';

export function fromRpcError(error: unknown): AgentError {
  if (!(error instanceof RpcError)) {
    return new UnknownOutcomeError(`${PREFIX}${error instanceof Error ? error.message : String(error)}`);
  }
  const message = error.message.startsWith(PREFIX) ? error.message : `${PREFIX}${error.message}`;
  const notApplied = (e: AgentError): AgentError => withOutcome(e, 'not-applied');
  switch (error.code) {
    case 'ERR_NO_LEADER':
      return notApplied(new NoLeaderError(message));
    case 'ERR_WRITE_UNKNOWN':
      return new UnknownOutcomeError(message);
    case 'ERR_OVERLOADED':
      return notApplied(new OverloadedError(message));
    case 'ERR_TOO_LARGE':
      return notApplied(new TooLargeError(error.remote ? error.message : message));
    case 'ERR_BAD_REQUEST':
      return notApplied(new BadRequestError(error.message));
    case 'ERR_NOT_FOUND':
      return notApplied(new NotFoundError(error.message));
    case 'ERR_RPC_HANDSHAKE':
    case 'ERR_RPC_ADDRESS':
    case 'ERR_RPC_CLOSED':
    case 'ERR_RPC_NO_HANDLER':
      return notApplied(new InternalError(message));
    default: {
      // Lost in transit after it was sent: the outcome is unknown, and it must stay unknown
      // across further hops, so the error carries ERR_WRITE_UNKNOWN as its code.
      if (!error.remote) return new UnknownOutcomeError(message);
      const outcome: WriteOutcome = 'not-applied';
      return withOutcome(new InternalError(error.message), outcome);
    }
  }
}
