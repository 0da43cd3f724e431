/**
 * The Nodes and Services views' data, from Consul's API shapes only (consul-api.md §10–12):
 * `/v1/catalog/nodes`, `/v1/health/state/any`, `/v1/agent/members`, `/v1/catalog/services`,
 * `/v1/health/service/<s>`, `/v1/catalog/node/<n>`. Nothing here knows Conclave's internals, so
 * the views light up as the service catalog fills, whoever fills it. Readers are lenient about
 * fields they do not need and strict about the ones they do.
 */
import { indexOf } from './consul-json.js';

/** A check's status (Consul's; anything else is shown as it is). */
export type CheckStatus = 'passing' | 'warning' | 'critical';

/** The worst of a set of checks; `none` when there are none. */
export type Health = CheckStatus | 'none';

/** One health check (consul-api.md §12 HealthCheck). */
export interface HealthCheck {
  readonly node: string;
  readonly checkId: string;
  readonly name: string;
  readonly status: string;
  readonly output: string;
  readonly notes: string;
  readonly serviceId: string;
  readonly serviceName: string;
  readonly type: string;
  readonly modifyIndex: number;
}

/** One catalog node (consul-api.md §11 Node). */
export interface CatalogNode {
  readonly id: string;
  readonly name: string;
  readonly address: string;
  readonly datacenter: string;
  readonly taggedAddresses: Readonly<Record<string, string>>;
  readonly meta: Readonly<Record<string, string>>;
  readonly modifyIndex: number;
}

/** One member of the cluster (consul-api.md §10 Member). */
export interface Member {
  readonly name: string;
  readonly address: string;
  readonly role: 'server' | 'client';
  readonly status: 'none' | 'alive' | 'leaving' | 'left' | 'failed';
  /** The Raft/server RPC port of a server (`Tags.port`), else null. */
  readonly serverPort: string | null;
  /** `Tags.id`: the node ID, which is also a server's Raft ID. */
  readonly id: string;
}

/** One service instance on a node (NodeService / the Service of a health entry). */
export interface ServiceInstance {
  readonly id: string;
  readonly service: string;
  readonly tags: readonly string[];
  /** The service address, else the node's. */
  readonly address: string;
  readonly port: number;
}

