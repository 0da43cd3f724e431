/**
 * Service and check bodies (consul-api.md §10–§11; Consul's structs.ServiceDefinition,
 * CheckType, CheckDefinition and their UnmarshalJSON aliases), decoded into the agent's
 * registrations and the catalog's service rows, with Consul's error texts:
 * - decode errors (bad JSON, wrong types, bad durations): `400 Request decode failed: ...`;
 * - agent service register: `Missing service name`, `Invalid service address`,
 *   `Status for checks must 'passing', 'warning', 'critical'`, `Invalid check: ...`;
 * - agent check register: `Missing check name`, `Bad check status`, `Invalid check: ...`.
 * Field names match case-insensitively (Go), and the snake_case aliases of Consul's config
 * format (`enable_tag_override`, `deregister_critical_service_after`, `args`, ...) are accepted,
 * so `conclave services register` can send a service file as it is.
 */
import type { CheckKind, CheckSpec } from '../agent/check-types.js';
import { CHECK_OUTPUT_BYTES_MAX } from '../agent/check-types.js';
import { BadRequestError } from '../lib/errors.js';
import type { HealthStatus, ServiceDefinition } from '../state/commands.js';
import { SERVICE_PORT_MAX } from '../state/limits.js';
import { parseGoDuration } from './go-duration.js';
import {
  JsonTypeError, arrayField, boolField, isJsonObject, matchFields, stringArrayField, stringField, stringMapField, unexpectedType, unexpectedValueType,
} from './json-fields.js';
import { JsonNumber, JsonObject, JsonSyntaxError, readJson } from './json-reader.js';
import type { JsonValue } from './json-reader.js';

/** Consul's metaMaxKeyPairs, metaKeyMaxLength and metaValueMaxLength (structs.ValidateMetadata). */
const META_PAIRS_MAX = 64;
const META_KEY_LENGTH_MAX = 128;
const META_VALUE_LENGTH_MAX = 512;
const META_KEY_FORMAT = /^[a-zA-Z0-9_-]+$/;

/** Names, IDs and tags longer than this are not names: the RPC layer bounds them alike. */
export const SERVICE_NAME_LENGTH_MAX = 256;

/** Tags on one service: Consul has no bound; the status report needs one. */
export const SERVICE_TAGS_COUNT_MAX = 256;

/** Checks in one service registration (Check plus Checks). */
export const SERVICE_CHECKS_COUNT_MAX = 64;

/** Check types Consul has and this agent does not run: refused rather than silently never run. */
const UNSUPPORTED_CHECK_FIELDS = ['GRPC', 'DockerContainerID', 'AliasNode', 'AliasService', 'UDP', 'H2PING', 'OSService'] as const;

const CHECK_TYPE_FIELDS = [
  'CheckID', 'ID', 'Name', 'Notes', 'ServiceID', 'Status', 'ScriptArgs', 'Args', 'HTTP', 'Header', 'Method', 'Body', 'TCP',
  'Interval', 'Timeout', 'TTL', 'DeregisterCriticalServiceAfter', 'TLSSkipVerify', 'OutputMaxSize', ...UNSUPPORTED_CHECK_FIELDS,
] as const;
type CheckField = (typeof CHECK_TYPE_FIELDS)[number];

const SERVICE_FIELDS = [
  'ID', 'Name', 'Service', 'Tags', 'Address', 'Meta', 'Port', 'Weights', 'EnableTagOverride', 'Kind', 'Check', 'Checks',
] as const;
type ServiceField = (typeof SERVICE_FIELDS)[number];

/** Consul's snake_case aliases (lib.TranslateKeys in its UnmarshalJSON methods), lower-cased. */
const ALIASES: Readonly<Record<string, string>> = {
  enable_tag_override: 'EnableTagOverride',
  deregister_critical_service_after: 'DeregisterCriticalServiceAfter',
  script_args: 'ScriptArgs',
  service_id: 'ServiceID',
  tls_skip_verify: 'TLSSkipVerify',
  output_max_size: 'OutputMaxSize',
  docker_container_id: 'DockerContainerID',
  alias_node: 'AliasNode',
  alias_service: 'AliasService',
  check_id: 'CheckID',
};

/** The object with snake_case aliases renamed to Consul's field names. */
function translateKeys(object: JsonObject): JsonObject {
  return new JsonObject(object.entries.map(([key, value]) => [ALIASES[key.toLowerCase()] ?? key, value] as const));
}

/** Runs a decoder; JSON syntax and type errors become `400 Request decode failed: ...`. */
export function decodeBody<T>(text: string, decode: (json: JsonValue) => T): T {
  try {
    return decode(readJson(text));
  } catch (error) {
    if (error instanceof JsonSyntaxError || error instanceof JsonTypeError) throw new BadRequestError(`Request decode failed: ${error.message}`);
    throw error;
  }
}

