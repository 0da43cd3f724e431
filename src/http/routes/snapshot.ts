/**
 * `GET /v1/snapshot[?stale]` saves the whole state as an opaque archive (from the leader unless
 * stale), with the meta headers; `PUT /v1/snapshot` restores one on every server through the
 * log (consul-api.md §13; Consul's own archive is a gzipped tar, ours a gzipped header + state —
 * clients only store and send back the bytes). Indexes may go back after a restore.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AgentApi } from '../../agent/agent-api.js';
import { TooLargeError } from '../../lib/errors.js';
import { RESTORE_BYTES_MAX } from '../../state/limits.js';
import { queryOf } from '../agent-calls.js';
import { readBody } from '../body.js';
import { setQueryMeta } from '../consul-headers.js';
import { registerEndpoint } from '../endpoints.js';
import { checkDatacenter, parseQueryOptions } from '../query-options.js';
import type { RouteDeps } from '../route-deps.js';

async function save(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const query = queryOf(request);
  const options = parseQueryOptions(query);
  checkDatacenter(query, agent.info);
  const stale = options.consistency === 'stale';
  const { index, archive } = await agent.snapshotSave(stale);
  setQueryMeta(reply, { index, knownLeader: true, lastContactMs: 0 });
  reply.header('content-type', 'application/x-gzip');
  return reply.send(Buffer.from(archive.buffer, archive.byteOffset, archive.byteLength));
}

async function restore(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const query = queryOf(request);
  checkDatacenter(query, agent.info);
  const archive = await readBody(request, RESTORE_BYTES_MAX, (declared) => new TooLargeError(`Snapshot of ${declared ?? 'more than'} bytes is larger than ${RESTORE_BYTES_MAX} bytes`));
  await agent.snapshotRestore(archive);
  return reply.code(200).send();
}

/** The snapshot endpoint. */
export const snapshotRoutes: FastifyPluginAsync<RouteDeps> = async (app, { agent, registry }) => {
  registerEndpoint(app, registry, '/v1/snapshot', {
    GET: (request, reply) => save(agent, request, reply),
    PUT: (request, reply) => restore(agent, request, reply),
  });
};
