/**
 * The read path shared by `/v1/catalog/*` and `/v1/health/*` (consul-api.md §1–§3, §11, §12):
 * query options (400s in Consul's order), `?filter` refused (400, no bexpr yet), the endpoint's
 * own checks, the datacenter, then a blocking read whose answer carries every meta header,
 * X-Consul-Effective-Consistency included.
 *
 * `?near` is accepted and ignored: Consul sorts by network coordinates, and with none known it
 * keeps the natural order, which is what we answer. `?cached` is answered uncached.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AgentApi } from '../agent/agent-api.js';
import type { NodeMetaFilter, Query, QueryValue } from '../agent/queries.js';
import { queryOf, readFromAgent } from './agent-calls.js';
import { setQueryMeta } from './consul-headers.js';
import type { GoQuery } from './go-query.js';
import { sendJson } from './json.js';
import { checkDatacenter, parseQueryOptions, rejectFilter } from './query-options.js';

/**
 * `?node-meta=key:value` (repeatable; Consul's ParseMetaPair: split at the first `:`, a pair
 * without one has an empty value). Undefined when absent, so queries stay free of the field.
 */
export function nodeMetaOf(query: GoQuery): NodeMetaFilter | undefined {
  const pairs = query.getAll('node-meta');
  if (pairs.length === 0) return undefined;
  const filter: Record<string, string> = {};
  for (const pair of pairs) {
    const colon = pair.indexOf(':');
    if (colon < 0) filter[pair] = '';
    else filter[pair.slice(0, colon)] = pair.slice(colon + 1);
  }
  return filter;
}

/** `{ nodeMeta }` when the request filters on node meta, else `{}` (for spreading into a query). */
export function nodeMetaField(query: GoQuery): { readonly nodeMeta?: NodeMetaFilter } {
  const nodeMeta = nodeMetaOf(query);
  return nodeMeta === undefined ? {} : { nodeMeta };
}

/**
 * Answers a catalog or health read. `toQuery` runs after the query options are parsed and may
 * throw the endpoint's own 400s (`Missing node name`, ...); `render` shapes the value as JSON.
 */
export async function catalogRead<Q extends Query>(agent: AgentApi, request: FastifyRequest, reply: FastifyReply,
  toQuery: (query: GoQuery) => Q, render: (value: QueryValue<Q>) => unknown): Promise<FastifyReply> {
  const query = queryOf(request);
  const options = parseQueryOptions(query);
  rejectFilter(query);
  const read = toQuery(query);
  checkDatacenter(query, agent.info);
  const { value, meta } = await readFromAgent(agent, reply, read, options);
  setQueryMeta(reply, meta, options.consistency);
  return sendJson(request, reply, () => render(value));
}
