/**
 * `/v1/session/*` (consul-api.md §6): create, destroy and renew (writes, no meta headers), and
 * info/list/node (blocking reads with meta headers, `[]` when there is nothing).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AgentApi } from '../../agent/agent-api.js';
import type { Query } from '../../agent/queries.js';
import { assert } from '../../lib/assert.js';
import { BadRequestError, InternalError, NotFoundError, TooLargeError } from '../../lib/errors.js';
import type { SessionDestroyCommand } from '../../state/commands.js';
import { consulErrorText } from '../../state/fsm.js';
import { queryOf, readFromAgent } from '../agent-calls.js';
import { bodyText, declaredLength, readBody } from '../body.js';
import { setQueryMeta } from '../consul-headers.js';
import { pathSuffix, registerEndpoint } from '../endpoints.js';
import { sendJson } from '../json.js';
import { JSON_BODY_BYTES_MAX } from '../limits.js';
import { checkDatacenter, namesOtherDatacenter, parseQueryOptions } from '../query-options.js';
import type { RouteDeps } from '../route-deps.js';
import type { HttpSettings } from '../settings.js';
import { decodeSessionRequest, sessionCreateCommand } from './session-request.js';

const CREATE_PATH = '/v1/session/create';
const DESTROY_PREFIX = '/v1/session/destroy/';
const RENEW_PREFIX = '/v1/session/renew/';
const INFO_PREFIX = '/v1/session/info/';
const NODE_PREFIX = '/v1/session/node/';
const LIST_PATH = '/v1/session/list';

function bodyTooLarge(declaredBytes: number | null): TooLargeError {
  const size = declaredBytes === null ? '' : `(${declaredBytes} bytes)`;
  return new TooLargeError(`Request body${size} too large, max size: ${JSON_BODY_BYTES_MAX} bytes.`);
}

async function create(agent: AgentApi, settings: HttpSettings, request: FastifyRequest, reply: FastifyReply) {
  const query = queryOf(request);
  // Consul parses the body only when Content-Length > 0: an empty body is fine whatever its type.
  const length = declaredLength(request);
  const text = length !== null && length > 0 ? bodyText(await readBody(request, JSON_BODY_BYTES_MAX, bodyTooLarge)) : null;
  const decoded = decodeSessionRequest(text, agent.info);
  if (namesOtherDatacenter(query, agent.info) && !agent.info.server) {
    throw new InternalError('cross datacenter lock must be created at server agent');
  }
  checkDatacenter(query, agent.info);
  const command = sessionCreateCommand(decoded, settings.sessionTtlMinMs);
  const { result } = await agent.write(command);
  if (result.kind === 'error') throw new InternalError(consulErrorText(command.type, result.message));
  assert(result.kind === 'session', `session-create answers a session, got ${result.kind}`);
  return sendJson(request, reply, () => ({ ID: result.id }));
}

async function destroy(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const id = pathSuffix(request, DESTROY_PREFIX);
  if (id === '') throw new BadRequestError('Missing session');
  checkDatacenter(queryOf(request), agent.info);
  const command: SessionDestroyCommand = { type: 'session-destroy', nowMs: 0, id };
  const { result } = await agent.write(command);
  if (result.kind === 'error') throw new InternalError(consulErrorText(command.type, result.message));
  // `true` even for an unknown id (Consul).
  return sendJson(request, reply, () => true);
}

async function renew(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const query = queryOf(request);
  parseQueryOptions(query);
  const id = pathSuffix(request, RENEW_PREFIX);
  if (id === '') throw new BadRequestError('Missing session');
  checkDatacenter(query, agent.info);
  const session = await agent.renewSession(id);
  if (session === null) throw new NotFoundError(`Session id '${id}' not found`);
  // An array (G re-reads the TTL from [0]); no meta headers.
  return sendJson(request, reply, () => [session]);
}

/** A blocking session read: meta headers, and always an array. */
async function read(agent: AgentApi, request: FastifyRequest, reply: FastifyReply, toQuery: () => Query) {
  const query = queryOf(request);
  const options = parseQueryOptions(query);
  const sessionQuery = toQuery();
  checkDatacenter(query, agent.info);
  const { value, meta } = await readFromAgent(agent, reply, sessionQuery, options);
  setQueryMeta(reply, meta);
  return sendJson(request, reply, () => value);
}

function infoQuery(request: FastifyRequest): Query {
  const id = pathSuffix(request, INFO_PREFIX);
  if (id === '') throw new BadRequestError('Missing session');
  return { kind: 'session-info', id };
}

function nodeQuery(request: FastifyRequest): Query {
  const node = pathSuffix(request, NODE_PREFIX);
  if (node === '') throw new BadRequestError('Missing node name');
  return { kind: 'session-node', node };
}

/** The session endpoint family. */
export const sessionRoutes: FastifyPluginAsync<RouteDeps> = async (app, { agent, registry, settings }) => {
  registerEndpoint(app, registry, CREATE_PATH, { PUT: (request, reply) => create(agent, settings, request, reply) });
  registerEndpoint(app, registry, DESTROY_PREFIX, { PUT: (request, reply) => destroy(agent, request, reply) });
  registerEndpoint(app, registry, RENEW_PREFIX, { PUT: (request, reply) => renew(agent, request, reply) });
  registerEndpoint(app, registry, INFO_PREFIX, { GET: (request, reply) => read(agent, request, reply, () => infoQuery(request)) });
  registerEndpoint(app, registry, NODE_PREFIX, { GET: (request, reply) => read(agent, request, reply, () => nodeQuery(request)) });
  registerEndpoint(app, registry, LIST_PATH, { GET: (request, reply) => read(agent, request, reply, () => ({ kind: 'session-list' })) });
};
