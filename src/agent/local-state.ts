/**
 * The services and checks registered with this agent (Consul's agent/local State): what
 * `/v1/agent/services|checks` list and `/v1/agent/service|check/*` change, the check timers (TTL
 * expiry, the interval runners, the DeregisterCriticalServiceAfter reaper), persistence in the
 * data directory, and the view the anti-entropy sync sends to the leader (service-sync.ts).
 *
 * Registrations (services, check definitions, maintenance) are persisted in one file written
 * atomically on every change, so they survive a restart; check statuses are not (a restarted
 * agent starts each check in its initial status, as Consul does for all but TTL checks). An agent
 * without a data directory keeps them in memory and says so once in its log.
 *
 * Errors carry Consul's texts and statuses (consul-api.md §10) and change nothing.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../lib/assert.js';
import { BadRequestError, CorruptionError, InternalError, NotFoundError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { CheckDefinition, HealthStatus, ServiceDefinition } from '../state/commands.js';
import { CheckRunner } from './check-runner.js';
import type { CheckResult } from './check-runner.js';
import { outputLimitOf, truncateOutput } from './check-types.js';
import type { CheckSpec } from './check-types.js';
import { formatGoDuration } from '../http/go-duration.js';
import { parsePersistedState } from './local-state-file.js';
import type { NodeServices } from './service-sync.js';

/** Services one agent may hold: far beyond any host; keeps the status report bounded. */
export const LOCAL_SERVICES_MAX = 512;

/** Checks one agent may hold (node and service checks together). */
export const LOCAL_CHECKS_MAX = 512;

/**
 * The budget of an agent's services and checks in one status report (JSON bytes, every check's
 * output counted at its limit). It keeps the leader's `node-sync` command well under the 1 MiB
 * command limit and the 4 MiB RPC frame.
 */
export const LOCAL_SYNC_BYTES_MAX = 512 * 1024;

/**
 * Consul's `check_update_interval`: a check whose status did not change has its new output
 * synced to the catalog at most this often (outputs with timestamps would otherwise cost a
 * Raft write per run). `/v1/agent/checks` always shows the latest output.
 */
export const CHECK_UPDATE_INTERVAL_MS = 5 * 60_000;

/** How often the DeregisterCriticalServiceAfter reaper looks (Consul: 30 s; finer here, it is cheap). */
export const REAP_INTERVAL_MS = 1000;

/** Changes within this window reach the servers in one report (a service with its checks). */
const CHANGE_DEBOUNCE_MS = 20;

/** The file of the registrations in the data directory. */
export const LOCAL_STATE_FILE = 'local-services.json';

/** Consul's node maintenance check (`structs.NodeMaint`). */
export const NODE_MAINTENANCE_CHECK_ID = '_node_maintenance';
/** Consul's service maintenance check prefix (`structs.ServiceMaintPrefix`). */
export const SERVICE_MAINTENANCE_PREFIX = '_service_maintenance:';
const DEFAULT_NODE_MAINTENANCE_REASON = 'Maintenance mode is enabled for this node, but no reason was provided. This is a default message.';
const DEFAULT_SERVICE_MAINTENANCE_REASON = 'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.';

/** Consul's error for script checks on an agent that does not allow them. */
export const SCRIPTS_DISABLED = "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true";

/** One check as the agent holds it. */
export interface LocalCheck {
  readonly spec: CheckSpec;
  readonly status: HealthStatus;
  readonly output: string;
  /** The service's name and tags ("" and [] for a node check). */
  readonly serviceName: string;
  readonly serviceTags: readonly string[];
}

interface CheckState {
  spec: CheckSpec;
  status: HealthStatus;
  output: string;
  /** Wall-clock ms since the check is critical (null when it is not). */
  criticalSinceMs: number | null;
  ttlTimer: NodeJS.Timeout | null;
  /** What the catalog view shows, and since when (see CHECK_UPDATE_INTERVAL_MS). */
  synced: { status: HealthStatus; output: string; atMs: number } | null;
}

