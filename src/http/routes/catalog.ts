/**
 * `/v1/catalog/*` (consul-api.md §11). Reads block and send every meta header, including
 * X-Consul-Effective-Consistency (catalog-read.ts), except `datacenters`, which sends none.
 * `register` upserts a node, its service (if any) and checks; `deregister` removes a node (with
 * its services, checks and sessions), one service (with its checks) or one check; both answer
 * `true`. Registrations on an agent's own node are overwritten by its anti-entropy, as in Consul.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AgentApi } from '../../agent/agent-api.js';
import { QUERY_WAIT_MS_DEFAULT } from '../../agent/queries.js';
import { assert } from '../../lib/assert.js';
import { BadRequestError, InternalError, TooLargeError } from '../../lib/errors.js';
import type { Command, NodeRegisterCommand } from '../../state/commands.js';
import { queryOf, readFromAgent } from '../agent-calls.js';
import { bodyText, readBody } from '../body.js';
import { nodeJson, nodeServiceJson, serviceNodeJson } from '../catalog-json.js';
import { catalogRead, nodeMetaField } from '../catalog-read.js';
import { pathSuffix, registerEndpoint } from '../endpoints.js';
import { sendJson, sendJsonText } from '../json.js';
import { JSON_BODY_BYTES_MAX } from '../limits.js';
import { parseQueryOptions } from '../query-options.js';
import type { ParsedQueryOptions } from '../query-options.js';
import type { RouteDeps } from '../route-deps.js';
import { decodeCatalogDeregistration, decodeCatalogRegistration } from './catalog-request.js';

const NODE_PREFIX = '/v1/catalog/node/';
const SERVICE_PREFIX = '/v1/catalog/service/';

/** A read without a wait: SkipNodeUpdate looks the node up before writing. */
const LOOKUP_OPTIONS: ParsedQueryOptions = { consistency: 'default', minIndex: 0, waitMs: QUERY_WAIT_MS_DEFAULT, maxStaleMs: null };

function bodyTooLarge(declaredBytes: number | null): TooLargeError {
  const size = declaredBytes === null ? '' : `(${declaredBytes} bytes)`;
  return new TooLargeError(`Request body${size} too large, max size: ${JSON_BODY_BYTES_MAX} bytes.`);
}

/** Commits a catalog command; a state-machine error is Consul's 500 with its text. */
async function writeCatalog(agent: AgentApi, command: Command): Promise<void> {
  const { result } = await agent.write(command);
  if (result.kind === 'error') throw new InternalError(result.message);
  assert(result.kind === 'done', `${command.type} answers done, got ${result.kind}`);
}

/**
 * `SkipNodeUpdate` (Consul's ChangesNode): an existing node keeps its fields. The node is read
 * first and its fields written back with the checks; a node change landing in between is
 * overwritten, a window Consul does not have (it decides inside the apply).
 */
async function keepNodeFields(agent: AgentApi, reply: FastifyReply, command: NodeRegisterCommand): Promise<NodeRegisterCommand> {
  const { value: found } = await readFromAgent(agent, reply, { kind: 'catalog-node', node: command.node }, LOOKUP_OPTIONS);
  if (found === null) return command;
  const { node } = found;
  return { ...command, id: node.ID, address: node.Address, taggedAddresses: node.TaggedAddresses, meta: node.Meta };
}

/** Consul's register and deregister take the datacenter from the body and parse no query options. */
async function register(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const text = bodyText(await readBody(request, JSON_BODY_BYTES_MAX, bodyTooLarge));
  const { command, skipNodeUpdate } = decodeCatalogRegistration(text, agent.info);
  await writeCatalog(agent, skipNodeUpdate ? await keepNodeFields(agent, reply, command) : command);
  return sendJsonText(reply, 'true');
}

async function deregister(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const text = bodyText(await readBody(request, JSON_BODY_BYTES_MAX, bodyTooLarge));
  const { node, serviceId, checkId } = decodeCatalogDeregistration(text, agent.info);
  // Consul's DeregisterRequest: neither ID removes the node; a ServiceID the service and its
  // checks; a CheckID the check. Unknown ones are no-ops.
  if (serviceId === '' && checkId === '') await writeCatalog(agent, { type: 'node-deregister', nowMs: 0, node });
  else if (serviceId !== '') await writeCatalog(agent, { type: 'service-deregister', nowMs: 0, node, serviceId });
  else await writeCatalog(agent, { type: 'check-deregister', nowMs: 0, node, checkId });
  return sendJsonText(reply, 'true');
}

/** `GET /v1/catalog/datacenters`: ours only; no meta headers (consistency flags still parsed). */
async function datacenters(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  parseQueryOptions(queryOf(request));
  return sendJson(request, reply, () => [agent.info.datacenter]);
}

function nameIn(request: FastifyRequest, prefix: string, missing: string): string {
  const name = pathSuffix(request, prefix);
  if (name === '') throw new BadRequestError(missing);
  return name;
}

/** The catalog endpoint family. */
export const catalogRoutes: FastifyPluginAsync<RouteDeps> = async (app, { agent, registry }) => {
  registerEndpoint(app, registry, '/v1/catalog/register', { PUT: (request, reply) => register(agent, request, reply) });
  registerEndpoint(app, registry, '/v1/catalog/deregister', { PUT: (request, reply) => deregister(agent, request, reply) });
  registerEndpoint(app, registry, '/v1/catalog/datacenters', { GET: (request, reply) => datacenters(agent, request, reply) });
  registerEndpoint(app, registry, '/v1/catalog/nodes', {
    GET: (request, reply) => catalogRead(agent, request, reply,
      (query) => ({ kind: 'catalog-nodes', ...nodeMetaField(query) }), (nodes) => nodes.map(nodeJson)),
  });
  registerEndpoint(app, registry, '/v1/catalog/services', {
    GET: (request, reply) => catalogRead(agent, request, reply,
      (query) => ({ kind: 'catalog-services', ...nodeMetaField(query) }), (services) => services),
  });
  registerEndpoint(app, registry, SERVICE_PREFIX, {
    GET: (request, reply) => catalogRead(agent, request, reply, (query) => ({
      kind: 'catalog-service', service: nameIn(request, SERVICE_PREFIX, 'Missing service name'), tags: query.getAll('tag'), ...nodeMetaField(query),
    }), (rows) => rows.map((row) => serviceNodeJson(row.node, row.service))),
  });
  // An unknown node is `200 null`, as Consul answers it.
  registerEndpoint(app, registry, NODE_PREFIX, {
    GET: (request, reply) => catalogRead(agent, request, reply,
      () => ({ kind: 'catalog-node', node: nameIn(request, NODE_PREFIX, 'Missing node name') }),
      (found) => (found === null ? null : {
        Node: nodeJson(found.node),
        // Own data properties: a service ID like `__proto__` stays a key.
        Services: Object.fromEntries(found.services.map((service) => [service.ID, nodeServiceJson(service)])),
      })),
  });
};
