import { assertNever } from '../lib/assert.js';
import type { Message } from '../raft/core/messages.js';
import type { ServerId } from '../raft/core/types.js';
import { ERROR_CODE_LENGTH_MAX, ERROR_MESSAGE_LENGTH_MAX, METHOD_NAME_LENGTH_MAX, PAYLOAD_DEPTH_MAX } from './limits.js';
import { validateMessage } from './validate-message.js';
import { invalid } from './wire-error.js';
import type { Fields } from './wire-fields.js';
import { isPlainObject, readIdentifier, readNullableIdentifier, readObject, readString, readUint } from './wire-fields.js';

/*
 * The wire format of the server port, protocol version 1.
 *
 * A connection is a stream of frames: a u32 big-endian body length (at most FRAME_BYTES_MAX,
 * and HANDSHAKE_FRAME_BYTES_MAX until the handshake completes), then one MessagePack map (plain
 * maps, strings, numbers, bins; options in frame.ts). Every map has a `kind`:
 *
 *   hello    { kind, protocolVersion, datacenter, clusterId | nil, serverId | nil, role }
 *   refuse   { kind, reason }
 *   raft     { kind, message }                 message: a Raft message, `type` first (messages.ts)
 *   request  { kind, id, method, payload }
 *   response { kind, id, payload }
 *   error    { kind, id, message, code | nil }
 *
 * Order: the dialer sends hello; the acceptor answers hello, and on a mismatch adds refuse and
 * closes. Then the dialer sends raft and request frames, the acceptor response and error frames
 * (matched by id, in any order). Anything else closes that connection, and only that one.
 */

/**
 * The wire protocol we speak. Bump it for any change a peer of the previous version would
 * misread; the hello below keeps its shape forever so both sides can still say why they differ.
 */
export const PROTOCOL_VERSION = 1;

/** What an agent is: servers run Raft and accept connections, clients only call. */
export type AgentRole = 'server' | 'client';

/**
 * The first frame each way. The dialer sends first; the acceptor answers with its own hello
 * (and, if it refuses, a Refuse). Extra fields are ignored, so later versions may add some.
 */
export interface Hello {
  readonly kind: 'hello';
  readonly protocolVersion: number;
  readonly datacenter: string;
  /** Null until the server learns it at bootstrap; clients may never know it. */
  readonly clusterId: string | null;
  /** Null for client agents. */
  readonly serverId: ServerId | null;
  readonly role: AgentRole;
}

/** Sent by an acceptor before closing: why it will not talk to the dialer. */
export interface Refuse {
  readonly kind: 'refuse';
  readonly reason: string;
}

/** A one-way Raft message, server to server. */
export interface RaftFrame {
  readonly kind: 'raft';
  readonly message: Message;
}

/** An RPC call. `id` is the caller's, unique among its calls in progress. */
export interface RequestFrame {
  readonly kind: 'request';
  readonly id: number;
  readonly method: string;
  readonly payload: unknown;
}

/** A successful RPC result. */
export interface ResponseFrame {
  readonly kind: 'response';
  readonly id: number;
  readonly payload: unknown;
}

/** A failed RPC: the handler's error message and code (e.g. ERR_NO_LEADER), or null. */
export interface ErrorFrame {
  readonly kind: 'error';
  readonly id: number;
  readonly message: string;
  readonly code: string | null;
}

/** Everything a frame body may hold. */
export type Envelope = Hello | Refuse | RaftFrame | RequestFrame | ResponseFrame | ErrorFrame;

type EnvelopeKind = Envelope['kind'];
const ENVELOPE_KINDS: ReadonlySet<string> = new Set<EnvelopeKind>(['hello', 'refuse', 'raft', 'request', 'response', 'error']);

/**
 * Checks a decoded frame body and returns a fresh envelope with only the known fields. Raft
 * messages go through validateMessage; RPC payloads must be plain data (see findNonPlainData).
 * Throws WireError ERR_FRAME_INVALID.
 */
export function validateEnvelope(value: unknown): Envelope {
  const fields = readObject(value, 'frame');
  const kind = fields['kind'];
  if (typeof kind !== 'string' || !ENVELOPE_KINDS.has(kind)) return invalid('frame.kind', 'a frame kind');
  const envelopeKind = kind as EnvelopeKind;
  switch (envelopeKind) {
    case 'hello':
      return readHello(fields);
    case 'refuse':
      return { kind: 'refuse', reason: readString(fields, 'reason', 'refuse', ERROR_MESSAGE_LENGTH_MAX) };
    case 'raft':
      return { kind: 'raft', message: validateMessage(fields['message']) };
    case 'request':
      return readRequest(fields);
    case 'response':
      return { kind: 'response', id: readRequestId(fields, 'response'), payload: readPayload(fields, 'response') };
    case 'error':
      return readErrorFrame(fields);
    default:
      return assertNever(envelopeKind, 'frame kind');
  }
}

