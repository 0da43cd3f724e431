/**
 * `GET|PUT|DELETE /v1/kv/<key>` (consul-api.md §4, Consul agent/kvs_endpoint.go). Checks run in
 * Consul's order — query options (400), missing key (400), conflicting flags (400), `flags`/`cas`
 * syntax (500), body size on Content-Length (413), then the write — so a client sees the same
 * first error as with Consul.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AgentApi } from '../../agent/agent-api.js';
import { BadRequestError, TooLargeError } from '../../lib/errors.js';
import type { KvDeleteCommand, KvSetCommand, KvSetVerb } from '../../state/commands.js';
import type { KvEntry } from '../../state/kv.js';
import { boolResult, queryOf, readFromAgent } from '../agent-calls.js';
import { readBody } from '../body.js';
import { setQueryMeta } from '../consul-headers.js';
import { pathSuffix, registerEndpoint } from '../endpoints.js';
import type { GoQuery } from '../go-query.js';
import { compactKvEntries, kvEntryJson, sendJson, sendJsonText, toJson } from '../json.js';
import { KV_KEY_BYTES_MAX, KV_MAX_VALUE_SIZE_DOC } from '../limits.js';
import { checkDatacenter, parseQueryOptions, uint64Param } from '../query-options.js';
import type { ParsedQueryOptions } from '../query-options.js';
import type { RouteDeps } from '../route-deps.js';
import type { HttpSettings } from '../settings.js';

/** The KV subtree. */
export const KV_PREFIX = '/v1/kv/';

/** Consul's answer to a value over `kv_max_value_size`. */
function valueTooLarge(bytesMax: number): (declaredBytes: number | null) => TooLargeError {
  return (declaredBytes) => {
    const size = declaredBytes === null ? '' : `(${declaredBytes} bytes)`;
    return new TooLargeError(`Request body${size} too large, max size: ${bytesMax} bytes. See ${KV_MAX_VALUE_SIZE_DOC}.`);
  };
}

/** The key of a KV request, bounded (KV_KEY_BYTES_MAX). */
function keyOf(request: FastifyRequest): string {
  const key = pathSuffix(request, KV_PREFIX);
  if (key.length * 3 > KV_KEY_BYTES_MAX && Buffer.byteLength(key) > KV_KEY_BYTES_MAX) {
    throw new BadRequestError(`Key too long (${Buffer.byteLength(key)} > ${KV_KEY_BYTES_MAX} bytes)`);
  }
  return key;
}

/**
 * Consul's conflictingFlags: two of `flags` present → 400 with the query re-encoded (Go's
 * `Values.Encode`, keys sorted). Consul writes it with `Fprintf("Conflicting flags: %v\n")`,
 * hence the newline.
 */
export function rejectConflictingFlags(query: GoQuery, flags: readonly string[]): void {
  if (flags.filter((flag) => query.has(flag)).length > 1) {
    throw new BadRequestError(`Conflicting flags: ${query.encode()}\n`);
  }
}

const TRUE = 'true';
const FALSE = 'false';

function sendBool(reply: FastifyReply, value: boolean): FastifyReply {
  return sendJsonText(reply, value ? TRUE : FALSE);
}

/** `?raw`: the stored bytes as they are, with headers that keep a browser from running them. */
function sendRaw(reply: FastifyReply, entry: KvEntry): FastifyReply {
  const value = entry.Value;
  reply.header('content-type', 'text/plain');
  reply.header('x-content-type-options', 'nosniff');
  reply.header('content-security-policy', 'sandbox');
  return reply.send(value === null ? '' : Buffer.from(value.buffer, value.byteOffset, value.byteLength));
}

async function getOne(agent: AgentApi, request: FastifyRequest, reply: FastifyReply, key: string, options: ParsedQueryOptions) {
  const { value, meta } = await readFromAgent(agent, reply, { kind: 'kv-get', key }, options);
  setQueryMeta(reply, meta);
  if (value === null) return reply.code(404).send();
  if (queryOf(request).has('raw')) return sendRaw(reply, value);
  return sendJson(request, reply, () => [kvEntryJson(value)], compactKvEntries([value]));
}