/**
 * A duration member (Consul's CheckType.UnmarshalJSON): a Go duration string or a number of ns,
 * as whole milliseconds (rounded up, so `500us` stays a positive duration). 0 when absent.
 */
function durationMs(value: JsonValue | undefined, field: string): number {
  if (value === undefined || value === null) return 0;
  let ns: bigint;
  if (typeof value === 'string') {
    const parsed = parseGoDuration(value);
    if (!parsed.ok) throw new JsonTypeError(parsed.error);
    ns = parsed.ns;
  } else if (value instanceof JsonNumber && /^-?\d+$/.test(value.text)) {
    ns = BigInt(value.text);
  } else {
    throw unexpectedType(value, field, 'time.Duration');
  }
  if (ns <= 0n) return ns === 0n ? 0 : -1;
  const ms = (ns + 999_999n) / 1_000_000n;
  return ms > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(ms);
}

/** An int member (Go `int`); undefined when absent or null. */
function intField(value: JsonValue | undefined, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!(value instanceof JsonNumber) || !/^-?\d+$/.test(value.text)) throw unexpectedType(value, field, 'int');
  return Number(value.text);
}

/** `Header`: map[string][]string. */
function headerField(value: JsonValue | undefined): Record<string, string[]> {
  const header: Record<string, string[]> = {};
  if (value === undefined || value === null) return header;
  if (!isJsonObject(value)) throw unexpectedType(value, 'CheckType.Header', 'map[string][]string');
  for (const [name, values] of value.entries) {
    const list = stringArrayField(values, 'CheckType.Header') ?? [];
    Object.defineProperty(header, name, { value: list, enumerable: true, writable: true, configurable: true });
  }
  return header;
}

/** A check body's fields, decoded (types checked), before Consul's validation. */
interface RawCheck {
  readonly fields: Map<CheckField, JsonValue>;
  readonly text: (field: CheckField) => string;
}

function rawCheck(value: JsonValue, goType: string): RawCheck {
  if (!isJsonObject(value)) throw unexpectedType(value, goType, goType);
  const fields = matchFields(translateKeys(value), CHECK_TYPE_FIELDS);
  return { fields, text: (field) => stringField(fields.get(field), `CheckType.${field}`) ?? '' };
}

/** CheckType.Validate, with the kind it gives; the message goes after `Invalid check: `. */
function checkKindOf(raw: RawCheck, args: readonly string[], intervalMs: number, ttlMs: number): CheckKind {
  for (const field of UNSUPPORTED_CHECK_FIELDS) {
    if (raw.text(field) !== '') throw new BadRequestError(`Invalid check: ${field} checks are not supported by this agent`);
  }
  const intervalCheck = args.length > 0 || raw.text('HTTP') !== '' || raw.text('TCP') !== '';
  if (intervalMs !== 0 && ttlMs !== 0) throw new BadRequestError('Invalid check: Interval and TTL cannot both be specified');
  if (intervalCheck && intervalMs <= 0) throw new BadRequestError('Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks');
  if (!intervalCheck && ttlMs <= 0) throw new BadRequestError('Invalid check: TTL must be > 0 for TTL checks');
  if (args.length > 0) return 'script';
  if (raw.text('HTTP') !== '') return 'http';
  if (raw.text('TCP') !== '') return 'tcp';
  return 'ttl';
}

/** A check registration; `badStatus` is the endpoint's text for a status it does not accept. */
function checkSpecOf(raw: RawCheck, defaults: { checkId: string; name: string; serviceId: string }, badStatus: string): CheckSpec {
  const { fields } = raw;
  const status = raw.text('Status');
  if (status !== '' && !['passing', 'warning', 'critical'].includes(status)) throw new BadRequestError(badStatus);
  const args = stringArrayField(fields.get('ScriptArgs'), 'CheckType.ScriptArgs') ?? stringArrayField(fields.get('Args'), 'CheckType.ScriptArgs') ?? [];
  const intervalMs = durationMs(fields.get('Interval'), 'CheckType.Interval');
  const ttlMs = durationMs(fields.get('TTL'), 'CheckType.TTL');
  const timeoutMs = durationMs(fields.get('Timeout'), 'CheckType.Timeout');
  const outputMaxBytes = intField(fields.get('OutputMaxSize'), 'CheckType.OutputMaxSize') ?? 0;
  if (outputMaxBytes < 0) throw new BadRequestError('Invalid check: MaxOutputMaxSize must be positive');
  const kind = checkKindOf(raw, args, intervalMs, ttlMs);
  const checkId = raw.text('CheckID') || raw.text('ID') || defaults.checkId;
  const name = raw.text('Name') || defaults.name;
  checkLength(checkId, 'CheckID');
  checkLength(name, 'check Name');
  return {
    checkId, name, notes: raw.text('Notes'), serviceId: defaults.serviceId || raw.text('ServiceID'),
    initialStatus: (status || 'critical') as HealthStatus, kind, http: raw.text('HTTP'), method: raw.text('Method'),
    header: headerField(fields.get('Header')), body: raw.text('Body'), tlsSkipVerify: boolField(fields.get('TLSSkipVerify'), 'CheckType.TLSSkipVerify') ?? false,
    tcp: raw.text('TCP'), args, intervalMs, timeoutMs: Math.max(timeoutMs, 0), ttlMs,
    deregisterCriticalServiceAfterMs: Math.max(durationMs(fields.get('DeregisterCriticalServiceAfter'), 'CheckType.DeregisterCriticalServiceAfter'), 0),
    outputMaxBytes: Math.min(outputMaxBytes, CHECK_OUTPUT_BYTES_MAX),
  };
}

