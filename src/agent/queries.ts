/**
 * The reads the HTTP API needs, as data: a `Query` names one read of the state machine, and
 * `runQuery` answers it with the blocking index that goes with it. Queries and their values are
 * plain objects, arrays, strings, numbers, bigints, byte arrays and null, so a follower or a
 * client agent can forward a query to the leader and get the value back through msgpack.
 *
 * `runBlockingQuery` is consul-api.md §3 (Consul's `blockingQuery`): it runs on whichever server
 * answers (locally, or after forwarding) and knows nothing about HTTP.
 */
import { assert, assertNever } from '../lib/assert.js';
import type { CatalogNode, CatalogService, HealthCheck } from '../state/catalog.js';
import type { HealthStatus, TxnKvOp } from '../state/commands.js';
import { HEALTH_STATUSES } from '../state/commands.js';
import type { IndexedRead, StateMachine } from '../state/fsm.js';
import type { KvEntry } from '../state/kv.js';
import type { Session } from '../state/sessions.js';
import type { TxnOutcome } from '../state/txn.js';
import { txnHasWrites } from '../state/txn.js';
import { TABLE_SCOPES } from '../state/watch.js';
import type { WatchScope } from '../state/watch.js';
import type { TableName } from '../state/write-context.js';

/** Consul's default blocking wait (`default_query_time`): a missing or zero `?wait=`. */
export const QUERY_WAIT_MS_DEFAULT = 5 * 60_000;

/** Consul's `max_query_time`: longer `?wait=` values are clamped to it. */
export const QUERY_WAIT_MS_MAX = 10 * 60_000;

/**
 * Consul's `JitterFraction`: a blocking query waits up to wait/16 longer, so a herd of watchers
 * started together does not wake together. node-consul aborts at wait + max(10%, 500 ms), so the
 * hold must stay below wait × 1.0625.
 */
export const QUERY_WAIT_JITTER_DIVISOR = 16;

/** `GET /v1/kv/<key>`: one entry, or null (404). */
export interface KvGetQuery {
  readonly kind: 'kv-get';
  readonly key: string;
}

/** `GET /v1/kv/<prefix>?recurse`: every entry under the prefix, in key-byte order. */
export interface KvListQuery {
  readonly kind: 'kv-list';
  readonly prefix: string;
}

/** `GET /v1/kv/<prefix>?keys[&separator=]`: key names, cut after the separator ("" = none). */
export interface KvKeysQuery {
  readonly kind: 'kv-keys';
  readonly prefix: string;
  readonly separator: string;
}

/** `PUT /v1/txn` whose ops only read (`txnHasWrites` false): evaluated without Raft. Never blocks. */
export interface TxnReadQuery {
  readonly kind: 'txn-read';
  readonly ops: readonly TxnKvOp[];
}

/** `GET /v1/session/info/<id>`: [] or [session]. */
export interface SessionInfoQuery {
  readonly kind: 'session-info';
  readonly id: string;
}

/** `GET /v1/session/list`. */
export interface SessionListQuery {
  readonly kind: 'session-list';
}

/** `GET /v1/session/node/<node>`. */
export interface SessionNodeQuery {
  readonly kind: 'session-node';
  readonly node: string;
}

/**
 * `?node-meta=key:value` (repeatable) of catalog and health reads: a node matches when its Meta
 * has every pair (Consul's SatisfiesMetaFilters). Absent or empty: no filtering.
 */
export type NodeMetaFilter = Readonly<Record<string, string>>;

/** `GET /v1/catalog/nodes`, sorted by name. */
export interface CatalogNodesQuery {
  readonly kind: 'catalog-nodes';
  readonly nodeMeta?: NodeMetaFilter;
}

/**
 * `GET /v1/catalog/services`: service name → its instances' unique tags (sorted; Consul's order
 * is a Go map's). With a node-meta filter only instances on matching nodes count.
 */
export interface CatalogServicesQuery {
  readonly kind: 'catalog-services';
  readonly nodeMeta?: NodeMetaFilter;
}

/**
 * `GET /v1/catalog/service/<s>[?tag=]`: the instances with their nodes, sorted by node then
 * service ID. An instance must have every tag (compared case-insensitively, as Consul does).
 */
