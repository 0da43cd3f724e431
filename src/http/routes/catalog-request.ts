/**
 * The bodies of `PUT /v1/catalog/register` and `/deregister` (consul-api.md §11; Consul
 * agent/catalog_endpoint.go and agent/consul Catalog.Register/Deregister), decoded into the
 * state machine's node commands, with Consul's checks in Consul's order: decode (400
 * `Request decode failed: ...`), datacenter, `Must provide node`, `Bad node ID: ...`,
 * `Must provide address if SkipNodeUpdate is not set`, then the service and the checks (all 500
 * but the decode).
 *
 * A `Service` is registered with the node (servicePreApply's checks: `Must provide service name
 * (Service.Service) when service ID is provided`, `Invalid service address`); a check naming a
 * ServiceID must name that service or one the node has (the state machine answers `Missing
 * service registration` otherwise, and nothing is written).
 */
import type { AgentInfo } from '../../agent/agent-api.js';
import { BadRequestError, InternalError } from '../../lib/errors.js';
import { HEALTH_STATUSES } from '../../state/commands.js';
import type { CheckDefinition, HealthStatus, NodeRegisterCommand } from '../../state/commands.js';
import {
  JsonTypeError, arrayField, boolField, isJsonObject, matchFields, stringArrayField, stringField, stringMapField, unexpectedType, unexpectedValueType,
} from '../json-fields.js';
import { JsonSyntaxError, readJson } from '../json-reader.js';
import { CATALOG_CHECKS_COUNT_MAX } from '../limits.js';
import { catalogServiceOf } from '../service-request.js';
import type { JsonObject, JsonValue } from '../json-reader.js';

const REGISTER_FIELDS = [
  'Datacenter', 'ID', 'Node', 'Address', 'TaggedAddresses', 'NodeMeta', 'Service', 'Check', 'Checks', 'SkipNodeUpdate',
] as const;
const CHECK_FIELDS = [
  'Node', 'CheckID', 'Name', 'Status', 'Notes', 'Output', 'ServiceID', 'ServiceName', 'ServiceTags', 'Type', 'Interval', 'Timeout',
] as const;
const DEREGISTER_FIELDS = ['Datacenter', 'Node', 'ServiceID', 'CheckID'] as const;

/** A decoded register request: the command, and whether the node's own fields must be kept. */
export interface CatalogRegistration {
  readonly command: NodeRegisterCommand;
  /** `SkipNodeUpdate`: an existing node keeps its fields; only the checks are written. */
  readonly skipNodeUpdate: boolean;
}

/** A decoded deregister request. */
export interface CatalogDeregistration {
  readonly node: string;
  readonly serviceId: string;
  readonly checkId: string;
}

/** Reads a JSON object body; Consul's `400 Request decode failed: ...` otherwise. */
function decodeObject<T>(text: string, goType: string, decode: (object: JsonObject | null) => T): T {
  try {
    const json = readJson(text);
    if (json !== null && !isJsonObject(json)) throw unexpectedValueType(json, `structs.${goType}`);
    return decode(json);
  } catch (error) {
    if (error instanceof JsonSyntaxError || error instanceof JsonTypeError) {
      throw new BadRequestError(`Request decode failed: ${error.message}`);
    }
    throw error;
  }
}

/** Consul's checkDatacenter for bodies: `Datacenter` empty or ours, else `No path to datacenter`. */
function checkBodyDatacenter(datacenter: string, info: AgentInfo): void {
  if (datacenter !== '' && datacenter !== info.datacenter) throw new InternalError('No path to datacenter');
}