function checkLength(text: string, what: string): void {
  if (text.length > SERVICE_NAME_LENGTH_MAX) throw new BadRequestError(`${what} is longer than ${SERVICE_NAME_LENGTH_MAX} characters`);
}

/** Consul's ValidateServiceMetadata; the message goes after the caller's prefix. */
export function metaError(meta: Readonly<Record<string, string>>): string | null {
  const keys = Object.keys(meta);
  if (keys.length > META_PAIRS_MAX) return `Node metadata cannot contain more than ${META_PAIRS_MAX} key/value pairs`;
  for (const key of keys) {
    const value = meta[key] ?? '';
    let reason: string | null = null;
    if (key === '') reason = 'Key cannot be blank';
    else if (!META_KEY_FORMAT.test(key)) reason = 'Key contains invalid characters';
    else if (key.length > META_KEY_LENGTH_MAX) reason = `Key is too long (limit: ${META_KEY_LENGTH_MAX} characters)`;
    else if (key.startsWith('consul-')) reason = "Key prefix 'consul-' is reserved for internal use";
    else if (value.length > META_VALUE_LENGTH_MAX) reason = `Value is too long (limit: ${META_VALUE_LENGTH_MAX} characters)`;
    if (reason !== null) return `Couldn't load metadata pair('${key}', '${value}'): ${reason}`;
  }
  return null;
}

/** `ipaddr.IsAny`: an unspecified address cannot be reached. */
function isAnyAddress(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '[::]';
}

/** Weights (`Invalid Weights: ...`); {1, 1} when absent. */
function weightsOf(value: JsonValue | undefined): { passing: number; warning: number } {
  if (value === undefined || value === null) return { passing: 1, warning: 1 };
  if (!isJsonObject(value)) throw unexpectedType(value, 'ServiceDefinition.Weights', 'structs.Weights');
  const fields = matchFields(value, ['Passing', 'Warning'] as const);
  const passing = intField(fields.get('Passing'), 'Weights.Passing') ?? 0;
  const warning = intField(fields.get('Warning'), 'Weights.Warning') ?? 0;
  if (passing < 1) throw new BadRequestError('Invalid Weights: Passing must be greater than 0');
  if (warning < 0) throw new BadRequestError('Invalid Weights: Warning must be greater or equal than 0');
  if (passing > 65_535 || warning > 65_535) throw new BadRequestError('Invalid Weights: weights are at most 65535');
  return { passing, warning };
}

/** The service fields shared by agent and catalog registration; `nameField` is `Name` or `Service`. */
function serviceOf(fields: Map<ServiceField, JsonValue>, nameField: 'Name' | 'Service', goType: string): ServiceDefinition {
  const text = (field: ServiceField): string => stringField(fields.get(field), `${goType}.${field}`) ?? '';
  const name = text(nameField);
  const tags = stringArrayField(fields.get('Tags'), `${goType}.Tags`) ?? [];
  const meta = stringMapField(fields.get('Meta'), `${goType}.Meta`);
  const port = intField(fields.get('Port'), `${goType}.Port`) ?? 0;
  const enableTagOverride = boolField(fields.get('EnableTagOverride'), `${goType}.EnableTagOverride`) ?? false;
  const weights = weightsOf(fields.get('Weights'));
  const kind = text('Kind');
  if (kind !== '') throw new BadRequestError(`Service kind ${JSON.stringify(kind)} is not supported by this agent`);
  if (port < 0 || port > SERVICE_PORT_MAX) throw new BadRequestError(`Invalid service port: ${port}`);
  const error = metaError(meta);
  if (error !== null) throw new BadRequestError(`Invalid Service Meta: ${error}`);
  if (tags.length > SERVICE_TAGS_COUNT_MAX) throw new BadRequestError(`Too many tags (${tags.length} > ${SERVICE_TAGS_COUNT_MAX})`);
  for (const value of [name, text('ID'), text('Address'), ...tags]) checkLength(value, 'A service name, ID, address or tag');
  return { serviceId: text('ID') || name, service: name, tags, address: text('Address'), meta, port, weights, enableTagOverride };
}