export interface CatalogServiceQuery {
  readonly kind: 'catalog-service';
  readonly service: string;
  readonly tags?: readonly string[];
  readonly nodeMeta?: NodeMetaFilter;
}

/**
 * `/v1/health/service/<s>[?tag=][&passing]` and DNS: the instances with their nodes and checks
 * (the node's checks, serfHealth first, then the service's). `passing` drops every instance with
 * any check not passing, warnings and maintenance included.
 */
export interface ServiceInstancesQuery {
  readonly kind: 'service-instances';
  readonly service: string;
  readonly tags?: readonly string[];
  readonly passing?: boolean;
  readonly nodeMeta?: NodeMetaFilter;
}

/** One instance of a service and the node it runs on. */
export interface ServiceNodeRow {
  readonly node: CatalogNode;
  readonly service: CatalogService;
}

/** One instance of a service, its node and every check bearing on its health. */
export interface ServiceHealthRow extends ServiceNodeRow {
  readonly checks: HealthCheck[];
}

/** A node and its services (`GET /v1/catalog/node/<node>`). */
export interface NodeServicesRow {
  readonly node: CatalogNode;
  readonly services: CatalogService[];
}

/** `GET /v1/catalog/node/<node>`: the node and its services, or null (Consul answers `200 null`). */
export interface CatalogNodeQuery {
  readonly kind: 'catalog-node';
  readonly node: string;
}

/** `GET /v1/health/node/<node>`: the node's checks ([] if unknown). */
export interface HealthNodeQuery {
  readonly kind: 'health-node';
  readonly node: string;
}

/**
 * `GET /v1/health/state/<state>`: checks in a state, or all of them for `any`. Any other text is
 * a state no check is in: [] (Consul does not validate it either).
 */
export interface HealthStateQuery {
  readonly kind: 'health-state';
  /** A HealthStatus or `any`; other texts are accepted and match nothing. */
  readonly state: string;
  readonly nodeMeta?: NodeMetaFilter;
}

/** `GET /v1/health/checks/<service>`: the checks whose ServiceName is `service`. */
export interface HealthServiceChecksQuery {
  readonly kind: 'health-service-checks';
  readonly service: string;
  readonly nodeMeta?: NodeMetaFilter;
}

/** Every read the HTTP API makes of the state machine. */
export type Query =
  | KvGetQuery
  | KvListQuery
  | KvKeysQuery
  | TxnReadQuery
  | SessionInfoQuery
  | SessionListQuery
  | SessionNodeQuery
  | CatalogNodesQuery
  | CatalogNodeQuery
  | CatalogServicesQuery
  | CatalogServiceQuery
  | ServiceInstancesQuery
  | HealthNodeQuery
  | HealthStateQuery
  | HealthServiceChecksQuery;

/** The `kind` tag of a query. */
export type QueryKind = Query['kind'];

/** The query with tag `K`. */
export type QueryOf<K extends QueryKind> = Extract<Query, { readonly kind: K }>;

/** What each kind of query answers (msgpack-safe: no Maps, no classes, null rather than undefined). */
export interface QueryValues {
  'kv-get': KvEntry | null;
  'kv-list': KvEntry[];
  'kv-keys': string[];
  'txn-read': TxnOutcome;
  'session-info': Session[];
  'session-list': Session[];
  'session-node': Session[];
  'catalog-nodes': CatalogNode[];
  'catalog-node': NodeServicesRow | null;
  'catalog-services': Record<string, string[]>;
  'catalog-service': ServiceNodeRow[];
  'service-instances': ServiceHealthRow[];
  'health-node': HealthCheck[];
  'health-state': HealthCheck[];
  'health-service-checks': HealthCheck[];
}

/** The typed result of query `Q`. */
export type QueryValue<Q extends Query> = QueryValues[Q['kind']];

type Runner<K extends QueryKind> = (fsm: StateMachine, query: QueryOf<K>) => IndexedRead<QueryValues[K]>;

/**
 * One runner per kind (the compiler rejects a gap). Each index is the one `queryScope` watches,
 * so a waiter woken for the scope always reads a larger index (no busy loop).
 */