function readHello(fields: Fields): Hello {
  const role = fields['role'];
  if (role !== 'server' && role !== 'client') return invalid('hello.role', "'server' or 'client'");
  const serverId = readNullableIdentifier(fields, 'serverId', 'hello');
  if (role === 'server' && serverId === null) return invalid('hello.serverId', 'a server id for a server');
  return {
    kind: 'hello',
    protocolVersion: readUint(fields, 'protocolVersion', 'hello'),
    datacenter: readIdentifier(fields, 'datacenter', 'hello'),
    clusterId: readNullableIdentifier(fields, 'clusterId', 'hello'),
    serverId,
    role,
  };
}

function readRequest(fields: Fields): RequestFrame {
  const method = readString(fields, 'method', 'request', METHOD_NAME_LENGTH_MAX);
  if (method.length === 0) return invalid('request.method', 'a method name');
  return { kind: 'request', id: readRequestId(fields, 'request'), method, payload: readPayload(fields, 'request') };
}

function readErrorFrame(fields: Fields): ErrorFrame {
  const code = fields['code'] === null ? null : readString(fields, 'code', 'error', ERROR_CODE_LENGTH_MAX);
  return {
    kind: 'error',
    id: readRequestId(fields, 'error'),
    message: readString(fields, 'message', 'error', ERROR_MESSAGE_LENGTH_MAX),
    code,
  };
}

function readRequestId(fields: Fields, path: string): number {
  const id = readUint(fields, 'id', path);
  if (id === 0) return invalid(`${path}.id`, 'a request id >= 1');
  return id;
}

function readPayload(fields: Fields, path: string): unknown {
  const payload = fields['payload'];
  const problem = findNonPlainData(payload, `${path}.payload`, false);
  if (problem !== null) return invalid(problem, 'plain data (null, boolean, number, string, bytes, array, map)');
  return payload;
}

/**
 * RPC payloads are JSON-like data plus bytes. msgpackr would also decode Dates, Sets, RegExps,
 * BigInts and Errors from extension types; none of our payloads uses them, so they are refused
 * rather than handed to a handler that does not expect them. Returns the path of the first
 * offending value, or null. `allowUndefined` is for the sending side, where undefined is sent as
 * nil (encodeUndefinedAsNil).
 */
export function findNonPlainData(value: unknown, path: string, allowUndefined: boolean): string | null {
  const suffix = nonPlainSuffix(value, allowUndefined, 0);
  return suffix === null ? null : path + suffix;
}

/** The path below `value` of its first non-plain part ('' for itself); built only on failure. */
function nonPlainSuffix(value: unknown, allowUndefined: boolean, depth: number): string | null {
  if (depth > PAYLOAD_DEPTH_MAX) return '';
  if (value === null || value instanceof Uint8Array) return null;
  switch (typeof value) {
    case 'boolean':
    case 'number':
    case 'string':
      return null;
    case 'undefined':
      return allowUndefined ? null : '';
    case 'object':
      break;
    default:
      return '';
  }
  if (Array.isArray(value)) {
    for (let position = 0; position < value.length; position++) {
      const suffix = nonPlainSuffix(value[position], allowUndefined, depth + 1);
      if (suffix !== null) return `[${position}]${suffix}`;
    }
    return null;
  }
  if (!isPlainObject(value)) return '';
  for (const key of Object.keys(value)) {
    const suffix = nonPlainSuffix(value[key], allowUndefined, depth + 1);
    if (suffix !== null) return `.${key}${suffix}`;
  }
  return null;
}

/**
 * Versions we can talk to. Only our own for now; a later version widens this to a range so a
 * cluster can be upgraded one server at a time.
 */
export function isCompatibleProtocolVersion(ours: number, theirs: number): boolean {
  return ours === theirs;
}

/**
 * Why `local` must not talk to `remote`, in words for the operator reading `local`'s log, or
 * null when they may. Both sides run the same rules, so both refuse and both can say why.
 * Cluster ids are compared only when both are known: servers learn theirs at bootstrap.
 */
export function handshakeMismatch(local: Hello, remote: Hello): string | null {
  if (!isCompatibleProtocolVersion(local.protocolVersion, remote.protocolVersion)) {
    return `incompatible protocol version ${remote.protocolVersion} (we speak ${local.protocolVersion})`;
  }
  if (local.datacenter !== remote.datacenter) {
    return `peer is in datacenter ${remote.datacenter}, we are in ${local.datacenter}`;
  }
  if (local.clusterId !== null && remote.clusterId !== null && local.clusterId !== remote.clusterId) {
    return `peer belongs to cluster ${remote.clusterId}, we belong to ${local.clusterId}`;
  }
  return null;
}
