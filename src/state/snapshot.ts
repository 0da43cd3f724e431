/**
 * The snapshot format of the whole state: one version byte, then msgpack of sorted rows (KV
 * entries, tombstones, lock-delays, sessions, nodes, services, checks) and every table index.
 * Version 2 added the services table; a version 1 snapshot (written before services existed)
 * still restores, with no services and a services index of 0. Rows are
 * sorted and records are sorted pairs, so two servers in the same logical state produce the same
 * bytes (the determinism tests compare them). Everything is re-validated on decode.
 */
import { assert } from '../lib/assert.js';
import { CorruptionError } from '../lib/errors.js';
import type { CatalogNode, CatalogService, CatalogSnapshot, HealthCheck } from './catalog.js';
import { HEALTH_STATUSES, SESSION_BEHAVIORS } from './commands.js';
import type { KvEntryRow, KvSnapshot } from './kv.js';
import { compareKeys } from './ordered-map.js';
import type { SessionSnapshot, StoredSession } from './sessions.js';
import {
  expectArray, expectBoolean, expectBytesOrNull, expectCount, expectObject, expectOneOf, expectString, expectStringArray,
  expectUint64, statePackr,
} from './wire.js';

/** Bumped on any change of the layout below; restore refuses versions it does not know. */
export const SNAPSHOT_FORMAT_VERSION = 2;

/** The layout before the services table: restored as a catalog without services. */
const SNAPSHOT_FORMAT_VERSION_WITHOUT_SERVICES = 1;

/** The whole state of the machine. */
export interface StateSnapshot {
  /** A snapshot restore in progress (its chunks so far), or null. Absent in older snapshots. */
  readonly restore: { readonly restoreId: string; readonly totalBytes: number; readonly sha256: string; readonly data: Uint8Array } | null;
  readonly lastAppliedIndex: number;
  readonly kv: KvSnapshot;
  readonly sessions: SessionSnapshot;
  readonly catalog: CatalogSnapshot;
}

/** Encodes a snapshot: version byte + msgpack. */
export function encodeSnapshot(state: StateSnapshot): Uint8Array {
  const body = statePackr.pack({
    ...(state.restore === null ? {} : { restore: state.restore }),
    lastAppliedIndex: state.lastAppliedIndex,
    kv: state.kv,
    sessions: { index: state.sessions.index, sessions: state.sessions.sessions.map(sessionRow) },
    catalog: {
      nodesIndex: state.catalog.nodesIndex,
      servicesIndex: state.catalog.servicesIndex,
      checksIndex: state.catalog.checksIndex,
      nodes: state.catalog.nodes.map(nodeRow),
      services: state.catalog.services.map(serviceRow),
      checks: state.catalog.checks.map(checkRow),
    },
  });
  const bytes = new Uint8Array(body.byteLength + 1);
  bytes[0] = SNAPSHOT_FORMAT_VERSION;
  bytes.set(body, 1);
  return bytes;
}

/** Decodes and validates a snapshot; asserts on malformed content, CorruptionError on a foreign version. */
export function decodeSnapshot(bytes: Uint8Array): StateSnapshot {
  const version = bytes[0];
  if (version !== SNAPSHOT_FORMAT_VERSION && version !== SNAPSHOT_FORMAT_VERSION_WITHOUT_SERVICES) {
    throw new CorruptionError(`state snapshot version ${String(version)} is not ${SNAPSHOT_FORMAT_VERSION_WITHOUT_SERVICES} or ${SNAPSHOT_FORMAT_VERSION}`);
  }
  const raw = expectObject(statePackr.unpack(bytes.subarray(1)), 'snapshot');
  const lastAppliedIndex = expectCount(raw['lastAppliedIndex'], 'lastAppliedIndex');
  const kv = decodeKv(raw['kv']);
  const sessions = decodeSessions(raw['sessions']);
  const catalog = decodeCatalog(raw['catalog'], version === SNAPSHOT_FORMAT_VERSION);
  for (const index of [kv.index, sessions.index, catalog.nodesIndex, catalog.servicesIndex, catalog.checksIndex]) {
    assert(index <= lastAppliedIndex, 'no table index is beyond the last applied index');
  }
  return { restore: decodeRestore(raw['restore']), lastAppliedIndex, kv, sessions, catalog };
}

