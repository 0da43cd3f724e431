/**
 * Consul's X-Consul-* response meta (consul-api.md §1). Which endpoints send what:
 * - `setQueryMeta`: KV GET (404 and `?raw` included), session info/list/node, catalog and health
 *   reads (those two also with `X-Consul-Effective-Consistency`), snapshot GET;
 * - `setLeaderMeta`: a read-only `/v1/txn` (KnownLeader and LastContact only);
 * - nothing: status, agent, datacenters, writes.
 */
import type { FastifyReply } from 'fastify';
import type { Consistency, QueryMeta } from '../agent/agent-api.js';

/**
 * `X-Consul-Index` text: never 0 — a client blocking on index 0 would not block and would spin
 * (Consul's setIndex; node-consul's watch stops on 0). The first Raft entry is never a
 * user-visible write, so 1 is always safe.
 */
export function consulIndexText(index: number): string {
  return index > 0 ? String(index) : '1';
}

/** `X-Consul-Effective-Consistency` values (Consul names the default mode `leader`). */
const EFFECTIVE_CONSISTENCY: { readonly [C in Consistency]: string } = {
  default: 'leader',
  consistent: 'consistent',
  stale: 'stale',
};

/** KnownLeader and LastContact (whole ms, never negative). */
export function setLeaderMeta(reply: FastifyReply, meta: QueryMeta): void {
  reply.header('x-consul-knownleader', meta.knownLeader ? 'true' : 'false');
  reply.header('x-consul-lastcontact', String(Math.max(0, Math.floor(meta.lastContactMs))));
}

/**
 * Index, KnownLeader and LastContact; with `consistency` (catalog and health reads only), also
 * X-Consul-Effective-Consistency.
 */
export function setQueryMeta(reply: FastifyReply, meta: QueryMeta, consistency?: Consistency): void {
  reply.header('x-consul-index', consulIndexText(meta.index));
  setLeaderMeta(reply, meta);
  if (consistency !== undefined) reply.header('x-consul-effective-consistency', EFFECTIVE_CONSISTENCY[consistency]);
}
