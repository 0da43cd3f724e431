/**
 * Fastify wants a pino-shaped logger (`fatal`…`trace`, `child`, `level`); the project's Logger
 * interface has the four levels we use. This adapter maps one onto the other. `child()` returns
 * the same adapter: Fastify asks for a child per request (to bind a request id), and a new
 * object per GET is waste on the hot path when request logging is off anyway.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Logger } from '../lib/logger.js';

type Level = 'debug' | 'info' | 'warn' | 'error';

/** pino's call shapes: (fields, message) or (message). */
function forward(logger: Logger, level: Level): (first: unknown, second?: unknown) => void {
  return (first, second) => {
    if (typeof first === 'string') logger[level]({}, first);
    else logger[level]((first ?? {}) as object, typeof second === 'string' ? second : '');
  };
}

/** A Fastify logger that writes through `logger`. */
export function fastifyLoggerFor(logger: Logger): FastifyBaseLogger {
  const adapter = {
    level: 'info',
    fatal: forward(logger, 'error'),
    error: forward(logger, 'error'),
    warn: forward(logger, 'warn'),
    info: forward(logger, 'info'),
    debug: forward(logger, 'debug'),
    trace: forward(logger, 'debug'),
    silent: () => undefined,
    child: () => adapter,
  };
  return adapter as unknown as FastifyBaseLogger;
}
