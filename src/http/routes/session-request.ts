/**
 * The body of `PUT /v1/session/create` turned into a `session-create` command, with Consul's
 * defaults and checks (consul-api.md §6; agent/session_endpoint.go SessionCreate,
 * structs.Session.UnmarshalJSON, fixupEmptySessionChecks, and agent/consul Session.Apply):
 * Node = this agent's node, NodeChecks ["serfHealth"], LockDelay 15 s (a number below 1000 is
 * seconds), Behavior release, no TTL; a TTL must lie in [session_ttl_min, 24h] and is echoed as
 * given.
 */
import { randomUUID } from 'node:crypto';
import type { AgentInfo } from '../../agent/agent-api.js';
import { BadRequestError, InternalError } from '../../lib/errors.js';
import type { ServiceCheckRef, SessionBehavior, SessionCreateCommand } from '../../state/commands.js';
import { LOCK_DELAY_MS_MAX } from '../../state/limits.js';
import { formatGoDuration, parseGoDuration } from '../go-duration.js';
import {
  JsonTypeError, arrayField, isJsonObject, matchFields, numberValue, stringArrayField, stringField, unexpectedType,
} from '../json-fields.js';
import { JsonNumber, JsonObject, JsonSyntaxError, readJson } from '../json-reader.js';
import type { JsonValue } from '../json-reader.js';
import { LOCK_DELAY_SECONDS_THRESHOLD_NS, SESSION_LOCK_DELAY_MS_DEFAULT, SESSION_TTL_MS_MAX } from '../limits.js';

/** Consul's serfHealth check: the default (and legacy default) check of a session. */
export const SERF_HEALTH_CHECK_ID = 'serfHealth';

const SESSION_FIELDS = ['Name', 'Node', 'NodeChecks', 'Checks', 'ServiceChecks', 'LockDelay', 'Behavior', 'TTL'] as const;
type SessionField = (typeof SESSION_FIELDS)[number];

/** A session create request after decoding, before Session.Apply's checks. */
interface SessionRequest {
  readonly name: string;
  readonly node: string;
  readonly lockDelayNs: number;
  readonly behavior: string;
  readonly ttl: string;
  readonly nodeChecks: readonly string[];
  readonly serviceChecks: readonly ServiceCheckRef[];
}

const NS_PER_MS = 1_000_000;
const NS_PER_SECOND = 1_000_000_000;

/**
 * Session.UnmarshalJSON's LockDelay: a duration string, or a number of ns; below 1000 (ns) it is
 * taken as seconds. Other JSON kinds decode to 0. Capped to [0, 60 s] here: the state machine
 * only applies up to 60 s anyway (Consul's MaxLockDelay) and keeps the stored value in range.
 */
function lockDelayNsOf(value: JsonValue): number {
  let ns = 0;
  if (typeof value === 'string') {
    const parsed = parseGoDuration(value);
    if (!parsed.ok) throw new BadRequestError(`Request decode failed: ${parsed.error}`);
    ns = Number(parsed.ns);
  } else if (value instanceof JsonNumber) {
    ns = Math.trunc(numberValue(value) ?? 0);
  }
  if (ns < LOCK_DELAY_SECONDS_THRESHOLD_NS) ns *= NS_PER_SECOND;
  return Math.min(Math.max(ns, 0), LOCK_DELAY_MS_MAX * NS_PER_MS);
}

function serviceChecksOf(value: JsonValue | undefined): ServiceCheckRef[] {
  const items = arrayField(value, 'Session.ServiceChecks', '[]structs.ServiceCheck') ?? [];
  return items.map((item) => {
    if (!isJsonObject(item)) throw unexpectedType(item, 'Session.ServiceChecks', 'structs.ServiceCheck');
    const fields = matchFields(item, ['ID', 'Namespace'] as const);
    return {
      id: stringField(fields.get('ID'), 'Session.ServiceChecks.ID') ?? '',
      namespace: stringField(fields.get('Namespace'), 'Session.ServiceChecks.Namespace') ?? '',
    };
  });
}

/**
 * fixupEmptySessionChecks: `"Checks":[]` (old Go api's CreateNoChecks, python-consul) means no
 * checks at all; Checks left at the default defer to NodeChecks; legacy Checks are otherwise
 * added to NodeChecks (Consul keeps them apart; the state machine keeps one list).
 */
