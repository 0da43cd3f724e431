/**
 * Operating errors: expected failures (no leader, bad input, limits). Each carries a code and
 * the HTTP status Consul uses for it; src/http maps them in one place. Bodies are plain text.
 */
export type HttpStatus = 400 | 403 | 404 | 405 | 409 | 413 | 429 | 500 | 503;

/**
 * For a failed write: whether it may still take effect (X-Conclave-Outcome, RELIABILITY.md B1).
 * `not-applied`: refused before it was proposed; `unknown`: proposed, then the answer was lost.
 */
export type WriteOutcome = 'not-applied' | 'unknown';

export abstract class AgentError extends Error {
  abstract readonly code: `ERR_${string}`;
  abstract readonly statusCode: HttpStatus;
  /** Set on errors of writes; undefined for reads. */
  outcome: WriteOutcome | undefined = undefined;
}

/** Marks `error` with a write outcome and returns it (for `throw withOutcome(...)`). */
export function withOutcome<E extends AgentError>(error: E, outcome: WriteOutcome): E {
  error.outcome = outcome;
  return error;
}

/** A write whose fate is unknown: it was proposed, then timed out or lost its leader. */
export class UnknownOutcomeError extends AgentError {
  readonly code = 'ERR_WRITE_UNKNOWN';
  readonly statusCode = 500;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.outcome = 'unknown';
  }
}

/** No leader is known, or the leader could not be reached in time. */
export class NoLeaderError extends AgentError {
  readonly code = 'ERR_NO_LEADER';
  readonly statusCode = 500;
  constructor(message = 'No cluster leader', options?: ErrorOptions) {
    super(message, options);
  }
}

/** A request that is malformed or violates a documented rule. */
export class BadRequestError extends AgentError {
  readonly code = 'ERR_BAD_REQUEST';
  readonly statusCode = 400;
}

/** A request body or value beyond its limit. */
export class TooLargeError extends AgentError {
  readonly code = 'ERR_TOO_LARGE';
  readonly statusCode = 413;
}

/** Something the request names does not exist. */
export class NotFoundError extends AgentError {
  readonly code = 'ERR_NOT_FOUND';
  readonly statusCode = 404;
}

/** A failure Consul reports as 500 (invalid session, parse errors of some parameters, ...). */
export class InternalError extends AgentError {
  readonly code = 'ERR_INTERNAL';
  readonly statusCode = 500;
}

/** A bounded queue or limit is full; the caller may retry later. */
export class OverloadedError extends AgentError {
  readonly code = 'ERR_OVERLOADED';
  readonly statusCode = 429;
}

/** Configuration that cannot be used; start-up stops with this message. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly code = 'ERR_CONFIG';
}

/** Data on disk that is corrupt or inconsistent; start-up stops with this message. */
export class CorruptionError extends Error {
  override name = 'CorruptionError';
  readonly code = 'ERR_CORRUPT';
}