const RUNNERS: { readonly [K in QueryKind]: Runner<K> } = {
  'kv-get': (fsm, query) => {
    const read = fsm.readKey(query.key);
    return { index: read.index, value: read.value ?? null };
  },
  'kv-list': (fsm, query) => fsm.readPrefix(query.prefix),
  'kv-keys': (fsm, query) => fsm.readKeys(query.prefix, query.separator),
  'txn-read': (fsm, query) => ({ index: fsm.kvIndex, value: fsm.readTxn(query.ops) }),
  'session-info': (fsm, query) => {
    const session = fsm.getSession(query.id);
    return { index: fsm.indexFor(TABLE_SCOPES.sessions), value: session === undefined ? [] : [session] };
  },
  'session-list': (fsm) => ({ index: fsm.indexFor(TABLE_SCOPES.sessions), value: fsm.listSessions() }),
  'session-node': (fsm, query) => ({ index: fsm.indexFor(TABLE_SCOPES.sessions), value: fsm.nodeSessions(query.node) }),
  'catalog-nodes': (fsm, query) => ({
    index: fsm.indexFor(TABLE_SCOPES.catalogNodes),
    value: fsm.listNodes().filter((node) => satisfiesNodeMeta(node.Meta, query.nodeMeta)),
  }),
  'catalog-node': (fsm, query) => {
    const node = fsm.getNode(query.node);
    return { index: fsm.indexFor(TABLE_SCOPES.catalogNode), value: node === undefined ? null : { node, services: fsm.nodeServices(node.Node) } };
  },
  'catalog-services': (fsm, query) => ({ index: fsm.indexFor(servicesScope(query.nodeMeta)), value: catalogServices(fsm, query.nodeMeta) }),
  'catalog-service': (fsm, query) => ({ index: fsm.indexFor(TABLE_SCOPES.serviceNodes), value: serviceNodes(fsm, query) }),
  'service-instances': (fsm, query) => ({ index: fsm.indexFor(TABLE_SCOPES.healthService), value: serviceHealth(fsm, query) }),
  'health-node': (fsm, query) => ({ index: fsm.indexFor(TABLE_SCOPES.healthChecks), value: fsm.nodeChecks(query.node) }),
  'health-state': (fsm, query) => ({
    index: fsm.indexFor(checksScope(query.nodeMeta)),
    value: filterByNodeMeta(fsm, isKnownState(query.state) ? fsm.checksInState(query.state) : [], query.nodeMeta),
  }),
  'health-service-checks': (fsm, query) => ({
    index: fsm.indexFor(checksScope(query.nodeMeta)),
    value: filterByNodeMeta(fsm, fsm.checksInState('any').filter((check) => check.ServiceName === query.service), query.nodeMeta),
  }),
};

/** The scope of catalog services: with a node-meta filter, node changes matter too. */
function servicesScope(nodeMeta: NodeMetaFilter | undefined): WatchScope {
  return hasNodeMeta(nodeMeta) ? TABLE_SCOPES.serviceNodes : TABLE_SCOPES.catalogServices;
}

/** Consul's serviceTagsFilter: the instance has every tag, compared case-insensitively. */
export function hasEveryTag(serviceTags: readonly string[], wanted: readonly string[] | undefined): boolean {
  if (wanted === undefined || wanted.length === 0) return true;
  const have = new Set(serviceTags.map((tag) => tag.toLowerCase()));
  return wanted.every((tag) => have.has(tag.toLowerCase()));
}

function catalogServices(fsm: StateMachine, nodeMeta: NodeMetaFilter | undefined): Record<string, string[]> {
  const pairs: [string, string[]][] = [];
  for (const name of fsm.serviceNames()) {
    const tags = new Set<string>();
    let matched = false;
    for (const instance of fsm.serviceInstances(name)) {
      if (!satisfiesNodeMeta(fsm.getNode(instance.Node)?.Meta ?? {}, nodeMeta)) continue;
      matched = true;
      for (const tag of instance.Tags) tags.add(tag);
    }
    if (matched) pairs.push([name, [...tags].sort()]);
  }
  // Own data properties (fromEntries), so a service named `__proto__` stays a plain key.
  return Object.fromEntries(pairs) as Record<string, string[]>;
}