function nodeChecksOf(fields: Map<SessionField, JsonValue>): string[] {
  let checks = stringArrayField(fields.get('Checks'), 'Session.Checks') ?? [SERF_HEALTH_CHECK_ID];
  let nodeChecks = stringArrayField(fields.get('NodeChecks'), 'Session.NodeChecks') ?? [SERF_HEALTH_CHECK_ID];
  if (checks.length === 0) nodeChecks = [];
  else if (checks.length === 1 && checks[0] === SERF_HEALTH_CHECK_ID) checks = [];
  else if (nodeChecks.length === 0) checks = [];
  return [...new Set([...nodeChecks, ...checks])];
}

function decodeFields(object: JsonObject, info: AgentInfo): SessionRequest {
  const fields = matchFields(object, SESSION_FIELDS);
  const lockDelay = fields.get('LockDelay');
  return {
    name: stringField(fields.get('Name'), 'Session.Name') ?? '',
    node: stringField(fields.get('Node'), 'Session.Node') ?? info.nodeName,
    lockDelayNs: lockDelay === undefined || lockDelay === null
      ? SESSION_LOCK_DELAY_MS_DEFAULT * NS_PER_MS : lockDelayNsOf(lockDelay),
    behavior: stringField(fields.get('Behavior'), 'Session.Behavior') ?? '',
    ttl: stringField(fields.get('TTL'), 'Session.TTL') ?? '',
    nodeChecks: nodeChecksOf(fields),
    serviceChecks: serviceChecksOf(fields.get('ServiceChecks')),
  };
}

/** Decodes a session create body (`bodyText` is "" when Content-Length was 0); 400 on bad JSON. */
export function decodeSessionRequest(bodyText: string | null, info: AgentInfo): SessionRequest {
  let json: JsonValue = null;
  try {
    if (bodyText !== null) json = readJson(bodyText);
    if (json !== null && !isJsonObject(json)) throw unexpectedType(json, 'Session', 'structs.Session');
    return decodeFields(json ?? new JsonObject([]), info);
  } catch (error) {
    if (error instanceof JsonSyntaxError || error instanceof JsonTypeError) {
      throw new BadRequestError(`Request decode failed: ${error.message}`);
    }
    throw error;
  }
}

/** Session.Apply's checks of Behavior and TTL; errors are 500 with Consul's texts. */
function behaviorOf(behavior: string): SessionBehavior {
  if (behavior === '' || behavior === 'release') return 'release';
  if (behavior === 'delete') return 'delete';
  throw new InternalError(`Invalid Behavior setting '${behavior}'`);
}

function ttlNsOf(ttl: string, ttlMinMs: number): number {
  if (ttl === '') return 0;
  const parsed = parseGoDuration(ttl);
  if (!parsed.ok) throw new InternalError(`Session TTL '${ttl}' invalid: ${parsed.error}`);
  const minNs = BigInt(ttlMinMs) * BigInt(NS_PER_MS);
  const maxNs = BigInt(SESSION_TTL_MS_MAX) * BigInt(NS_PER_MS);
  if (parsed.ns !== 0n && (parsed.ns < minNs || parsed.ns > maxNs)) {
    throw new InternalError(`Invalid Session TTL '${parsed.ns}', must be between [${formatGoDuration(minNs)}=${formatGoDuration(maxNs)}]`);
  }
  return Number(parsed.ns);
}

/** The command for a decoded request, after Session.Apply's checks; the id is a fresh UUID v4. */
export function sessionCreateCommand(request: SessionRequest, ttlMinMs: number): SessionCreateCommand {
  if (request.node === '') throw new InternalError('Must provide Node');
  const behavior = behaviorOf(request.behavior);
  const ttlNs = ttlNsOf(request.ttl, ttlMinMs);
  for (const check of request.serviceChecks) {
    if (check.id === '') throw new InternalError("apply failed: Missing check '' registration");
  }
  return {
    type: 'session-create',
    nowMs: 0,
    id: randomUUID(),
    name: request.name,
    node: request.node,
    lockDelayNs: request.lockDelayNs,
    behavior,
    ttl: request.ttl,
    ttlNs,
    nodeChecks: request.nodeChecks,
    serviceChecks: request.serviceChecks,
  };
}