function decodeRestore(value: unknown): StateSnapshot['restore'] {
  if (value === undefined) return null;
  const raw = expectObject(value, 'restore');
  const data = expectBytesOrNull(raw['data'], 'restore data') ?? new Uint8Array(0);
  const totalBytes = expectCount(raw['totalBytes'], 'restore totalBytes');
  assert(data.byteLength <= totalBytes, 'restore staging within its total');
  return { restoreId: expectString(raw['restoreId'], 'restoreId'), totalBytes, sha256: expectString(raw['sha256'], 'restore sha256'), data };
}

function decodeKv(value: unknown): KvSnapshot {
  const raw = expectObject(value, 'kv');
  const index = expectCount(raw['index'], 'kv index');
  const entries = expectArray(raw['entries'], 'kv entries').map((item): KvEntryRow => {
    const row = expectArray(item, 'kv row');
    assert(row.length === 7, 'kv row has 7 fields');
    const modifyIndex = expectCount(row[6], 'ModifyIndex');
    assert(modifyIndex <= index, 'an entry is not newer than the KV index');
    return [expectString(row[0], 'Key'), expectBytesOrNull(row[1], 'Value'), expectUint64(row[2], 'Flags'),
      expectCount(row[3], 'LockIndex'), expectString(row[4], 'Session'), expectCount(row[5], 'CreateIndex'), modifyIndex];
  });
  assertSorted(entries.map((row) => row[0]), 'kv entries');
  const tombstones = decodePairs(raw['tombstones'], 'tombstones');
  const lockDelays = decodePairs(raw['lockDelays'], 'lockDelays');
  // Absent in snapshots written before acquires carried the index their leader checked at.
  const lockDelayIndexes = raw['lockDelayIndexes'] === undefined ? [] : decodePairs(raw['lockDelayIndexes'], 'lockDelayIndexes');
  return { index, entries, tombstones, lockDelays, lockDelayIndexes };
}

function decodePairs(value: unknown, what: string): [string, number][] {
  const pairs = expectArray(value, what).map((item): [string, number] => {
    const pair = expectArray(item, what);
    assert(pair.length === 2, `${what} row has 2 fields`);
    return [expectString(pair[0], `${what} key`), expectCount(pair[1], `${what} value`)];
  });
  assertSorted(pairs.map((pair) => pair[0]), what);
  return pairs;
}

type Row = readonly unknown[];

function sessionRow(stored: StoredSession): Row {
  const s = stored.session;
  const serviceChecks = s.ServiceChecks === null ? null : s.ServiceChecks.map((check) => [check.ID, check.Namespace]);
  return [s.ID, s.Name, s.Node, s.LockDelay, s.Behavior, s.TTL, s.NodeChecks, serviceChecks, s.CreateIndex, s.ModifyIndex, stored.ttlNs];
}

function decodeSessions(value: unknown): SessionSnapshot {
  const raw = expectObject(value, 'sessions');
  const sessions = expectArray(raw['sessions'], 'sessions').map((item): StoredSession => {
    const row = expectArray(item, 'session row');
    assert(row.length === 11, 'session row has 11 fields');
    const serviceChecks = row[7] === null ? null : expectArray(row[7], 'ServiceChecks').map((check) => {
      const pair = expectArray(check, 'service check');
      return { ID: expectString(pair[0], 'service check ID'), Namespace: expectString(pair[1], 'Namespace') };
    });
    const session = Object.freeze({
      ID: expectString(row[0], 'ID'), Name: expectString(row[1], 'Name'), Node: expectString(row[2], 'Node'),
      LockDelay: expectCount(row[3], 'LockDelay'), Behavior: expectOneOf(row[4], SESSION_BEHAVIORS, 'Behavior'),
      TTL: expectString(row[5], 'TTL'), NodeChecks: expectStringArray(row[6], 'NodeChecks'), ServiceChecks: serviceChecks,
      CreateIndex: expectCount(row[8], 'CreateIndex'), ModifyIndex: expectCount(row[9], 'ModifyIndex'),
    });
    return { session, ttlNs: expectCount(row[10], 'ttlNs') };
  });
  assertSorted(sessions.map((stored) => stored.session.ID), 'sessions');
  return { index: expectCount(raw['index'], 'sessions index'), sessions };
}

function nodeRow(node: CatalogNode): Row {
  return [node.ID, node.Node, node.Address, node.Datacenter, Object.entries(node.TaggedAddresses),
    Object.entries(node.Meta), node.CreateIndex, node.ModifyIndex];
}

function serviceRow(s: CatalogService): Row {
  return [s.Node, s.ID, s.Service, s.Tags, s.Address, Object.entries(s.Meta), s.Port, s.Weights.Passing, s.Weights.Warning,
    s.EnableTagOverride, s.CreateIndex, s.ModifyIndex];
}

