/**
 * `PUT /v1/txn` with KV ops (consul-api.md §5, Consul agent/txn_endpoint.go). The body is read
 * and checked in Consul's order (Content-Length 413, body 413, parse 400, op count 413, value
 * size 413); then a read-only txn (get / get-tree / check-*) is answered on the read path with
 * the consistency the query asks for, and anything with a write goes through one Raft apply.
 * Failures are `409 {"Results":null,"Errors":[...]}`, which Go's api decodes like a 200.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AgentApi } from '../../agent/agent-api.js';
import { isReadOnlyTxn } from '../../agent/queries.js';
import { assert } from '../../lib/assert.js';
import { BadRequestError, InternalError, TooLargeError } from '../../lib/errors.js';
import type { TxnCommand, TxnKvOp } from '../../state/commands.js';
import { consulErrorText } from '../../state/fsm.js';
import { goQuote } from '../../state/go-quote.js';
import type { TxnOutcome } from '../../state/txn.js';
import { queryOf, readFromAgent } from '../agent-calls.js';
import { bodyText, readBody } from '../body.js';
import { setLeaderMeta } from '../consul-headers.js';
import { registerEndpoint } from '../endpoints.js';
import { isJsonObject, matchFields, objectField, stringField, uint64Field, unexpectedType, JsonTypeError } from '../json-fields.js';
import { JsonSyntaxError, readJson } from '../json-reader.js';
import type { JsonValue } from '../json-reader.js';
import { kvEntryJson, sendJson } from '../json.js';
import { KV_KEY_BYTES_MAX, KV_VALUE_BYTES_MAX, TXN_BODY_BYTES_MAX, TXN_MAX_REQ_LEN_DOC } from '../limits.js';
import { checkDatacenter, parseQueryOptions } from '../query-options.js';
import type { RouteDeps } from '../route-deps.js';
import type { HttpSettings } from '../settings.js';
import { TXN_OPS_COUNT_MAX } from '../../state/txn.js';

/** The txn endpoint. */
export const TXN_PATH = '/v1/txn';

const OP_FIELDS = ['KV', 'Node', 'Service', 'Check'] as const;
const KV_FIELDS = ['Verb', 'Key', 'Value', 'Flags', 'Index', 'Session'] as const;

function bodyTooLarge(declaredBytes: number | null): TooLargeError {
  const size = declaredBytes === null ? '' : `(${declaredBytes} bytes)`;
  return new TooLargeError(`Request body${size} too large, max size: ${TXN_BODY_BYTES_MAX} bytes. See ${TXN_MAX_REQ_LEN_DOC}.`);
}

/** Go's `base64.StdEncoding.Decode` (padded; CR and LF skipped), or its error text. */
export function decodeStdBase64(text: string): Uint8Array | string {
  const clean = text.replace(/[\r\n]/g, '');
  const bad = clean.search(/[^A-Za-z0-9+/=]/);
  if (bad >= 0) return `illegal base64 data at input byte ${bad}`;
  const padding = clean.indexOf('=');
  if (padding >= 0 && !/^={1,2}$/.test(clean.slice(padding))) return `illegal base64 data at input byte ${padding}`;
  if (clean.length % 4 !== 0) return `illegal base64 data at input byte ${clean.length - (clean.length % 4)}`;
  // A copy: a small Buffer is a view into Node's shared 8 KiB pool, which a stored value would pin.
  return new Uint8Array(Buffer.from(clean, 'base64'));
}

/** One `{"KV":{...}}` op; null for an op Consul drops (none of KV/Node/Service/Check). */
function parseOp(value: JsonValue, position: number): TxnKvOp | null {
  if (value === null) return null;
  if (!isJsonObject(value)) throw unexpectedType(value, 'TxnOps', 'api.TxnOp');
  const fields = matchFields(value, OP_FIELDS);
  for (const unsupported of ['Node', 'Service', 'Check'] as const) {
    const field = fields.get(unsupported);
    if (field !== undefined && field !== null) {
      throw new BadRequestError(`Failed to parse body: ${unsupported} operations (op ${position}) are not supported by this agent`);
    }
  }
  const kv = objectField(fields.get('KV'), 'TxnOp.KV', 'api.KVTxnOp');
  if (kv === undefined) return null;
  const kvFields = matchFields(kv, KV_FIELDS);
  const encoded = stringField(kvFields.get('Value'), 'TxnOp.KV.Value');
  let bytes: Uint8Array | null = null;
  if (encoded !== undefined) {
    const decoded = decodeStdBase64(encoded);
    if (typeof decoded === 'string') throw new BadRequestError(`Failed to parse body: ${decoded}`);
    bytes = decoded.byteLength === 0 ? null : decoded;
  }
  return {
    verb: stringField(kvFields.get('Verb'), 'TxnOp.KV.Verb') ?? '',
    key: stringField(kvFields.get('Key'), 'TxnOp.KV.Key') ?? '',
    value: bytes,
    flags: uint64Field(kvFields.get('Flags'), 'TxnOp.KV.Flags') ?? 0n,
    index: uint64Field(kvFields.get('Index'), 'TxnOp.KV.Index') ?? 0n,
    session: stringField(kvFields.get('Session'), 'TxnOp.KV.Session') ?? '',
  };
}