function serviceNodes(fsm: StateMachine, query: CatalogServiceQuery | ServiceInstancesQuery): ServiceNodeRow[] {
  const rows: ServiceNodeRow[] = [];
  for (const service of fsm.serviceInstances(query.service)) {
    const node = fsm.getNode(service.Node);
    assert(node !== undefined, 'a service never outlives its node');
    if (!hasEveryTag(service.Tags, query.tags) || !satisfiesNodeMeta(node.Meta, query.nodeMeta)) continue;
    rows.push({ node, service });
  }
  return rows;
}

/** The checks bearing on an instance: node checks (serfHealth first in byte order) and its own. */
function instanceChecks(fsm: StateMachine, service: CatalogService): HealthCheck[] {
  return fsm.nodeChecks(service.Node).filter((check) => check.ServiceID === '' || check.ServiceID === service.ID);
}

function serviceHealth(fsm: StateMachine, query: ServiceInstancesQuery): ServiceHealthRow[] {
  const rows: ServiceHealthRow[] = [];
  for (const row of serviceNodes(fsm, query)) {
    const checks = instanceChecks(fsm, row.service);
    if (query.passing === true && !checks.every((check) => check.Status === 'passing')) continue;
    rows.push({ ...row, checks });
  }
  return rows;
}

/** Reads that join checks with their nodes watch (and index) both tables. */
const NODES_AND_CHECKS: WatchScope = { kind: 'tables', tables: ['nodes', 'checks'] satisfies TableName[] };

/** The scope of a checks read: with a node-meta filter, node changes matter too. */
function checksScope(nodeMeta: NodeMetaFilter | undefined): WatchScope {
  return hasNodeMeta(nodeMeta) ? NODES_AND_CHECKS : TABLE_SCOPES.healthChecks;
}

function hasNodeMeta(nodeMeta: NodeMetaFilter | undefined): nodeMeta is NodeMetaFilter {
  return nodeMeta !== undefined && Object.keys(nodeMeta).length > 0;
}

function isKnownState(state: string): state is HealthStatus | 'any' {
  return state === 'any' || (HEALTH_STATUSES as readonly string[]).includes(state);
}

/** Consul's SatisfiesMetaFilters: every filter pair is in `meta` with the same value. */
export function satisfiesNodeMeta(meta: Readonly<Record<string, string>>, nodeMeta: NodeMetaFilter | undefined): boolean {
  if (!hasNodeMeta(nodeMeta)) return true;
  return Object.entries(nodeMeta).every(([key, value]) => Object.hasOwn(meta, key) && meta[key] === value);
}

/** The checks whose node satisfies the filter (all of them without one). */
function filterByNodeMeta(fsm: StateMachine, checks: HealthCheck[], nodeMeta: NodeMetaFilter | undefined): HealthCheck[] {
  if (!hasNodeMeta(nodeMeta)) return checks;
  return checks.filter((check) => satisfiesNodeMeta(fsm.getNode(check.Node)?.Meta ?? {}, nodeMeta));
}

/** Answers `query` from the state machine now, with its blocking index (may be 0; HTTP sends 1). */
export function runQuery<Q extends Query>(fsm: StateMachine, query: Q): IndexedRead<QueryValue<Q>> {
  const runner = RUNNERS[query.kind] as Runner<QueryKind>;
  return runner(fsm, query) as IndexedRead<QueryValue<Q>>;
}

/** The whole KV space: the index a read-only txn reports (it never blocks). */
const WHOLE_KV: WatchScope = { kind: 'kv-prefix', prefix: '' };

/** What a blocking `query` waits on (consul-api.md §3: a missing key wakes only on creation). */
export function queryScope(query: Query): WatchScope {
  switch (query.kind) {
    case 'kv-get':
      return { kind: 'kv-key', key: query.key };
    case 'kv-list':
    case 'kv-keys':
      return { kind: 'kv-prefix', prefix: query.prefix };
    case 'txn-read':
      return WHOLE_KV;
    case 'session-info':
    case 'session-list':
    case 'session-node':
      return TABLE_SCOPES.sessions;
    case 'catalog-nodes':
      return TABLE_SCOPES.catalogNodes;
    case 'catalog-services':
      return servicesScope(query.nodeMeta);
    case 'catalog-node':
      return TABLE_SCOPES.catalogNode;
    case 'catalog-service':
      return TABLE_SCOPES.serviceNodes;
    case 'service-instances':
      return TABLE_SCOPES.healthService;
    case 'health-node':
      return TABLE_SCOPES.healthChecks;
    case 'health-state':
    case 'health-service-checks':
      return checksScope(query.nodeMeta);
    default:
      return assertNever(query, 'query');
  }
}

