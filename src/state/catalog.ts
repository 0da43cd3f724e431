/**
 * The node catalog: nodes, their services and their health checks (Consul's `nodes`, `services`
 * and `checks` tables), with one index per table. A service check carries its service's name and
 * tags (copied when it is written, as Consul's ensureCheckTxn does), so health reads need no join
 * to filter by service.
 *
 * Pure storage: invalidating the sessions that depend on a node or check is done by the caller
 * (fsm.ts via sessions.ts), so this module depends on nothing else of the state machine.
 */
import { assert } from '../lib/assert.js';
import type { CheckDefinition, HealthStatus, ServiceDefinition } from './commands.js';
import { OrderedMap, compareKeys } from './ordered-map.js';
import type { WriteContext } from './write-context.js';

/** A catalog node, with Consul's JSON field names (consul-api.md §11). */
export interface CatalogNode {
  readonly ID: string;
  readonly Node: string;
  readonly Address: string;
  readonly Datacenter: string;
  readonly TaggedAddresses: Readonly<Record<string, string>>;
  readonly Meta: Readonly<Record<string, string>>;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

/** A health check, with Consul's JSON field names (consul-api.md §12; HTTP adds Definition etc.). */
export interface HealthCheck {
  readonly Node: string;
  readonly CheckID: string;
  readonly Name: string;
  readonly Status: HealthStatus;
  readonly Notes: string;
  readonly Output: string;
  readonly ServiceID: string;
  readonly ServiceName: string;
  readonly ServiceTags: readonly string[];
  readonly Type: string;
  readonly Interval: string;
  readonly Timeout: string;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

/** A service instance of a node (Consul's NodeService plus its Node), with Consul's field names. */
export interface CatalogService {
  readonly Node: string;
  readonly ID: string;
  readonly Service: string;
  readonly Tags: readonly string[];
  readonly Address: string;
  readonly Meta: Readonly<Record<string, string>>;
  readonly Port: number;
  readonly Weights: { readonly Passing: number; readonly Warning: number };
  readonly EnableTagOverride: boolean;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

/** The node fields a registration sets. */
export interface NodeFields {
  readonly ID: string;
  readonly Node: string;
  readonly Address: string;
  readonly Datacenter: string;
  readonly TaggedAddresses: Readonly<Record<string, string>>;
  readonly Meta: Readonly<Record<string, string>>;
}

/** The catalog part of a snapshot. */
export interface CatalogSnapshot {
  readonly nodesIndex: number;
  readonly servicesIndex: number;
  readonly checksIndex: number;
  readonly nodes: readonly CatalogNode[];
  /** Sorted by Node, then ID. */
  readonly services: readonly CatalogService[];
  readonly checks: readonly HealthCheck[];
}

/** Nodes, services and checks, each table with its own index. */
export class CatalogStore {
  readonly #nodes = new OrderedMap<CatalogNode>();
  /** node → serviceId → service; a service never outlives its node. */
  readonly #services = new Map<string, OrderedMap<CatalogService>>();
  /** service name → node → service ids: the instances of a service without a scan. */
  readonly #byName = new Map<string, Map<string, Set<string>>>();
  /** node → checkId → check; a check never outlives its node. */
  readonly #checks = new Map<string, OrderedMap<HealthCheck>>();
  #nodesIndex = 0;
  #servicesIndex = 0;
  #checksIndex = 0;

  /** The `nodes` table index. */
  get nodesIndex(): number {
    return this.#nodesIndex;
  }

  /** The `services` table index. */
  get servicesIndex(): number {
    return this.#servicesIndex;
  }

  /** The `checks` table index. */
  get checksIndex(): number {
    return this.#checksIndex;
  }

  /** The node named `name`. */
  getNode(name: string): CatalogNode | undefined {
    return this.#nodes.get(name);
  }