/** Options of the local state. */
export interface LocalStateOptions {
  readonly nodeName: string;
  /** Null: nothing is persisted. */
  readonly dataDir: string | null;
  readonly enableScriptChecks: boolean;
  readonly logger: Logger;
  /** The wall clock (tests drive it); default Date.now. */
  readonly nowMs?: () => number;
  /** Passed to the check runner. */
  readonly checkRunsConcurrentMax?: number;
}

/** The services and checks of this agent. */
export class LocalState {
  readonly nodeName: string;
  readonly #services = new Map<string, ServiceDefinition>();
  readonly #checks = new Map<string, CheckState>();
  readonly #runner: CheckRunner;
  readonly #listeners = new Set<() => void>();
  readonly #path: string | null;
  readonly #enableScriptChecks: boolean;
  readonly #log: Logger;
  readonly #nowMs: () => number;
  readonly #reaper: NodeJS.Timeout;
  #changeTimer: NodeJS.Timeout | null = null;
  #closed = false;

  /** Loads the persisted registrations (if any) and starts their checks. */
  constructor(options: LocalStateOptions) {
    this.nodeName = options.nodeName;
    this.#path = options.dataDir === null ? null : join(options.dataDir, LOCAL_STATE_FILE);
    this.#enableScriptChecks = options.enableScriptChecks;
    this.#log = options.logger;
    this.#nowMs = options.nowMs ?? Date.now;
    this.#runner = new CheckRunner({
      logger: options.logger,
      onResult: (checkId, result) => this.#onResult(checkId, result),
      ...(options.checkRunsConcurrentMax === undefined ? {} : { concurrentMax: options.checkRunsConcurrentMax }),
    });
    if (this.#path === null) {
      this.#log.info({}, 'no data_dir: services and checks registered with this agent are kept in memory only and are lost on restart');
    } else {
      this.#load(this.#path);
    }
    this.#reaper = setInterval(() => this.#reap(), REAP_INTERVAL_MS);
    this.#reaper.unref();
  }

  /** Calls `listener` (debounced) after any change a sync must carry. */
  onChange(listener: () => void): void {
    this.#listeners.add(listener);
  }

  /** Every service, sorted by ID. */
  services(): ServiceDefinition[] {
    return [...this.#services.values()].sort((a, b) => compare(a.serviceId, b.serviceId));
  }

  /** One service. */
  service(id: string): ServiceDefinition | undefined {
    return this.#services.get(id);
  }

  /** Every check, sorted by CheckID. */
  checks(): LocalCheck[] {
    return [...this.#checks.values()].sort((a, b) => compare(a.spec.checkId, b.spec.checkId)).map((state) => this.#view(state));
  }

  /** One check. */
  check(id: string): LocalCheck | undefined {
    const state = this.#checks.get(id);
    return state === undefined ? undefined : this.#view(state);
  }

  /**
   * `PUT /v1/agent/service/register`: adds or replaces a service with its checks. With
   * `replaceExistingChecks`, the service's checks not in `checks` are removed.
   */
  registerService(service: ServiceDefinition, checks: readonly CheckSpec[], replaceExistingChecks: boolean): void {
    for (const check of checks) assert(check.serviceId === service.serviceId, 'embedded checks belong to their service');
    this.#vetChecks(checks);
    const removed = replaceExistingChecks
      ? [...this.#checks.values()].filter((state) => state.spec.serviceId === service.serviceId && !checks.some((c) => c.checkId === state.spec.checkId)
        && !state.spec.checkId.startsWith(SERVICE_MAINTENANCE_PREFIX))
      : [];
    this.#vetBudget([...this.#otherServices(service.serviceId), service], this.#specsAfter(checks, removed.map((state) => state.spec.checkId)));
    this.#services.set(service.serviceId, service);
    for (const state of removed) this.#dropCheck(state.spec.checkId);
    for (const check of checks) this.#addCheck(check);
    this.#persistAndNotify();
  }

  /** `PUT /v1/agent/service/deregister/<id>`: the service and its checks. */
  deregisterService(id: string): void {
    if (!this.#services.has(id)) {
      throw new NotFoundError(`Unknown service ID ${JSON.stringify(id)}. Ensure that the service ID is passed, not the service name.`);
    }
    this.#removeService(id);
    this.#persistAndNotify();
  }

  /** `PUT /v1/agent/check/register`. */
  registerCheck(spec: CheckSpec): void {
    if (spec.serviceId !== '' && !this.#services.has(spec.serviceId)) {
      throw new NotFoundError(`ServiceID ${JSON.stringify(spec.serviceId)} does not exist`);
    }
    this.#vetChecks([spec]);
    this.#vetBudget(this.services(), this.#specsAfter([spec], []));
    this.#addCheck(spec);
    this.#persistAndNotify();
  }

  /** `PUT /v1/agent/check/deregister/<id>`. */
  deregisterCheck(id: string): void {
    if (!this.#checks.has(id)) throw unknownCheck(id);
    this.#dropCheck(id);
    this.#persistAndNotify();
  }

  /** `PUT /v1/agent/check/pass|warn|fail|update/<id>`: a TTL check's status, and its TTL restarts. */
  updateTtl(id: string, status: HealthStatus, output: string): void {
    const state = this.#checks.get(id);
    if (state === undefined) throw unknownCheck(id);
    if (state.spec.kind !== 'ttl') throw new InternalError(`CheckID ${JSON.stringify(id)} does not have associated TTL`);
    this.#armTtl(state);
    this.#setStatus(state, status, truncateOutput(output, outputLimitOf(state.spec)));
  }

  /** `PUT /v1/agent/maintenance?enable=`: the `_node_maintenance` check. */
  setNodeMaintenance(enable: boolean, reason: string): void {
    if (!enable) {
      if (this.#checks.has(NODE_MAINTENANCE_CHECK_ID)) this.deregisterCheck(NODE_MAINTENANCE_CHECK_ID);
      return;
    }
    this.registerCheck(maintenanceSpec(NODE_MAINTENANCE_CHECK_ID, 'Node Maintenance Mode', reason || DEFAULT_NODE_MAINTENANCE_REASON, ''));
  }

  /** `PUT /v1/agent/service/maintenance/<id>?enable=`: the `_service_maintenance:<id>` check. */
  setServiceMaintenance(id: string, enable: boolean, reason: string): void {
    if (!this.#services.has(id)) throw new NotFoundError(`No service registered with ID ${JSON.stringify(id)}`);
    const checkId = `${SERVICE_MAINTENANCE_PREFIX}${id}`;
    if (!enable) {
      if (this.#checks.has(checkId)) this.deregisterCheck(checkId);
      return;
    }
    this.registerCheck(maintenanceSpec(checkId, 'Service Maintenance Mode', reason || DEFAULT_SERVICE_MAINTENANCE_REASON, id));
  }

  /**
   * What the catalog should hold for this node (the anti-entropy view): the services, and the
   * checks with the output last synced — a new output of an unchanged status is taken only
   * every CHECK_UPDATE_INTERVAL_MS.
   */
  catalogView(): NodeServices {
    const now = this.#nowMs();
    const checks: CheckDefinition[] = [];
    for (const state of this.#checks.values()) {
      const synced = state.synced;
      if (synced === null || synced.status !== state.status || (synced.output !== state.output && now - synced.atMs >= CHECK_UPDATE_INTERVAL_MS)) {
        state.synced = { status: state.status, output: state.output, atMs: now };
      }
      checks.push(checkDefinitionOf(this.#view(state), state.synced?.output ?? state.output));
    }
    return { services: this.services(), checks: checks.sort((a, b) => compare(a.checkId, b.checkId)) };
  }

  /** Stops every timer and runner. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#reaper);
    if (this.#changeTimer !== null) clearTimeout(this.#changeTimer);
    for (const state of this.#checks.values()) if (state.ttlTimer !== null) clearTimeout(state.ttlTimer);
    await this.#runner.close();
  }

  // ---------------------------------------------------------------------------------------

  #view(state: CheckState): LocalCheck {
    const service = state.spec.serviceId === '' ? undefined : this.#services.get(state.spec.serviceId);
    return { spec: state.spec, status: state.status, output: state.output, serviceName: service?.service ?? '', serviceTags: service?.tags ?? [] };
  }

  #otherServices(id: string): ServiceDefinition[] {
    return [...this.#services.values()].filter((service) => service.serviceId !== id);
  }

  /** The check specs after adding `added` and removing `removedIds`. */
  #specsAfter(added: readonly CheckSpec[], removedIds: readonly string[]): CheckSpec[] {
    const specs = new Map([...this.#checks.values()].map((state) => [state.spec.checkId, state.spec] as const));
    for (const id of removedIds) specs.delete(id);
    for (const spec of added) specs.set(spec.checkId, spec);
    return [...specs.values()];
  }

  #vetChecks(checks: readonly CheckSpec[]): void {
    for (const check of checks) {
      if (check.kind === 'script' && !this.#enableScriptChecks) throw new InternalError(SCRIPTS_DISABLED);
    }
  }

  /** Refuses a change past LOCAL_SERVICES_MAX, LOCAL_CHECKS_MAX or LOCAL_SYNC_BYTES_MAX. */
  #vetBudget(services: readonly ServiceDefinition[], checks: readonly CheckSpec[]): void {
    if (services.length > LOCAL_SERVICES_MAX) throw new BadRequestError(`Too many services on this agent (limit ${LOCAL_SERVICES_MAX})`);
    if (checks.length > LOCAL_CHECKS_MAX) throw new BadRequestError(`Too many checks on this agent (limit ${LOCAL_CHECKS_MAX})`);
    let bytes = Buffer.byteLength(JSON.stringify(services), 'utf8');
    for (const check of checks) bytes += Buffer.byteLength(JSON.stringify(check), 'utf8') + outputLimitOf(check);
    if (bytes > LOCAL_SYNC_BYTES_MAX) {
      throw new BadRequestError(`Registration refused: this agent's services and checks would take ${bytes} bytes in its status report (limit ${LOCAL_SYNC_BYTES_MAX})`);
    }
  }

  #addCheck(spec: CheckSpec): void {
    const previous = this.#checks.get(spec.checkId);
    if (previous !== undefined) this.#dropCheck(spec.checkId);
    const status = spec.kind === 'maintenance' ? 'maintenance' : spec.initialStatus;
    const state: CheckState = {
      spec, status, output: '', criticalSinceMs: status === 'critical' ? this.#nowMs() : null, ttlTimer: null, synced: null,
    };
    this.#checks.set(spec.checkId, state);
    if (spec.kind === 'ttl') this.#armTtl(state);
    else if (spec.kind === 'http' || spec.kind === 'tcp' || spec.kind === 'script') this.#runner.add(spec);
  }

  #dropCheck(id: string): void {
    const state = this.#checks.get(id);
    if (state === undefined) return;
    if (state.ttlTimer !== null) clearTimeout(state.ttlTimer);
    this.#runner.remove(id);
    this.#checks.delete(id);
  }

  #removeService(id: string): void {
    this.#services.delete(id);
    for (const state of [...this.#checks.values()]) if (state.spec.serviceId === id) this.#dropCheck(state.spec.checkId);
  }

  /** Consul's CheckTTL: no update within the TTL turns the check critical, keeping the last output. */
  #armTtl(state: CheckState): void {
    if (state.ttlTimer !== null) clearTimeout(state.ttlTimer);
    if (this.#closed) return;
    state.ttlTimer = setTimeout(() => {
      state.ttlTimer = null;
      if (this.#checks.get(state.spec.checkId) !== state) return;
      const last = state.output;
      this.#setStatus(state, 'critical', last === '' ? 'TTL expired' : `TTL expired (last output before timeout follows): ${last}`);
    }, state.spec.ttlMs);
    state.ttlTimer.unref();
  }

  #onResult(checkId: string, result: CheckResult): void {
    const state = this.#checks.get(checkId);
    if (state !== undefined) this.#setStatus(state, result.status, result.output);
  }

  #setStatus(state: CheckState, status: HealthStatus, output: string): void {
    if (status === 'critical' && state.criticalSinceMs === null) state.criticalSinceMs = this.#nowMs();
    if (status !== 'critical') state.criticalSinceMs = null;
    const changed = state.status !== status || state.output !== output;
    state.status = status;
    state.output = output;
    if (changed) this.#notify();
  }

  /** Consul's reapServices: a service whose check stayed critical past its limit is deregistered. */
  #reap(): void {
    const now = this.#nowMs();
    for (const state of [...this.#checks.values()]) {
      const limit = state.spec.deregisterCriticalServiceAfterMs;
      if (limit <= 0 || state.criticalSinceMs === null || now - state.criticalSinceMs < limit || state.spec.serviceId === '') continue;
      if (!this.#services.has(state.spec.serviceId)) continue;
      this.#log.warn({ check: state.spec.checkId, service: state.spec.serviceId }, 'check critical past DeregisterCriticalServiceAfter: deregistering its service');
      this.#removeService(state.spec.serviceId);
      this.#persistAndNotify();
    }
  }

  #notify(): void {
    if (this.#changeTimer !== null || this.#closed) return;
    this.#changeTimer = setTimeout(() => {
      this.#changeTimer = null;
      for (const listener of this.#listeners) listener();
    }, CHANGE_DEBOUNCE_MS);
    this.#changeTimer.unref();
  }

  #persistAndNotify(): void {
    this.#persist();
    this.#notify();
  }

  /** Writes every registration to a temporary file, syncs it, and renames it over the old one. */
  #persist(): void {
    if (this.#path === null) return;
    const content = JSON.stringify({ version: 1, services: this.services(), checks: [...this.#checks.values()].map((state) => state.spec) });
    const temp = `${this.#path}.tmp`;
    writeFileSync(temp, content);
    const fd = openSync(temp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, this.#path);
  }

  #load(path: string): void {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    const persisted = parsePersistedState(text);
    if (persisted === null) throw new CorruptionError(`${path}: not a valid registrations file; fix or remove it`);
    for (const service of persisted.services) this.#services.set(service.serviceId, service);
    for (const spec of persisted.checks) {
      if (spec.serviceId !== '' && !this.#services.has(spec.serviceId)) continue;
      if (spec.kind === 'script' && !this.#enableScriptChecks) {
        this.#log.warn({ check: spec.checkId }, 'script check not started: enable_script_checks is off');
        continue;
      }
      this.#addCheck(spec);
    }
    this.#log.info({ services: this.#services.size, checks: this.#checks.size }, 'restored local services and checks');
  }
}

function unknownCheck(id: string): NotFoundError {
  return new NotFoundError(`Unknown check ID ${JSON.stringify(id)}. Ensure that the check ID is passed, not the check name.`);
}

function maintenanceSpec(checkId: string, name: string, notes: string, serviceId: string): CheckSpec {
  return {
    checkId, name, notes, serviceId, initialStatus: 'maintenance', kind: 'maintenance', http: '', method: '', header: {}, body: '',
    tlsSkipVerify: false, tcp: '', args: [], intervalMs: 0, timeoutMs: 0, ttlMs: 0, deregisterCriticalServiceAfterMs: 0, outputMaxBytes: 0,
  };
}

/** Go's Duration.String() of whole ms; "" for 0 (the field is unset). */
export function durationText(ms: number): string {
  return ms === 0 ? '' : formatGoDuration(BigInt(ms) * 1_000_000n);
}

/** The catalog's check (HealthCheck fields) of a local check, with the output to show. */
export function checkDefinitionOf(check: LocalCheck, output: string): CheckDefinition {
  const { spec } = check;
  return {
    checkId: spec.checkId, name: spec.name, status: check.status, notes: spec.notes, output, serviceId: spec.serviceId,
    serviceName: check.serviceName, serviceTags: [...check.serviceTags], type: spec.kind,
    interval: durationText(spec.intervalMs), timeout: durationText(spec.timeoutMs),
  };
}

/** Byte order of UTF-16 strings is close enough for listing; sync hashing sorts by UTF-8 bytes itself. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