/** True for queries Consul answers as blocking queries (all but a read-only txn). */
export function isBlockingQuery(query: Query): boolean {
  return query.kind !== 'txn-read';
}

/** How long and from which index a query blocks. */
export interface BlockingOptions {
  /** 0: answer at once. Otherwise wait until the result's index exceeds it. */
  readonly minIndex: number;
  /** Already defaulted and clamped (QUERY_WAIT_MS_DEFAULT, QUERY_WAIT_MS_MAX); jitter is added here. */
  readonly waitMs: number;
  /** Client disconnect: stop waiting and return the current data. */
  readonly signal: AbortSignal;
  /**
   * Run `ensureConsistent` before every read (`?consistent`: Consul's consistentRead on each
   * wake-up), not only before the first (default mode; Consul's leader checks nothing again).
   */
  readonly confirmEveryRun: boolean;
}

/**
 * consul-api.md §3 (Consul's `blockingQuery`). No index, or 0, answers at once. Otherwise: make
 * sure the read may be served (`ensureConsistent`), read, return if the index moved past
 * `minIndex`, else wait for a change in the query's scope until `waitMs` plus a jitter in
 * [0, waitMs/16) runs out; then return the current data. A woken waiter reads again, so a change
 * that leaves the index where it was (a tombstone reap, a snapshot restore) goes back to waiting.
 *
 * Only `?consistent` confirms again on every wake-up (`confirmEveryRun`). Without it a later read
 * is still linearizable: the first confirmation came after the request arrived, and the state
 * only moves forward through committed entries, so every state a wake-up reads existed at some
 * moment between the request and the answer. On a follower this saves a read-index round trip
 * to the leader per wake-up (the Swarm workload's watchers).
 *
 * Errors of `ensureConsistent` (no leader, not ready) and of the watch index (too many blocking
 * queries: 429) propagate.
 */
export async function runBlockingQuery<Q extends Query>(
  fsm: StateMachine,
  query: Q,
  options: BlockingOptions,
  ensureConsistent: () => Promise<void>,
  random: () => number,
): Promise<IndexedRead<QueryValue<Q>>> {
  assert(Number.isSafeInteger(options.minIndex) && options.minIndex >= 0, 'minIndex is a non-negative safe integer');
  if (options.minIndex === 0 || !isBlockingQuery(query)) {
    await ensureConsistent();
    return runQuery(fsm, query);
  }
  const deadlineMs = blockingWaitMs(options.waitMs, random);
  const timeout = new AbortController();
  const onAbort = (): void => timeout.abort();
  const timer = setTimeout(onAbort, deadlineMs);
  if (options.signal.aborted) timeout.abort();
  else options.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const scope = queryScope(query);
    for (let run = 0; ; run++) {
      if (run === 0 || options.confirmEveryRun) await ensureConsistent();
      const read = runQuery(fsm, query);
      if (read.index > options.minIndex || timeout.signal.aborted) return read;
      await fsm.waitForChange(scope, options.minIndex, timeout.signal);
    }
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', onAbort);
  }
}

/**
 * How long a blocking query may hold: `waitMs` plus a jitter in [0, waitMs/16), so never more
 * than waitMs × 1.0625 (node-consul gives up at wait + max(10%, 500 ms)).
 */
export function blockingWaitMs(waitMs: number, random: () => number): number {
  assert(waitMs > 0 && waitMs <= QUERY_WAIT_MS_MAX, 'waitMs is defaulted and clamped by the caller');
  const jitter = random();
  assert(jitter >= 0 && jitter < 1, 'random() returns a number in [0, 1)');
  return waitMs + Math.floor((jitter * waitMs) / QUERY_WAIT_JITTER_DIVISOR);
}

/** True when a txn's ops are all reads, so it is a `txn-read` query rather than a write. */
export function isReadOnlyTxn(ops: readonly Pick<TxnKvOp, 'verb'>[]): boolean {
  return ops.length > 0 && !txnHasWrites(ops);
}
