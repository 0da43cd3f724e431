/**
 * Anti-entropy (Consul's agent/ae and local.State.SyncChanges): how an agent's services and
 * checks reach the catalog through its periodic status report, sending only what changed.
 *
 * - Every report carries `servicesHash`, a SHA-256 of the agent's catalog view (services and
 *   checks, canonical order). It carries the view itself (`sync`) only when the hash differs from
 *   the last one the leader confirmed.
 * - The leader hashes what the catalog holds for the node the same way (`catalogViewOf`), so any
 *   leader, a new one included, knows from the replicated state alone whether the node is in sync.
 *   Equal: nothing to write. Different with a view: it writes a `node-sync` command through Raft.
 *   Different without one: it answers `servicesInSync: false` and the agent reports again at
 *   once with its view.
 * - The leader's reply says whether the catalog now matches the hash that was sent; only then
 *   does the agent stop sending its view.
 *
 * Payload bounds: the view is validated here on the server side (counts, string lengths, total
 * size), so no agent can make the leader propose a command beyond COMMAND_BYTES_MAX.
 */
import { createHash } from 'node:crypto';
import { BadRequestError } from '../lib/errors.js';
import { checkDefinitionOf, serviceDefinitionOf } from '../state/catalog.js';
import { HEALTH_STATUSES } from '../state/commands.js';
import type { CheckDefinition, HealthStatus, ServiceDefinition } from '../state/commands.js';
import type { StateMachine } from '../state/fsm.js';
import { SERF_HEALTH_CHECK_ID } from '../state/fsm.js';
import { SERVICE_PORT_MAX } from '../state/limits.js';
import { compareKeys, isWellFormed } from '../state/ordered-map.js';
import { LOCAL_CHECKS_MAX, LOCAL_SERVICES_MAX, LOCAL_SYNC_BYTES_MAX } from './local-state.js';
import type { LocalState } from './local-state.js';

/** An agent's services and checks as the catalog should hold them (serfHealth excluded). */
export interface NodeServices {
  readonly services: readonly ServiceDefinition[];
  readonly checks: readonly CheckDefinition[];
}

/** The anti-entropy fields of a status report. */
export interface ServiceSyncFields {
  readonly servicesHash?: string;
  /** Present when the agent is not known to be in sync. */
  readonly sync?: NodeServices;
}

/** The leader's answer to a report: whether the catalog matches the hash sent (null: unknown). */
export interface ReportReply {
  readonly servicesInSync: boolean | null;
}

/**
 * How much bigger than an agent's own budget a view may be on the wire: the agent counts check
 * outputs at their limit, the server counts the JSON text; this leaves room for escaping. The
 * node-sync command built from it stays well under COMMAND_BYTES_MAX (1 MiB).
 */
export const REPORT_SYNC_BYTES_MAX = LOCAL_SYNC_BYTES_MAX + 64 * 1024;

/** A hash is hex SHA-256; anything longer in a report is not ours. */
const HASH_LENGTH_MAX = 64;

/** The Consul server service every server registers (port = its server RPC port). */
export function consulServiceOf(serverPort: number, version: string): ServiceDefinition {
  return {
    serviceId: 'consul', service: 'consul', tags: [], address: '', port: serverPort, weights: { passing: 1, warning: 1 },
    enableTagOverride: false,
    meta: {
      non_voter: 'false', raft_version: '3', read_replica: 'false', serf_protocol_current: '2', serf_protocol_max: '5',
      serf_protocol_min: '1', version,
    },
  };
}

/** Canonical JSON of a view (sorted by id, records sorted by key in UTF-8 order) and its hash. */
export function hashNodeServices(view: NodeServices): string {
  const sortRecord = (record: Readonly<Record<string, string>>): [string, string][] =>
    Object.entries(record).sort(([a], [b]) => compareKeys(a, b));
  const services = [...view.services].sort((a, b) => compareKeys(a.serviceId, b.serviceId)).map((s) => [
    s.serviceId, s.service, s.tags, s.address, sortRecord(s.meta), s.port, s.weights.passing, s.weights.warning, s.enableTagOverride,
  ]);
  const checks = [...view.checks].sort((a, b) => compareKeys(a.checkId, b.checkId)).map((c) => [
    c.checkId, c.name, c.status, c.notes, c.output, c.serviceId, c.serviceName, c.serviceTags, c.type, c.interval, c.timeout,
  ]);
  return createHash('sha256').update(JSON.stringify([services, checks])).digest('hex');
}