  /** Every node, sorted by name (as bytes). */
  listNodes(): CatalogNode[] {
    return [...this.#nodes.entries()].map(([, node]) => node);
  }

  /** One service of a node. */
  getService(node: string, serviceId: string): CatalogService | undefined {
    return this.#services.get(node)?.get(serviceId);
  }

  /** The services of one node, sorted by ID ([] for an unknown node). */
  nodeServices(node: string): CatalogService[] {
    const services = this.#services.get(node);
    return services === undefined ? [] : [...services.entries()].map(([, service]) => service);
  }

  /** The instances of the service named `name`, sorted by Node then ID. */
  serviceInstances(name: string): CatalogService[] {
    const nodes = this.#byName.get(name);
    if (nodes === undefined) return [];
    const result: CatalogService[] = [];
    for (const node of [...nodes.keys()].sort(compareKeys)) {
      for (const id of [...(nodes.get(node) ?? [])].sort(compareKeys)) {
        const service = this.getService(node, id);
        assert(service !== undefined, 'the name index only names existing services');
        result.push(service);
      }
    }
    return result;
  }

  /** Every service name, sorted (as bytes). */
  serviceNames(): string[] {
    return [...this.#byName.keys()].sort(compareKeys);
  }

  /** Every service, sorted by Node then ID (snapshot). */
  listServices(): CatalogService[] {
    return this.listNodes().flatMap((node) => this.nodeServices(node.Node));
  }

  /** One check of a node. */
  getCheck(node: string, checkId: string): HealthCheck | undefined {
    return this.#checks.get(node)?.get(checkId);
  }

  /** The checks of one node, sorted by CheckID ([] for an unknown node). */
  nodeChecks(node: string): HealthCheck[] {
    const checks = this.#checks.get(node);
    return checks === undefined ? [] : [...checks.entries()].map(([, check]) => check);
  }

  /** Every check, sorted by Node then CheckID (consul-api.md §12). */
  listChecks(): HealthCheck[] {
    return this.listNodes().flatMap((node) => this.nodeChecks(node.Node));
  }

  /** Checks in one state, or every check for `any` (`/v1/health/state/<state>`). */
  checksInState(state: HealthStatus | 'any'): HealthCheck[] {
    const all = this.listChecks();
    return state === 'any' ? all : all.filter((check) => check.Status === state);
  }

  /** Upserts a node; a registration that changes nothing keeps its ModifyIndex (Consul's IsSame). */
  upsertNode(context: WriteContext, fields: NodeFields): void {
    const existing = this.#nodes.get(fields.Node);
    if (existing !== undefined && sameNode(existing, fields)) return;
    const node: CatalogNode = Object.freeze({
      ...fields,
      CreateIndex: existing?.CreateIndex ?? context.index,
      ModifyIndex: context.index,
    });
    this.#nodes.set(node.Node, node);
    if (existing === undefined) {
      this.#checks.set(node.Node, new OrderedMap());
      this.#services.set(node.Node, new OrderedMap());
    }
    this.#nodesIndex = context.index;
    context.changes.tables.add('nodes');
  }

  /**
   * Upserts a service of an existing node; an unchanged one keeps its ModifyIndex. A changed
   * name or tags are copied onto the service's checks, which carry them.
   */
  upsertService(context: WriteContext, node: string, definition: ServiceDefinition): CatalogService {
    const services = this.#services.get(node);
    assert(services !== undefined, 'a service is registered on an existing node');
    const existing = services.get(definition.serviceId);
    const fields = serviceFields(node, definition);
    if (existing !== undefined && sameService(existing, fields)) return existing;
    const service: CatalogService = Object.freeze({
      ...fields,
      CreateIndex: existing?.CreateIndex ?? context.index,
      ModifyIndex: context.index,
    });
    if (existing !== undefined) this.#unindexName(existing);
    services.set(service.ID, service);
    this.#indexName(service);
    this.#servicesIndex = context.index;
    context.changes.tables.add('services');
    if (existing !== undefined && (existing.Service !== service.Service || !sameTags(existing.Tags, service.Tags))) {
      for (const check of this.nodeChecks(node)) {
        if (check.ServiceID !== service.ID) continue;
        const { CreateIndex: _c, ModifyIndex: _m, ...rest } = check;
        this.upsertCheck(context, node, definitionOf({ ...rest, ServiceName: service.Service, ServiceTags: service.Tags }));
      }
    }
    return service;
  }

  /** Removes one service and its checks; returns the removed checks, or null if it was unknown. */
  removeService(context: WriteContext, node: string, serviceId: string): HealthCheck[] | null {
    const services = this.#services.get(node);
    const service = services?.get(serviceId);
    if (services === undefined || service === undefined) return null;
    services.delete(serviceId);
    this.#unindexName(service);
    this.#servicesIndex = context.index;
    context.changes.tables.add('services');
    const removed = this.nodeChecks(node).filter((check) => check.ServiceID === serviceId);
    for (const check of removed) this.removeCheck(context, node, check.CheckID);
    return removed;
  }

  /** Upserts a check of an existing node; unchanged checks keep their ModifyIndex. */
  upsertCheck(context: WriteContext, node: string, definition: CheckDefinition): HealthCheck {
    const checks = this.#checks.get(node);
    assert(checks !== undefined, 'a check is registered on an existing node');
    const existing = checks.get(definition.checkId);
    const fields = checkFields(node, definition);
    if (existing !== undefined && sameCheck(existing, fields)) return existing;
    const check: HealthCheck = Object.freeze({
      ...fields,
      CreateIndex: existing?.CreateIndex ?? context.index,
      ModifyIndex: context.index,
    });
    checks.set(check.CheckID, check);
    this.#touchChecks(context);
    return check;
  }

  /** Sets a check's status and output; undefined if the check does not exist. */
  updateCheck(context: WriteContext, node: string, checkId: string, status: HealthStatus, output: string): HealthCheck | undefined {
    const existing = this.getCheck(node, checkId);
    if (existing === undefined) return undefined;
    const { CreateIndex: _c, ModifyIndex: _m, ...fields } = existing;
    return this.upsertCheck(context, node, definitionOf({ ...fields, Status: status, Output: output }));
  }

  /** Removes one check; returns whether it existed. */
  removeCheck(context: WriteContext, node: string, checkId: string): boolean {
    const deleted = this.#checks.get(node)?.delete(checkId) ?? false;
    if (deleted) this.#touchChecks(context);
    return deleted;
  }

  /** Removes a node, its services and checks; returns the removed checks, or null if the node was unknown. */
  removeNode(context: WriteContext, name: string): HealthCheck[] | null {
    if (!this.#nodes.has(name)) return null;
    const checks = this.nodeChecks(name);
    const services = this.nodeServices(name);
    this.#nodes.delete(name);
    this.#checks.delete(name);
    this.#services.delete(name);
    for (const service of services) this.#unindexName(service);
    this.#nodesIndex = context.index;
    context.changes.tables.add('nodes');
    if (services.length > 0) {
      this.#servicesIndex = context.index;
      context.changes.tables.add('services');
    }
    if (checks.length > 0) this.#touchChecks(context);
    return checks;
  }

  /** The whole catalog, sorted (snapshot). */
  exportState(): CatalogSnapshot {
    return {
      nodesIndex: this.#nodesIndex, servicesIndex: this.#servicesIndex, checksIndex: this.#checksIndex,
      nodes: this.listNodes(), services: this.listServices(), checks: this.listChecks(),
    };
  }

  /** Rebuilds a catalog from validated snapshot rows (every service's and check's node is among the nodes). */
  static fromState(state: CatalogSnapshot): CatalogStore {
    const store = new CatalogStore();
    for (const node of state.nodes) {
      store.#nodes.set(node.Node, Object.freeze({ ...node }));
      store.#checks.set(node.Node, new OrderedMap());
      store.#services.set(node.Node, new OrderedMap());
    }
    for (const service of state.services) {
      const services = store.#services.get(service.Node);
      assert(services !== undefined, `snapshot service ${service.ID} of unknown node ${service.Node}`);
      assert(!services.has(service.ID), 'snapshot services are unique per node');
      const frozen = Object.freeze({ ...service });
      services.set(service.ID, frozen);
      store.#indexName(frozen);
    }
    for (const check of state.checks) {
      const checks = store.#checks.get(check.Node);
      assert(checks !== undefined, `snapshot check ${check.CheckID} of unknown node ${check.Node}`);
      checks.set(check.CheckID, Object.freeze({ ...check }));
    }
    store.#nodesIndex = state.nodesIndex;
    store.#servicesIndex = state.servicesIndex;
    store.#checksIndex = state.checksIndex;
    return store;
  }

  #touchChecks(context: WriteContext): void {
    this.#checksIndex = context.index;
    context.changes.tables.add('checks');
  }

  #indexName(service: CatalogService): void {
    let nodes = this.#byName.get(service.Service);
    if (nodes === undefined) this.#byName.set(service.Service, (nodes = new Map()));
    let ids = nodes.get(service.Node);
    if (ids === undefined) nodes.set(service.Node, (ids = new Set()));
    ids.add(service.ID);
  }

  #unindexName(service: CatalogService): void {
    const nodes = this.#byName.get(service.Service);
    const ids = nodes?.get(service.Node);
    ids?.delete(service.ID);
    if (ids?.size === 0) nodes?.delete(service.Node);
    if (nodes?.size === 0) this.#byName.delete(service.Service);
  }
}

type ServiceFields = Omit<CatalogService, 'CreateIndex' | 'ModifyIndex'>;

function serviceFields(node: string, d: ServiceDefinition): ServiceFields {
  return {
    Node: node, ID: d.serviceId, Service: d.service, Tags: [...d.tags], Address: d.address, Meta: { ...d.meta }, Port: d.port,
    Weights: { Passing: d.weights.passing, Warning: d.weights.warning }, EnableTagOverride: d.enableTagOverride,
  };
}

/** The definition a stored service was written from (anti-entropy compares through it). */
export function serviceDefinitionOf(s: CatalogService): ServiceDefinition {
  return {
    serviceId: s.ID, service: s.Service, tags: s.Tags, address: s.Address, meta: s.Meta, port: s.Port,
    weights: { passing: s.Weights.Passing, warning: s.Weights.Warning }, enableTagOverride: s.EnableTagOverride,
  };
}

/** The definition a stored check was written from. */
export function checkDefinitionOf(check: HealthCheck): CheckDefinition {
  const { CreateIndex: _c, ModifyIndex: _m, ...fields } = check;
  return definitionOf(fields);
}

function sameService(a: ServiceFields, b: ServiceFields): boolean {
  return a.Node === b.Node && a.ID === b.ID && a.Service === b.Service && sameTags(a.Tags, b.Tags) && a.Address === b.Address
    && sameRecord(a.Meta, b.Meta) && a.Port === b.Port && a.Weights.Passing === b.Weights.Passing
    && a.Weights.Warning === b.Weights.Warning && a.EnableTagOverride === b.EnableTagOverride;
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((tag, i) => tag === b[i]);
}

type CheckFields = Omit<HealthCheck, 'CreateIndex' | 'ModifyIndex'>;

function checkFields(node: string, d: CheckDefinition): CheckFields {
  return {
    Node: node, CheckID: d.checkId, Name: d.name, Status: d.status, Notes: d.notes, Output: d.output,
    ServiceID: d.serviceId, ServiceName: d.serviceName, ServiceTags: [...d.serviceTags], Type: d.type,
    Interval: d.interval, Timeout: d.timeout,
  };
}

function definitionOf(c: CheckFields): CheckDefinition {
  return {
    checkId: c.CheckID, name: c.Name, status: c.Status, notes: c.Notes, output: c.Output,
    serviceId: c.ServiceID, serviceName: c.ServiceName, serviceTags: c.ServiceTags, type: c.Type,
    interval: c.Interval, timeout: c.Timeout,
  };
}

function sameNode(a: NodeFields, b: NodeFields): boolean {
  return a.ID === b.ID && a.Node === b.Node && a.Address === b.Address && a.Datacenter === b.Datacenter
    && sameRecord(a.TaggedAddresses, b.TaggedAddresses) && sameRecord(a.Meta, b.Meta);
}

function sameCheck(a: CheckFields, b: CheckFields): boolean {
  return a.Node === b.Node && a.CheckID === b.CheckID && a.Name === b.Name && a.Status === b.Status
    && a.Notes === b.Notes && a.Output === b.Output && a.ServiceID === b.ServiceID
    && a.ServiceName === b.ServiceName && a.Type === b.Type && a.Interval === b.Interval
    && a.Timeout === b.Timeout && sameTags(a.ServiceTags, b.ServiceTags);
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key]);
}