function decodeServices(value: unknown): CatalogService[] {
  const services = expectArray(value, 'services').map((item): CatalogService => {
    const row = expectArray(item, 'service row');
    assert(row.length === 12, 'service row has 12 fields');
    return {
      Node: expectString(row[0], 'Node'), ID: expectString(row[1], 'ID'), Service: expectString(row[2], 'Service'),
      Tags: expectStringArray(row[3], 'Tags'), Address: expectString(row[4], 'Address'), Meta: decodeRecord(row[5], 'Meta'),
      Port: expectCount(row[6], 'Port'), Weights: { Passing: expectCount(row[7], 'Passing'), Warning: expectCount(row[8], 'Warning') },
      EnableTagOverride: expectBoolean(row[9], 'EnableTagOverride'), CreateIndex: expectCount(row[10], 'CreateIndex'),
      ModifyIndex: expectCount(row[11], 'ModifyIndex'),
    };
  });
  for (let i = 1; i < services.length; i++) {
    const [a, b] = [services[i - 1] as CatalogService, services[i] as CatalogService];
    const order = compareKeys(a.Node, b.Node);
    assert(order < 0 || (order === 0 && compareKeys(a.ID, b.ID) < 0), 'services are sorted by Node, then ID, and unique');
  }
  return services;
}

function checkRow(c: HealthCheck): Row {
  return [c.Node, c.CheckID, c.Name, c.Status, c.Notes, c.Output, c.ServiceID, c.ServiceName, c.ServiceTags,
    c.Type, c.Interval, c.Timeout, c.CreateIndex, c.ModifyIndex];
}

function decodeCatalog(value: unknown, withServices: boolean): CatalogSnapshot {
  const raw = expectObject(value, 'catalog');
  const nodes = expectArray(raw['nodes'], 'nodes').map((item): CatalogNode => {
    const row = expectArray(item, 'node row');
    assert(row.length === 8, 'node row has 8 fields');
    return {
      ID: expectString(row[0], 'ID'), Node: expectString(row[1], 'Node'), Address: expectString(row[2], 'Address'),
      Datacenter: expectString(row[3], 'Datacenter'), TaggedAddresses: decodeRecord(row[4], 'TaggedAddresses'),
      Meta: decodeRecord(row[5], 'Meta'), CreateIndex: expectCount(row[6], 'CreateIndex'), ModifyIndex: expectCount(row[7], 'ModifyIndex'),
    };
  });
  assertSorted(nodes.map((node) => node.Node), 'nodes');
  const checks = expectArray(raw['checks'], 'checks').map((item): HealthCheck => {
    const row = expectArray(item, 'check row');
    assert(row.length === 14, 'check row has 14 fields');
    return {
      Node: expectString(row[0], 'Node'), CheckID: expectString(row[1], 'CheckID'), Name: expectString(row[2], 'Name'),
      Status: expectOneOf(row[3], HEALTH_STATUSES, 'Status'), Notes: expectString(row[4], 'Notes'),
      Output: expectString(row[5], 'Output'), ServiceID: expectString(row[6], 'ServiceID'),
      ServiceName: expectString(row[7], 'ServiceName'), ServiceTags: expectStringArray(row[8], 'ServiceTags'),
      Type: expectString(row[9], 'Type'), Interval: expectString(row[10], 'Interval'), Timeout: expectString(row[11], 'Timeout'),
      CreateIndex: expectCount(row[12], 'CreateIndex'), ModifyIndex: expectCount(row[13], 'ModifyIndex'),
    };
  });
  return {
    nodesIndex: expectCount(raw['nodesIndex'], 'nodesIndex'),
    servicesIndex: withServices ? expectCount(raw['servicesIndex'], 'servicesIndex') : 0,
    checksIndex: expectCount(raw['checksIndex'], 'checksIndex'),
    nodes,
    services: withServices ? decodeServices(raw['services']) : [],
    checks,
  };
}

function decodeRecord(value: unknown, what: string): Record<string, string> {
  const pairs = expectArray(value, what).map((item): [string, string] => {
    const pair = expectArray(item, what);
    assert(pair.length === 2, `${what} pair`);
    return [expectString(pair[0], `${what} key`), expectString(pair[1], `${what} value`)];
  });
  return Object.fromEntries(pairs) as Record<string, string>;
}

function assertSorted(keys: readonly string[], what: string): void {
  for (let i = 1; i < keys.length; i++) {
    assert(compareKeys(keys[i - 1] as string, keys[i] as string) < 0, `${what} are sorted and unique`);
  }
}