/** go-uuid's ParseUUID errors, which Consul returns as `Bad node ID: <error>`. */
export function uuidError(id: string): string | null {
  if (id.length !== 36) return 'uuid string is wrong length';
  if (id[8] !== '-' || id[13] !== '-' || id[18] !== '-' || id[23] !== '-') return 'uuid is improperly formatted';
  const bad = id.replace(/-/g, '').match(/[^0-9a-fA-F]/);
  if (bad === null) return null;
  const char = bad[0];
  const code = (char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
  return `encoding/hex: invalid byte: U+${code} '${char}'`;
}

function statusOf(text: string): HealthStatus {
  // Consul stores a missing status as critical (ensureCheckTxn).
  if (text === '') return 'critical';
  if ((HEALTH_STATUSES as readonly string[]).includes(text)) return text as HealthStatus;
  throw new BadRequestError(`Invalid check status: '${text}'`);
}

type CheckField = (typeof CHECK_FIELDS)[number];
/** A check as decoded, before Consul's fix-ups: every string field ("" when absent). */
type RawCheck = Readonly<Record<Exclude<CheckField, 'ServiceTags'>, string>>;

/** Decodes one check (type errors are decode errors: 400, before any other check). */
function decodeCheck(value: JsonValue): RawCheck {
  if (!isJsonObject(value)) throw unexpectedType(value, 'RegisterRequest.Checks', 'structs.HealthCheck');
  const fields = matchFields(value, CHECK_FIELDS);
  stringArrayField(fields.get('ServiceTags'), 'HealthCheck.ServiceTags');
  const raw: Record<string, string> = {};
  for (const name of CHECK_FIELDS) {
    if (name !== 'ServiceTags') raw[name] = stringField(fields.get(name), `HealthCheck.${name}`) ?? '';
  }
  return raw as RawCheck;
}

/** `Check` then `Checks`, decoded, as Consul appends them. */
function decodeChecks(fields: Map<(typeof REGISTER_FIELDS)[number], JsonValue>): RawCheck[] {
  const values = [...(arrayField(fields.get('Checks'), 'RegisterRequest.Checks', '[]*structs.HealthCheck') ?? [])];
  const single = fields.get('Check');
  if (single !== undefined && single !== null) values.unshift(single);
  const checks = values.filter((value) => value !== null);
  if (checks.length > CATALOG_CHECKS_COUNT_MAX) {
    throw new BadRequestError(`Too many checks in one registration (${checks.length} > ${CATALOG_CHECKS_COUNT_MAX})`);
  }
  return checks.map(decodeCheck);
}

/** A check with Consul's fix-ups (Node defaults to the request's, CheckID to Name). */
function checkOf(raw: RawCheck, node: string): CheckDefinition {
  const checkNode = raw.Node || node;
  if (checkNode !== node) throw new InternalError(`Check node "${checkNode}" does not match the registered node "${node}"`);
  const checkId = raw.CheckID || raw.Name;
  if (checkId === '') throw new InternalError('Missing check ID: give CheckID or Name');
  // The service's name and tags are filled in by the state machine (ensureCheckTxn).
  return {
    checkId, name: raw.Name, status: statusOf(raw.Status), notes: raw.Notes, output: raw.Output,
    serviceId: raw.ServiceID, serviceName: '', serviceTags: [], type: raw.Type, interval: raw.Interval, timeout: raw.Timeout,
  };
}

/** The checks to write; a repeated CheckID keeps its last definition (Consul applies them in order). */
function checksOf(raws: readonly RawCheck[], node: string): CheckDefinition[] {
  const byId = new Map<string, CheckDefinition>();
  for (const raw of raws) {
    const check = checkOf(raw, node);
    byId.delete(check.checkId);
    byId.set(check.checkId, check);
  }
  return [...byId.values()];
}

function decodeRegistration(object: JsonObject | null, info: AgentInfo): CatalogRegistration {
  const fields = object === null ? new Map<(typeof REGISTER_FIELDS)[number], JsonValue>() : matchFields(object, REGISTER_FIELDS);
  const text = (field: (typeof REGISTER_FIELDS)[number]): string => stringField(fields.get(field), `RegisterRequest.${field}`) ?? '';
  const datacenter = text('Datacenter');
  const node = text('Node');
  const id = text('ID');
  const address = text('Address');
  const taggedAddresses = stringMapField(fields.get('TaggedAddresses'), 'RegisterRequest.TaggedAddresses');
  const meta = stringMapField(fields.get('NodeMeta'), 'RegisterRequest.NodeMeta');
  const skipNodeUpdate = boolField(fields.get('SkipNodeUpdate'), 'RegisterRequest.SkipNodeUpdate') ?? false;
  const rawChecks = decodeChecks(fields);
  checkBodyDatacenter(datacenter, info);
  if (node === '') throw new InternalError('Must provide node');
  const badId = id === '' ? null : uuidError(id);
  if (badId !== null) throw new InternalError(`Bad node ID: ${badId}`);
  if (address === '' && !skipNodeUpdate) throw new InternalError('Must provide address if SkipNodeUpdate is not set');
  const service = catalogServiceOf(fields.get('Service'));
  if (service !== null && service.service === '') {
    throw new InternalError(service.serviceId === '' ? 'Must provide service name' : 'Must provide service name (Service.Service) when service ID is provided');
  }
  if (service !== null && (service.address === '0.0.0.0' || service.address === '::' || service.address === '[::]')) throw new InternalError('Invalid service address');
  const checks = checksOf(rawChecks, node);
  const command: NodeRegisterCommand = {
    type: 'node-register', nowMs: 0, node, id, address, datacenter: info.datacenter, taggedAddresses, meta, checks,
    ...(service === null ? {} : { service }),
  };
  return { command, skipNodeUpdate };
}

/** Decodes a register body (`text` is the body as UTF-8); throws Consul's errors. */
export function decodeCatalogRegistration(text: string, info: AgentInfo): CatalogRegistration {
  return decodeObject(text, 'RegisterRequest', (object) => decodeRegistration(object, info));
}

/** Decodes a deregister body; throws Consul's errors. */
export function decodeCatalogDeregistration(text: string, info: AgentInfo): CatalogDeregistration {
  return decodeObject(text, 'DeregisterRequest', (object) => {
    const fields = object === null ? new Map<(typeof DEREGISTER_FIELDS)[number], JsonValue>() : matchFields(object, DEREGISTER_FIELDS);
    const field = (name: (typeof DEREGISTER_FIELDS)[number]): string => stringField(fields.get(name), `DeregisterRequest.${name}`) ?? '';
    const deregistration = { node: field('Node'), serviceId: field('ServiceID'), checkId: field('CheckID') };
    checkBodyDatacenter(field('Datacenter'), info);
    if (deregistration.node === '') throw new InternalError('Must provide node');
    return deregistration;
  });
}
