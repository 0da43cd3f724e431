/**
 * The bridge from a request to the AgentApi, shared by the route plugins: reads with the abort
 * signal a blocking query needs, and the mapping of a write's ApplyResult to Consul's answer.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AgentApi, QueryMeta } from '../agent/agent-api.js';
import type { Query, QueryValue } from '../agent/queries.js';
import { assert } from '../lib/assert.js';
import { InternalError } from '../lib/errors.js';
import type { Command } from '../state/commands.js';
import { consulErrorText } from '../state/fsm.js';
import type { ApplyResult } from '../state/fsm.js';
import type { GoQuery } from './go-query.js';
import type { ParsedQueryOptions } from './query-options.js';

/** The request's query (app.ts installs GoQuery as Fastify's query parser). */
export function queryOf(request: FastifyRequest): GoQuery {
  return request.query as GoQuery;
}

/** A signal that never aborts: non-blocking reads need no disconnect listener. */
const NEVER_ABORTED = new AbortController().signal;

/**
 * Runs `query` on the agent. A blocking read (index > 0) is aborted when the client goes away,
 * so its wait (up to 10 min) does not outlive the connection.
 */
export async function readFromAgent<Q extends Query>(agent: AgentApi, reply: FastifyReply, query: Q,
  options: ParsedQueryOptions): Promise<{ value: QueryValue<Q>; meta: QueryMeta }> {
  const { consistency, minIndex, waitMs, maxStaleMs } = options;
  if (minIndex === 0) return agent.query(query, { consistency, minIndex, waitMs, maxStaleMs, signal: NEVER_ABORTED });
  const controller = new AbortController();
  const response = reply.raw;
  const onClose = (): void => {
    if (!response.writableFinished) controller.abort();
  };
  response.once('close', onClose);
  try {
    return await agent.query(query, { consistency, minIndex, waitMs, maxStaleMs, signal: controller.signal });
  } finally {
    response.off('close', onClose);
  }
}

/**
 * The result of a write that answers a boolean (KV set and delete). A state-machine error is
 * Consul's 500 with the endpoint's prefix (`raft apply failed: invalid session "x"`).
 */
export function boolResult(command: Command, result: ApplyResult): boolean {
  if (result.kind === 'error') throw new InternalError(consulErrorText(command.type, result.message));
  assert(result.kind === 'bool', `${command.type} answers a boolean, got ${result.kind}`);
  return result.value;
}