async function getTree(agent: AgentApi, request: FastifyRequest, reply: FastifyReply, prefix: string, options: ParsedQueryOptions) {
  const { value, meta } = await readFromAgent(agent, reply, { kind: 'kv-list', prefix }, options);
  setQueryMeta(reply, meta);
  if (value.length === 0) return reply.code(404).send();
  return sendJson(request, reply, () => value.map(kvEntryJson), compactKvEntries(value));
}

async function getKeys(agent: AgentApi, request: FastifyRequest, reply: FastifyReply, prefix: string, options: ParsedQueryOptions) {
  const query = queryOf(request);
  // The misspelling is Consul's own, kept for old clients; `separator` wins when both are given.
  const separator = query.has('separator') ? query.get('separator') : query.get('seperator');
  const { value, meta } = await readFromAgent(agent, reply, { kind: 'kv-keys', prefix, separator }, options);
  setQueryMeta(reply, meta);
  // The root lists as [] rather than 404.
  if (value.length === 0 && prefix !== '') return reply.code(404).send();
  return sendJson(request, reply, () => value, toJson(value, false));
}

async function kvGet(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const query = queryOf(request);
  const options = parseQueryOptions(query);
  const key = keyOf(request);
  if (query.has('keys')) {
    checkDatacenter(query, agent.info);
    return getKeys(agent, request, reply, key, options);
  }
  const recurse = query.has('recurse');
  if (!recurse && key === '') throw new BadRequestError('Missing key name');
  checkDatacenter(query, agent.info);
  return recurse ? getTree(agent, request, reply, key, options) : getOne(agent, request, reply, key, options);
}

/** The write a PUT asks for: `cas`, `acquire` or `release` (at most one), else a plain set. */
function setVerbOf(query: GoQuery): KvSetVerb {
  if (query.has('cas')) return { kind: 'cas', index: uint64Param(query, 'cas') };
  if (query.has('acquire')) return { kind: 'acquire', session: query.get('acquire') };
  if (query.has('release')) return { kind: 'release', session: query.get('release') };
  return { kind: 'set' };
}

async function kvPut(agent: AgentApi, settings: HttpSettings, request: FastifyRequest, reply: FastifyReply) {
  const query = queryOf(request);
  parseQueryOptions(query);
  const key = keyOf(request);
  if (key === '') throw new BadRequestError('Missing key name');
  rejectConflictingFlags(query, ['cas', 'acquire', 'release']);
  const flags = query.has('flags') ? uint64Param(query, 'flags') : 0n;
  const verb = setVerbOf(query);
  const body = await readBody(request, settings.kvMaxValueSize, valueTooLarge(settings.kvMaxValueSize));
  checkDatacenter(query, agent.info);
  // nowMs is stamped by the leader; an empty body is stored as null (Consul's `"Value":null`).
  const command: KvSetCommand = { type: 'kv-set', nowMs: 0, key, value: body.byteLength === 0 ? null : body, flags, verb };
  const { result } = await agent.write(command);
  const applied = boolResult(command, result);
  // Consul answers `true` for a plain set whatever happened (only cas/acquire/release report).
  return sendBool(reply, verb.kind === 'set' ? true : applied);
}

async function kvDelete(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const query = queryOf(request);
  parseQueryOptions(query);
  const key = keyOf(request);
  rejectConflictingFlags(query, ['recurse', 'cas']);
  const recurse = query.has('recurse');
  if (!recurse && key === '') throw new BadRequestError('Missing key name');
  const casIndex = query.has('cas') ? uint64Param(query, 'cas') : null;
  checkDatacenter(query, agent.info);
  const command: KvDeleteCommand = { type: 'kv-delete', nowMs: 0, key, casIndex, recurse };
  const { result } = await agent.write(command);
  const applied = boolResult(command, result);
  return sendBool(reply, casIndex === null ? true : applied);
}

/** The KV endpoint family. */
export const kvRoutes: FastifyPluginAsync<RouteDeps> = async (app, { agent, registry, settings }) => {
  registerEndpoint(app, registry, KV_PREFIX, {
    GET: (request, reply) => kvGet(agent, request, reply),
    PUT: (request, reply) => kvPut(agent, settings, request, reply),
    DELETE: (request, reply) => kvDelete(agent, request, reply),
  });
};