const record = (value: unknown): Record<string, unknown> => (typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : {});
const text = (value: unknown): string => (typeof value === 'string' ? value : '');
const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []);
const stringMap = (value: unknown): Record<string, string> => Object.fromEntries(Object.entries(record(value)).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** Reads a list of health checks. */
export function healthChecksOf(json: unknown): HealthCheck[] {
  return list(json).map((item) => {
    const check = record(item);
    return {
      node: text(check.Node),
      checkId: text(check.CheckID),
      name: text(check.Name),
      status: text(check.Status),
      output: text(check.Output),
      notes: text(check.Notes),
      serviceId: text(check.ServiceID),
      serviceName: text(check.ServiceName),
      type: text(check.Type),
      modifyIndex: indexOf(check.ModifyIndex),
    };
  });
}

/** Reads one catalog node. */
export function catalogNodeOf(json: unknown): CatalogNode {
  const node = record(json);
  return {
    id: text(node.ID),
    name: text(node.Node),
    address: text(node.Address),
    datacenter: text(node.Datacenter),
    taggedAddresses: stringMap(node.TaggedAddresses),
    meta: stringMap(node.Meta),
    modifyIndex: indexOf(node.ModifyIndex),
  };
}

/** Reads `/v1/catalog/nodes`. */
export function catalogNodesOf(json: unknown): CatalogNode[] {
  return list(json).map(catalogNodeOf);
}

const MEMBER_STATUS = ['none', 'alive', 'leaving', 'left', 'failed'] as const;

/** Reads `/v1/agent/members`. */
export function membersOf(json: unknown): Member[] {
  return list(json).map((item) => {
    const member = record(item);
    const tags = stringMap(member.Tags);
    const status = typeof member.Status === 'number' ? MEMBER_STATUS[member.Status] ?? 'none' : 'none';
    const server = tags.role === 'consul';
    return {
      name: text(member.Name),
      address: text(member.Addr),
      role: server ? 'server' : 'client',
      status,
      serverPort: server ? tags.port ?? null : null,
      id: tags.id ?? '',
    };
  });
}

/** Reads `/v1/catalog/services`: service name → its tags, sorted by name. */
export function catalogServicesOf(json: unknown): { name: string; tags: string[] }[] {
  return Object.entries(record(json)).map(([name, tags]) => ({ name, tags: strings(tags) })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The worst status among `statuses` (critical > warning > passing); unknown ones count as critical. */
export function worstHealth(statuses: readonly string[]): Health {
  if (statuses.length === 0) return 'none';
  if (statuses.some((status) => status !== 'passing' && status !== 'warning')) return 'critical';
  return statuses.includes('warning') ? 'warning' : 'passing';
}

/** How many checks are in each status. */
export interface CheckCounts {
  readonly passing: number;
  readonly warning: number;
  readonly critical: number;
}

/** Counts `checks` by status (unknown statuses count as critical, as worstHealth does). */
export function countChecks(checks: readonly HealthCheck[]): CheckCounts {
  let passing = 0;
  let warning = 0;
  let critical = 0;
  for (const check of checks) {
    if (check.status === 'passing') passing++;
    else if (check.status === 'warning') warning++;
    else critical++;
  }
  return { passing, warning, critical };
}

/** One row of the Nodes view. */
export interface NodeRow {
  readonly name: string;
  readonly address: string;
  readonly datacenter: string;
  /** From membership; `unknown` for a node registered through the catalog alone. */
  readonly role: 'server' | 'client' | 'unknown';
  readonly memberStatus: Member['status'] | 'unknown';
  /** The serfHealth check: the agent's last report as the leader sees it. */
  readonly serfHealth: HealthCheck | null;
  readonly health: Health;
  readonly counts: CheckCounts;
}

/** The Nodes view's rows: servers first, then clients, then others, each by name. */
export function nodeRows(nodes: readonly CatalogNode[], checks: readonly HealthCheck[], members: readonly Member[]): NodeRow[] {
  const membersByName = new Map(members.map((member) => [member.name, member]));
  const rank = { server: 0, client: 1, unknown: 2 } as const;
  return nodes.map((node): NodeRow => {
    const member = membersByName.get(node.name);
    const own = checks.filter((check) => check.node === node.name);
    return {
      name: node.name,
      address: node.address,
      datacenter: node.datacenter,
      role: member?.role ?? 'unknown',
      memberStatus: member?.status ?? 'unknown',
      serfHealth: own.find((check) => check.checkId === 'serfHealth') ?? null,
      health: worstHealth(own.map((check) => check.status)),
      counts: countChecks(own),
    };
  }).sort((a, b) => rank[a.role] - rank[b.role] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** One row of the Services view. */
export interface ServiceRow {
  readonly name: string;
  readonly tags: readonly string[];
  /** The service's checks across all instances (node checks not included). */
  readonly counts: CheckCounts;
  readonly health: Health;
  /** Registered instances (`/v1/catalog/service/<s>`), null until counted. */
  readonly instances: number | null;
}

/**
 * The Services view's rows from `/v1/catalog/services`, `/v1/health/state/any` and the instance
 * counts read so far.
 */
export function serviceRows(services: readonly { name: string; tags: string[] }[], checks: readonly HealthCheck[],
  instanceCounts: ReadonlyMap<string, number> = new Map()): ServiceRow[] {
  return services.map((service) => {
    const own = checks.filter((check) => check.serviceName === service.name);
    return {
      name: service.name,
      tags: service.tags,
      counts: countChecks(own),
      health: worstHealth(own.map((check) => check.status)),
      instances: instanceCounts.get(service.name) ?? null,
    };
  });
}

/** One instance of `/v1/health/service/<s>`: where it runs and every check that covers it. */
export interface ServiceHealthEntry {
  readonly node: CatalogNode;
  readonly service: ServiceInstance;
  readonly checks: readonly HealthCheck[];
  readonly health: Health;
}

/** Reads a NodeService (the address falls back to the node's, as Consul's DNS does). */
export function serviceInstanceOf(json: unknown, nodeAddress: string): ServiceInstance {
  const service = record(json);
  const address = text(service.Address);
  return {
    id: text(service.ID),
    service: text(service.Service),
    tags: strings(service.Tags),
    address: address === '' ? nodeAddress : address,
    port: typeof service.Port === 'number' ? service.Port : 0,
  };
}

/** Reads `/v1/health/service/<s>`, sorted by node then service ID. */
export function serviceHealthOf(json: unknown): ServiceHealthEntry[] {
  return list(json).map((item) => {
    const entry = record(item);
    const node = catalogNodeOf(entry.Node);
    const checks = healthChecksOf(entry.Checks);
    return { node, service: serviceInstanceOf(entry.Service, node.address), checks, health: worstHealth(checks.map((check) => check.status)) };
  }).sort((a, b) => (a.node.name < b.node.name ? -1 : a.node.name > b.node.name ? 1 : a.service.id < b.service.id ? -1 : 1));
}

/** Reads `/v1/catalog/node/<n>` (null for an unknown node: Consul answers `200 null`). */
export function nodeServicesOf(json: unknown): { node: CatalogNode; services: ServiceInstance[] } | null {
  if (json === null || typeof json !== 'object') return null;
  const body = record(json);
  const node = catalogNodeOf(body.Node);
  const services = Object.values(record(body.Services)).map((service) => serviceInstanceOf(service, node.address))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { node, services };
}
