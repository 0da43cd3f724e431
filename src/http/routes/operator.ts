/**
 * `/v1/operator/raft/*` (consul-api.md §13) and Conclave's `/v1/debug/raft` (RELIABILITY.md B1).
 * No meta headers on any of them.
 *
 * - `GET /v1/operator/raft/configuration`: the servers of the Raft configuration. `LastIndex`
 *   is 0 (unknown): RaftConfigurationInfo carries no per-server log index yet.
 * - `DELETE /v1/operator/raft/peer?id=|?address=`: removes one server from Raft only (the
 *   catalog keeps its node), as Consul's RaftRemovePeerByID/ByAddress; a peer not in the
 *   configuration is Consul's 500 `id "x" was not found in the Raft configuration`.
 * - `GET /v1/debug/raft`: this server's Raft state as JSON. A client agent has no Raft: there the
 *   path answers 404 like an unknown endpoint, so a tool polling every agent can tell "not a
 *   server" from a failure.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AgentApi, RaftConfigurationInfo } from '../../agent/agent-api.js';
import { BadRequestError, InternalError } from '../../lib/errors.js';
import { goQuote } from '../../state/go-quote.js';
import { queryOf } from '../agent-calls.js';
import { registerEndpoint, sendUnknownPath } from '../endpoints.js';
import { sendJson } from '../json.js';
import { checkDatacenter, parseQueryOptions } from '../query-options.js';
import type { RouteDeps } from '../route-deps.js';

/** Consul's Raft protocol version (Serf tag `raft_vsn`), which our servers speak the equivalent of. */
const RAFT_PROTOCOL_VERSION = '3';

/** The configuration in Consul's RaftConfigurationResponse shape. */
export function raftConfigurationJson(configuration: RaftConfigurationInfo): Record<string, unknown> {
  return {
    Servers: configuration.servers.map((server) => ({
      ID: server.id,
      Node: server.node,
      Address: server.address,
      Leader: server.leader,
      ProtocolVersion: RAFT_PROTOCOL_VERSION,
      Voter: server.voter,
      LastIndex: server.lastIndex,
    })),
    Index: configuration.index,
  };
}

async function configuration(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const query = queryOf(request);
  parseQueryOptions(query);
  checkDatacenter(query, agent.info);
  const info = await agent.raftConfiguration();
  return sendJson(request, reply, () => raftConfigurationJson(info));
}

/** The Raft ID `?id=` or `?address=` names, checked against the configuration. */
async function peerIdOf(agent: AgentApi, by: 'id' | 'address', value: string): Promise<string> {
  const { servers } = await agent.raftConfiguration();
  const server = servers.find((candidate) => (by === 'id' ? candidate.id : candidate.address) === value);
  if (server === undefined) throw new InternalError(`${by} ${goQuote(value)} was not found in the Raft configuration`);
  return server.id;
}

async function removePeer(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const query = queryOf(request);
  const hasId = query.has('id');
  const hasAddress = query.has('address');
  if (!hasId && !hasAddress) {
    throw new BadRequestError("Must specify either ?id with the server's ID or ?address with IP:port of peer to remove");
  }
  if (hasId && hasAddress) throw new BadRequestError('Must specify only one of ?id or ?address');
  checkDatacenter(query, agent.info);
  const id = await peerIdOf(agent, hasId ? 'id' : 'address', hasId ? query.get('id') : query.get('address'));
  await agent.removeRaftPeer(id);
  return reply.code(200).send();
}

/**
 * `POST|PUT /v1/operator/raft/transfer-leader[?id=]` (Consul 1.15+): hands leadership to the
 * server with that id, or to the most up-to-date voter; answers `{"Success":true}` once another
 * server leads, a 500 with the reason otherwise.
 */
async function transferLeader(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const query = queryOf(request);
  checkDatacenter(query, agent.info);
  const id = query.has('id') ? query.get('id') : '';
  await agent.transferLeader(id === '' ? null : id);
  return sendJson(request, reply, () => ({ Success: true }));
}

async function debugRaft(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const status = agent.raftStatus();
  if (status === null) return sendUnknownPath(reply, request.consulPath);
  return sendJson(request, reply, () => status);
}

/**
 * `GET /v1/debug/loghash[?upTo=N]`: the applied index and a SHA-256 of the whole state there
 * (RELIABILITY.md B1). With `upTo`, a server whose applied index differs answers 412 naming its
 * index, so a checker compares only servers at the same point.
 */
async function debugLogHash(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const query = queryOf(request);
  const upTo = query.has('upTo') ? query.get('upTo') : null;
  if (upTo !== null && !/^\d{1,15}$/.test(upTo)) throw new BadRequestError('upTo must be a non-negative integer');
  const digest = agent.stateDigest();
  if (digest === null) return sendUnknownPath(reply, request.consulPath);
  if (upTo !== null && Number(upTo) !== digest.index) {
    return reply.code(412).type('text/plain; charset=utf-8').send(`applied index is ${digest.index}, not ${upTo}`);
  }
  return sendJson(request, reply, () => ({ Index: digest.index, Hash: digest.hash }));
}

/** The operator endpoint family (and Conclave's Raft debug endpoint). */
export const operatorRoutes: FastifyPluginAsync<RouteDeps> = async (app, { agent, registry }) => {
  registerEndpoint(app, registry, '/v1/operator/raft/configuration', { GET: (request, reply) => configuration(agent, request, reply) });
  registerEndpoint(app, registry, '/v1/operator/raft/peer', { DELETE: (request, reply) => removePeer(agent, request, reply) });
  const transfer = (request: FastifyRequest, reply: FastifyReply) => transferLeader(agent, request, reply);
  registerEndpoint(app, registry, '/v1/operator/raft/transfer-leader', { POST: transfer, PUT: transfer });
  registerEndpoint(app, registry, '/v1/debug/raft', { GET: (request, reply) => debugRaft(agent, request, reply) });
  registerEndpoint(app, registry, '/v1/debug/loghash', { GET: (request, reply) => debugLogHash(agent, request, reply) });
};
