/**
 * A minimal node catalog: nodes and their health checks (Consul's `nodes` and `checks` tables),
 * with one index per table. Node-level checks only for now (`serfHealth` and agent checks); the
 * check rows already carry ServiceID/ServiceName/ServiceTags so services can join later with a
 * `services` table and index.
 *
 * Pure storage: invalidating the sessions that depend on a node or check is done by the caller
 * (fsm.ts via sessions.ts), so this module depends on nothing else of the state machine.
 */
import { assert } from '../lib/assert.js';
import type { CheckDefinition, HealthStatus } from './commands.js';
import { OrderedMap } from './ordered-map.js';
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
  readonly checksIndex: number;
  readonly nodes: readonly CatalogNode[];
  readonly checks: readonly HealthCheck[];
}

/** Nodes and checks, each table with its own index. */
export class CatalogStore {
  readonly #nodes = new OrderedMap<CatalogNode>();
  /** node → checkId → check; a check never outlives its node. */
  readonly #checks = new Map<string, OrderedMap<HealthCheck>>();
  #nodesIndex = 0;
  #checksIndex = 0;

  /** The `nodes` table index. */
  get nodesIndex(): number {
    return this.#nodesIndex;
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
    if (existing === undefined) this.#checks.set(node.Node, new OrderedMap());
    this.#nodesIndex = context.index;
    context.changes.tables.add('nodes');
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

  /** Removes a node and its checks; returns the removed checks, or null if the node was unknown. */
  removeNode(context: WriteContext, name: string): HealthCheck[] | null {
    if (!this.#nodes.has(name)) return null;
    const checks = this.nodeChecks(name);
    this.#nodes.delete(name);
    this.#checks.delete(name);
    this.#nodesIndex = context.index;
    context.changes.tables.add('nodes');
    if (checks.length > 0) this.#touchChecks(context);
    return checks;
  }

  /** The whole catalog, sorted (snapshot). */
  exportState(): CatalogSnapshot {
    return { nodesIndex: this.#nodesIndex, checksIndex: this.#checksIndex, nodes: this.listNodes(), checks: this.listChecks() };
  }

  /** Rebuilds a catalog from validated snapshot rows (every check's node is among the nodes). */
  static fromState(state: CatalogSnapshot): CatalogStore {
    const store = new CatalogStore();
    for (const node of state.nodes) {
      store.#nodes.set(node.Node, Object.freeze({ ...node }));
      store.#checks.set(node.Node, new OrderedMap());
    }
    for (const check of state.checks) {
      const checks = store.#checks.get(check.Node);
      assert(checks !== undefined, `snapshot check ${check.CheckID} of unknown node ${check.Node}`);
      checks.set(check.CheckID, Object.freeze({ ...check }));
    }
    store.#nodesIndex = state.nodesIndex;
    store.#checksIndex = state.checksIndex;
    return store;
  }

  #touchChecks(context: WriteContext): void {
    this.#checksIndex = context.index;
    context.changes.tables.add('checks');
  }
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
    && a.Timeout === b.Timeout && a.ServiceTags.length === b.ServiceTags.length
    && a.ServiceTags.every((tag, i) => tag === b.ServiceTags[i]);
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key]);
}
