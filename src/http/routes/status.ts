/**
 * `GET /v1/status/leader` and `/v1/status/peers` (consul-api.md §9): Raft addresses
 * (`ip:8300`, not HTTP), "" when there is no leader; no meta headers. Consul runs its common
 * query-option parsing here too, so the same 400s apply.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AgentApi } from '../../agent/agent-api.js';
import { queryOf } from '../agent-calls.js';
import { registerEndpoint } from '../endpoints.js';
import { sendJson } from '../json.js';
import { checkDatacenter, parseQueryOptions } from '../query-options.js';
import type { RouteDeps } from '../route-deps.js';

async function answer(agent: AgentApi, request: FastifyRequest, reply: FastifyReply, read: () => Promise<unknown>) {
  const query = queryOf(request);
  parseQueryOptions(query);
  checkDatacenter(query, agent.info);
  const value = await read();
  return sendJson(request, reply, () => value);
}

/** The status endpoint family. */
export const statusRoutes: FastifyPluginAsync<RouteDeps> = async (app, { agent, registry }) => {
  registerEndpoint(app, registry, '/v1/status/leader', {
    GET: (request, reply) => answer(agent, request, reply, () => agent.leaderAddress()),
  });
  registerEndpoint(app, registry, '/v1/status/peers', {
    GET: (request, reply) => answer(agent, request, reply, () => agent.peerAddresses()),
  });
};