/** What the catalog holds for `node`, as a view (serfHealth, the leader's own check, left out). */
export function catalogViewOf(fsm: StateMachine, node: string): NodeServices {
  return {
    services: fsm.nodeServices(node).map(serviceDefinitionOf),
    checks: fsm.nodeChecks(node).filter((check) => check.CheckID !== SERF_HEALTH_CHECK_ID).map(checkDefinitionOf),
  };
}

/**
 * The agent side: builds each report's fields from the local state (plus, on a server, the
 * `consul` service) and learns from the leader's replies.
 */
export class ServiceSyncer {
  readonly #local: LocalState;
  readonly #extraServices: () => readonly ServiceDefinition[];
  /** The hash the leader last confirmed the catalog holds; null = send the view. */
  #ackedHash: string | null = null;

  /** `extraServices`: services that are not local registrations (a server's `consul` service). */
  constructor(local: LocalState, extraServices: () => readonly ServiceDefinition[] = () => []) {
    this.#local = local;
    this.#extraServices = extraServices;
  }

  /** The fields of the next report. */
  fields(): ServiceSyncFields {
    const local = this.#local.catalogView();
    const view: NodeServices = { services: [...this.#extraServices(), ...local.services], checks: local.checks };
    const servicesHash = hashNodeServices(view);
    return servicesHash === this.#ackedHash ? { servicesHash } : { servicesHash, sync: view };
  }

  /** Records the leader's reply to a report sent with `sent`; true when the view should go at once. */
  onReply(sent: ServiceSyncFields, reply: ReportReply): boolean {
    if (reply.servicesInSync === true) {
      this.#ackedHash = sent.servicesHash ?? null;
      return false;
    }
    if (reply.servicesInSync === false) {
      this.#ackedHash = null;
      // A view that was sent and still not written waits for the next report: no tight loop.
      return sent.sync === undefined;
    }
    return false;
  }
}

/** A reply from a server; anything unexpected (an older server's `true`) is "unknown". */
export function parseReportReply(reply: unknown): ReportReply {
  const value = (reply as { servicesInSync?: unknown } | null)?.servicesInSync;
  return { servicesInSync: typeof value === 'boolean' ? value : null };
}

// ------------------------------------------------------------------------------------------
// Validation of the fields as they arrive over RPC (RELIABILITY.md P8: a bad one is a 400 back
// to the caller, never an assertion in the state machine).

/** Field bounds: names as the RPC layer bounds them; tags and meta as Consul bounds meta. */
const ID_LENGTH_MAX = 256;
const TAGS_COUNT_MAX = 256;
const META_ENTRIES_MAX = 64;

function fail(what: string): never {
  throw new BadRequestError(`report.sync: ${what}`);
}

function field(value: unknown, what: string, lengthMax: number, allowEmpty = true): string {
  if (typeof value !== 'string' || value.length > lengthMax || (!allowEmpty && value === '')) fail(`${what}: expected a string of at most ${lengthMax} characters`);
  if (!isWellFormed(value)) fail(`${what}: not well-formed text`);
  return value;
}

function counted(value: unknown, what: string, max: number): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > max) fail(`${what}: expected an integer between 0 and ${max}`);
  return n;
}

function list(value: unknown, what: string, max: number): readonly unknown[] {
  if (!Array.isArray(value) || value.length > max) fail(`${what}: expected a list of at most ${max} items`);
  return value;
}

