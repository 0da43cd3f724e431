/**
 * The logging surface every component takes. Shaped like pino (which comes with Fastify), so a
 * pino logger or one of its children fits as is; tests pass `silentLogger` or a recorder.
 * Messages are constant; variables go in `fields` (STYLE §8): `log.info({ term }, 'became leader')`.
 */
export interface Logger {
  /** Per message or per frame: off in production. */
  debug(fields: object, message: string): void;
  /** Role, membership, connections coming and going. */
  info(fields: object, message: string): void;
  /** Degraded: a peer refused, a bad frame, a full queue. */
  warn(fields: object, message: string): void;
  /** An operator must act. */
  error(fields: object, message: string): void;
  /** A logger whose lines carry `bindings` (pino's child); optional so plain objects fit. */
  child?(bindings: Record<string, unknown>): Logger;
}

function discard(): void {
  // Intentionally empty: the silent logger drops every line.
}

/** A logger that drops everything: the default where no logger is passed. */
export const silentLogger: Logger = { debug: discard, info: discard, warn: discard, error: discard };
