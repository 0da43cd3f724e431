/**
 * The one error map of the HTTP API (STYLE §6). Operating errors become Consul's plain-text
 * answers: an AgentError carries its status (400, 404, 413, 429, 500, ...); a Fastify validation
 * error is 400; Fastify's own client errors (a bad Content-Length, ...) keep their 4xx; anything
 * else is a 500 with the error's text, as Consul answers unknown errors (and Go clients retry 500s).
 *
 * A write error carrying `outcome` tells the client whether the write may still land
 * (`X-Conclave-Outcome: not-applied|unknown`, RELIABILITY.md B1).
 *
 * An AssertionError is a bug, not a 500: it goes to `onBug` (log and exit the process) and the
 * connection is dropped without an answer.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AssertionError } from '../lib/assert.js';
import { AgentError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

/** `Content-Type` of every error and plain-text answer (what Go's sniffing gives Consul's). */
export const TEXT_CONTENT_TYPE = 'text/plain; charset=utf-8';

/** Called with a programmer error; the default logs it and exits. Never returns in production. */
export type BugHandler = (error: AssertionError) => void;

/** Exit status for a bug (BSD EX_SOFTWARE): distinguishable from a clean stop or a config error. */
const EXIT_CODE_BUG = 70;

/** The default BugHandler: log at error level, then end the process at once. */
export function exitOnBug(logger: Logger): BugHandler {
  return (error) => {
    logger.error({ err: error, stack: error.stack }, 'assertion failed in the HTTP API: exiting');
    process.exit(EXIT_CODE_BUG);
  };
}

/** The write outcome an error carries, if any (the agent sets it on write errors). */
function outcomeOf(error: unknown): 'not-applied' | 'unknown' | null {
  const outcome = (error as { outcome?: unknown }).outcome;
  return outcome === 'not-applied' || outcome === 'unknown' ? outcome : null;
}

/** The HTTP status Consul would answer `error` with. */
export function statusOf(error: unknown): number {
  if (error instanceof AgentError) return error.statusCode;
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.validation !== undefined) return 400;
  const status = fastifyError.statusCode;
  if (typeof fastifyError.code === 'string' && fastifyError.code.startsWith('FST_') && typeof status === 'number'
    && status >= 400 && status < 500) {
    return status;
  }
  return 500;
}

/** Sends a plain-text error (`message` may be empty: Consul's empty-bodied errors). */
export function sendText(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).header('content-type', TEXT_CONTENT_TYPE).send(message);
}

function handleError(error: unknown, request: FastifyRequest, reply: FastifyReply, onBug: BugHandler): FastifyReply | undefined {
  if (error instanceof AssertionError) {
    onBug(error);
    // Only reached when onBug returns (tests): no answer, so no client mistakes a bug for a 500.
    reply.hijack();
    reply.raw.destroy();
    return undefined;
  }
  const status = statusOf(error);
  const message = error instanceof Error ? error.message : String(error);
  if (status === 500 && !(error instanceof AgentError)) request.log.error({ err: error }, 'unexpected error');
  const outcome = outcomeOf(error);
  if (outcome !== null) reply.header('x-conclave-outcome', outcome);
  // A refused body may still be on the wire: close the connection rather than read it all.
  if (status === 413) reply.header('connection', 'close');
  return sendText(reply, status, message);
}

/** Installs the error map on the root instance (child plugins inherit it). */
export function installErrorHandler(app: FastifyInstance, onBug: BugHandler): void {
  app.setErrorHandler((error, request, reply) => handleError(error, request, reply, onBug));
}