/** A decoded agent service registration. */
export interface AgentServiceRegistration {
  readonly service: ServiceDefinition;
  readonly checks: CheckSpec[];
}

/** `Check` then `Checks`, as Consul's ServiceDefinition.CheckTypes() appends them. */
function embeddedChecks(fields: Map<ServiceField, JsonValue>): JsonValue[] {
  const checks = [...(arrayField(fields.get('Checks'), 'ServiceDefinition.Checks', 'structs.CheckTypes') ?? [])];
  const single = fields.get('Check');
  if (single !== undefined && single !== null) checks.unshift(single);
  const present = checks.filter((check) => check !== null);
  if (present.length > SERVICE_CHECKS_COUNT_MAX) throw new BadRequestError(`Too many checks in one registration (${present.length} > ${SERVICE_CHECKS_COUNT_MAX})`);
  return present;
}

/** The service of a decoded body object, with Consul's agent-endpoint checks in Consul's order. */
export function agentServiceOf(object: JsonObject): AgentServiceRegistration {
  const fields = matchFields(translateKeys(object), SERVICE_FIELDS);
  const rawChecks = embeddedChecks(fields).map((value) => rawCheck(value, 'structs.CheckType'));
  const service = serviceOf(fields, 'Name', 'ServiceDefinition');
  if (service.service === '') throw new BadRequestError('Missing service name');
  if (isAnyAddress(service.address)) throw new BadRequestError('Invalid service address');
  const checks = rawChecks.map((raw, i) => checkSpecOf(raw, {
    checkId: rawChecks.length > 1 ? `service:${service.serviceId}:${i + 1}` : `service:${service.serviceId}`,
    name: `Service '${service.service}' check`,
    serviceId: service.serviceId,
  }, "Status for checks must 'passing', 'warning', 'critical'"));
  const ids = new Set<string>();
  for (const check of checks) {
    if (ids.has(check.checkId)) throw new BadRequestError(`Invalid check: duplicate CheckID ${JSON.stringify(check.checkId)} in one registration`);
    ids.add(check.checkId);
  }
  return { service, checks };
}

/** `PUT /v1/agent/service/register`. */
export function decodeAgentServiceRegistration(text: string): AgentServiceRegistration {
  return decodeBody(text, (json) => {
    if (!isJsonObject(json)) throw unexpectedValueType(json, 'structs.ServiceDefinition');
    return agentServiceOf(json);
  });
}

/** `PUT /v1/agent/check/register`. */
export function decodeAgentCheckRegistration(text: string): CheckSpec {
  return decodeBody(text, (json) => {
    if (!isJsonObject(json)) throw unexpectedValueType(json, 'structs.CheckDefinition');
    const raw = rawCheck(json, 'structs.CheckDefinition');
    if (raw.text('Name') === '') throw new BadRequestError('Missing check name');
    const status = raw.text('Status');
    if (status !== '' && !['passing', 'warning', 'critical'].includes(status)) throw new BadRequestError('Bad check status');
    return checkSpecOf(raw, { checkId: raw.text('Name'), name: raw.text('Name'), serviceId: '' }, 'Bad check status');
  });
}

/** `PUT /v1/agent/check/update/<id>`: `{"Status","Output"}`; another status is `400 Invalid check status: '<s>'`. */
export function decodeCheckUpdate(text: string): { status: HealthStatus; output: string } {
  return decodeBody(text === '' ? '{}' : text, (json) => {
    if (json !== null && !isJsonObject(json)) throw unexpectedValueType(json, 'agent.checkUpdate');
    const fields = json === null ? new Map<'Status' | 'Output', JsonValue>() : matchFields(json, ['Status', 'Output'] as const);
    const status = stringField(fields.get('Status'), 'checkUpdate.Status') ?? '';
    const output = stringField(fields.get('Output'), 'checkUpdate.Output') ?? '';
    if (status !== 'passing' && status !== 'warning' && status !== 'critical') throw new BadRequestError(`Invalid check status: '${status}'`);
    return { status, output };
  });
}

/**
 * The `Service` of `PUT /v1/catalog/register` (a NodeService: the name is `Service`), with
 * Consul's servicePreApply checks (500s): null when absent.
 */
export function catalogServiceOf(value: JsonValue | undefined): ServiceDefinition | null {
  if (value === undefined || value === null) return null;
  if (!isJsonObject(value)) throw unexpectedType(value, 'RegisterRequest.Service', 'structs.NodeService');
  const fields = matchFields(value, SERVICE_FIELDS);
  return serviceOf(fields, 'Service', 'NodeService');
}