function record(value: unknown, what: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${what}: expected an object`);
  const entries = Object.entries(value);
  if (entries.length > META_ENTRIES_MAX) fail(`${what}: at most ${META_ENTRIES_MAX} entries`);
  const result: Record<string, string> = {};
  for (const [key, member] of entries) {
    Object.defineProperty(result, field(key, `${what} key`, ID_LENGTH_MAX, false), {
      value: field(member, `${what}.${key}`, LOCAL_SYNC_BYTES_MAX), enumerable: true, writable: true, configurable: true,
    });
  }
  return result;
}

function parseService(value: unknown, at: number): ServiceDefinition {
  const raw = value as Record<string, unknown> | null;
  if (typeof raw !== 'object' || raw === null) fail(`services[${at}]: expected an object`);
  const weights = raw['weights'] as Record<string, unknown> | null;
  if (typeof weights !== 'object' || weights === null) fail(`services[${at}].weights: expected an object`);
  return {
    serviceId: field(raw['serviceId'], 'serviceId', ID_LENGTH_MAX, false),
    service: field(raw['service'], 'service', ID_LENGTH_MAX, false),
    tags: list(raw['tags'], 'tags', TAGS_COUNT_MAX).map((tag) => field(tag, 'tag', ID_LENGTH_MAX)),
    address: field(raw['address'], 'address', ID_LENGTH_MAX),
    meta: record(raw['meta'], 'meta'),
    port: counted(raw['port'], 'port', SERVICE_PORT_MAX),
    weights: { passing: counted(weights['passing'], 'weights.passing', 65_535), warning: counted(weights['warning'], 'weights.warning', 65_535) },
    enableTagOverride: raw['enableTagOverride'] === true,
  };
}

function parseCheck(value: unknown, at: number): CheckDefinition {
  const raw = value as Record<string, unknown> | null;
  if (typeof raw !== 'object' || raw === null) fail(`checks[${at}]: expected an object`);
  const status = raw['status'];
  if (typeof status !== 'string' || !(HEALTH_STATUSES as readonly string[]).includes(status)) fail(`checks[${at}].status: unknown status`);
  return {
    checkId: field(raw['checkId'], 'checkId', ID_LENGTH_MAX, false),
    name: field(raw['name'], 'name', ID_LENGTH_MAX),
    status: status as HealthStatus,
    notes: field(raw['notes'], 'notes', LOCAL_SYNC_BYTES_MAX),
    output: field(raw['output'], 'output', LOCAL_SYNC_BYTES_MAX),
    serviceId: field(raw['serviceId'], 'serviceId', ID_LENGTH_MAX),
    serviceName: field(raw['serviceName'], 'serviceName', ID_LENGTH_MAX),
    serviceTags: list(raw['serviceTags'], 'serviceTags', TAGS_COUNT_MAX).map((tag) => field(tag, 'serviceTag', ID_LENGTH_MAX)),
    type: field(raw['type'], 'type', ID_LENGTH_MAX),
    interval: field(raw['interval'], 'interval', ID_LENGTH_MAX),
    timeout: field(raw['timeout'], 'timeout', ID_LENGTH_MAX),
  };
}

function parseView(value: unknown): NodeServices {
  const raw = value as Record<string, unknown> | null;
  if (typeof raw !== 'object' || raw === null) fail('expected an object');
  // The size bound first: everything else walks the payload.
  const bytes = Buffer.byteLength(JSON.stringify(raw, (_key, member: unknown) => (typeof member === 'bigint' ? Number(member) : member)), 'utf8');
  if (bytes > REPORT_SYNC_BYTES_MAX) fail(`${bytes} bytes, more than ${REPORT_SYNC_BYTES_MAX}`);
  const services = list(raw['services'], 'services', LOCAL_SERVICES_MAX + 1).map(parseService);
  const checks = list(raw['checks'], 'checks', LOCAL_CHECKS_MAX).map(parseCheck);
  const serviceIds = new Set(services.map((service) => service.serviceId));
  if (serviceIds.size !== services.length) fail('duplicate service IDs');
  if (new Set(checks.map((check) => check.checkId)).size !== checks.length) fail('duplicate check IDs');
  for (const check of checks) {
    if (check.checkId === SERF_HEALTH_CHECK_ID) fail('serfHealth is the leader\'s check');
    if (check.serviceId !== '' && !serviceIds.has(check.serviceId)) fail(`check ${check.checkId} names an unlisted service`);
  }
  return { services, checks };
}

/** The anti-entropy fields of a report payload (absent in reports from older agents). */
export function parseServiceSyncFields(body: Readonly<Record<string, unknown>>): ServiceSyncFields {
  const hash = body['servicesHash'];
  if (hash === undefined || hash === null) return {};
  const servicesHash = field(hash, 'servicesHash', HASH_LENGTH_MAX, false);
  const sync = body['sync'];
  return sync === undefined || sync === null ? { servicesHash } : { servicesHash, sync: parseView(sync) };
}