/** The ops of a body; counts every op (dropped ones too) against the limit, as Consul does. */
export function parseTxnBody(body: Uint8Array, valueBytesMax: number = KV_VALUE_BYTES_MAX): TxnKvOp[] {
  let json: JsonValue;
  try {
    json = readJson(bodyText(body));
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new BadRequestError(`Failed to parse body: ${error.message}`);
    throw error;
  }
  if (json === null) return [];
  if (!Array.isArray(json)) throw new BadRequestError(`Failed to parse body: ${unexpectedType(json, 'TxnOps', 'api.TxnOps').message}`);
  const items = json as readonly JsonValue[];
  if (items.length > TXN_OPS_COUNT_MAX) {
    throw new TooLargeError(`Transaction contains too many operations (${items.length} > ${TXN_OPS_COUNT_MAX})`);
  }
  const ops: TxnKvOp[] = [];
  items.forEach((item, position) => {
    let op: TxnKvOp | null;
    try {
      op = parseOp(item, position);
    } catch (error) {
      if (error instanceof JsonTypeError) throw new BadRequestError(`Failed to parse body: ${error.message}`);
      throw error;
    }
    if (op !== null) ops.push(checkOpLimits(op, valueBytesMax));
  });
  return ops;
}

function checkOpLimits(op: TxnKvOp, valueBytesMax: number): TxnKvOp {
  const size = op.value?.byteLength ?? 0;
  if (size > valueBytesMax) {
    throw new TooLargeError(`Value for key ${goQuote(op.key)} is too large (${size} > ${valueBytesMax} bytes)`);
  }
  const keyBytes = Buffer.byteLength(op.key);
  if (keyBytes > KV_KEY_BYTES_MAX) throw new BadRequestError(`Key too long (${keyBytes} > ${KV_KEY_BYTES_MAX} bytes)`);
  return op;
}

/** Consul's TxnResponse JSON; `meta` adds the flattened QueryMeta of a read-only txn. */
function outcomeJson(outcome: TxnOutcome, meta: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Results: outcome.results === null ? null : outcome.results.map((result) => ({ KV: kvEntryJson(result.KV) })),
    Errors: outcome.errors,
    ...meta,
  };
}

async function readTxn(agent: AgentApi, request: FastifyRequest, reply: FastifyReply, ops: TxnKvOp[]) {
  const query = queryOf(request);
  const options = parseQueryOptions(query);
  checkDatacenter(query, agent.info);
  // Consul's Txn.Read does not block, whatever `?index=` says.
  const { value, meta } = await readFromAgent(agent, reply, { kind: 'txn-read', ops }, { ...options, minIndex: 0 });
  setLeaderMeta(reply, meta);
  // Consul's TxnReadResponse embeds QueryMeta; its Index is left at 0, LastContact is in ns.
  const queryMeta = {
    Index: 0, LastContact: Math.max(0, Math.floor(meta.lastContactMs)) * 1_000_000, KnownLeader: meta.knownLeader,
    ConsistencyLevel: '', NotModified: false, Backend: 0, ResultsFilteredByACLs: false,
  };
  if (value.errors !== null) reply.code(409);
  return sendJson(request, reply, () => outcomeJson(value, queryMeta));
}

async function writeTxn(agent: AgentApi, request: FastifyRequest, reply: FastifyReply, ops: TxnKvOp[]) {
  checkDatacenter(queryOf(request), agent.info);
  // An empty txn changes nothing: answered without a Raft round (a command needs ops).
  if (ops.length === 0) return sendJson(request, reply, () => ({ Results: [], Errors: null }));
  const command: TxnCommand = { type: 'txn', nowMs: 0, ops };
  const { result } = await agent.write(command);
  if (result.kind === 'error') throw new InternalError(consulErrorText(command.type, result.message));
  assert(result.kind === 'txn', `a txn answers a txn outcome, got ${result.kind}`);
  if (result.errors !== null) reply.code(409);
  return sendJson(request, reply, () => outcomeJson(result));
}

async function txn(agent: AgentApi, settings: HttpSettings, request: FastifyRequest, reply: FastifyReply) {
  const body = await readBody(request, TXN_BODY_BYTES_MAX, bodyTooLarge);
  const ops = parseTxnBody(body, settings.kvMaxValueSize);
  return isReadOnlyTxn(ops) ? readTxn(agent, request, reply, ops) : writeTxn(agent, request, reply, ops);
}

/** The txn endpoint family. */
export const txnRoutes: FastifyPluginAsync<RouteDeps> = async (app, { agent, registry, settings }) => {
  registerEndpoint(app, registry, TXN_PATH, { PUT: (request, reply) => txn(agent, settings, request, reply) });
};
