import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from '../lib/crc32.js';
import { ConfigError, CorruptionError } from '../lib/errors.js';
import type { AgentInfo } from './agent-api.js';
import type { AgentConfig } from './config.js';

/** The Consul version whose HTTP API Conclave speaks (what clients see in agent/self). */
export const CONSUL_API_VERSION = '1.16.4';

/** This agent's identity as /v1/agent/self and the members list report it. */
export function agentInfo(config: AgentConfig, nodeId: string, server: boolean): AgentInfo {
  return {
    nodeName: config.nodeName,
    nodeId,
    datacenter: config.datacenter,
    server,
    version: CONSUL_API_VERSION,
    revision: 'conclave',
    buildDate: '2026-11-27T00:00:00Z',
    advertiseAddress: config.advertiseAddr,
    serverPort: config.serverPort,
    httpPort: config.httpPort,
  };
}

/**
 * Small identity files in the data dir: the node id (Consul's `node-id`, the Raft server id) and
 * the cluster id a server learns when it bootstraps or joins. Written atomically and synced, so a
 * restarted server is the same server of the same cluster.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function ensureDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (error) {
    throw new ConfigError(`data_dir ${dataDir}: cannot create it: ${(error as Error).message}`);
  }
}

/** Reads `<dataDir>/node-id`, creating it (with `preferred` or a new UUID) on first start. */
export function loadNodeId(dataDir: string | null, preferred: string | null): string {
  if (preferred !== null && !UUID.test(preferred)) throw new ConfigError(`node_id "${preferred}": must be a UUID such as ${randomUUID()}`);
  if (dataDir === null) return preferred ?? randomUUID();
  const stored = readSmallFile(join(dataDir, 'node-id'));
  if (stored !== null) {
    if (!UUID.test(stored)) throw new CorruptionError(`${join(dataDir, 'node-id')}: not a UUID: "${stored.slice(0, 64)}"`);
    if (preferred !== null && preferred !== stored) throw new ConfigError(`node_id ${preferred} differs from the id stored in ${join(dataDir, 'node-id')} (${stored})`);
    return stored;
  }
  const id = preferred ?? randomUUID();
  writeSmallFile(dataDir, 'node-id', id);
  return id;
}

/** A cluster id as ServerAgent.clusterIdFor() derives it: 32 lowercase hex digits. */
const CLUSTER_ID = /^[0-9a-f]{32}$/;

/**
 * Reads `<dataDir>/cluster-id`: the id, then a line `crc32 <8 hex digits>` of it. A flipped bit
 * that leaves a well-formed id would make every peer refuse this server as one of another
 * cluster, for ever, with only a warning per connection (found by test/faults/bitflip.test.ts);
 * the checksum turns that into a refusal to start. A file without the line (written before it
 * existed) is read as it is.
 */
export function loadClusterId(dataDir: string | null): string | null {
  if (dataDir === null) return null;
  const path = join(dataDir, 'cluster-id');
  const stored = readSmallFile(path);
  if (stored === null) return null;
  const [clusterId = '', checksum, ...rest] = stored.split('\n');
  const valid = CLUSTER_ID.test(clusterId) && rest.length === 0 && (checksum === undefined || checksum === clusterIdChecksum(clusterId));
  if (!valid) throw new CorruptionError(`${path}: not a cluster id with its checksum: ${JSON.stringify(stored.slice(0, 100))}`);
  return clusterId;
}

export function saveClusterId(dataDir: string | null, clusterId: string): void {
  if (dataDir !== null) writeSmallFile(dataDir, 'cluster-id', `${clusterId}\n${clusterIdChecksum(clusterId)}`);
}

function clusterIdChecksum(clusterId: string): string {
  return `crc32 ${crc32(new TextEncoder().encode(clusterId)).toString(16).padStart(8, '0')}`;
}

function readSmallFile(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

function writeSmallFile(dir: string, name: string, content: string): void {
  const temp = join(dir, `${name}.tmp`);
  writeFileSync(temp, `${content}\n`);
  const fd = openSync(temp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(temp, join(dir, name));
  const dirFd = openSync(dir, 'r');
  fsyncSync(dirFd);
  closeSync(dirFd);
}
