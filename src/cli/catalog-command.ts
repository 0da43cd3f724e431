/**
 * `conclave catalog datacenters|nodes|services`: Consul's catalog commands (command/catalog),
 * same tables and messages. An empty result prints Consul's "No ... match the given query"
 * on stderr and exits 0.
 */
import type { CliIo } from './cli-io.js';
import { alignPairs, columnize } from './columns.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { ApiError, CLIENT_FLAGS, SERVER_FLAGS, jsonOf } from './http-client.js';
import type { ConsulClient, QueryParams } from './http-client.js';
import { dispatcher } from './subcommands.js';

const FLAGS = { ...CLIENT_FLAGS, ...SERVER_FLAGS } as const satisfies FlagSpecs;

const NODES_FLAGS = {
  ...FLAGS,
  detailed: { kind: 'bool', usage: 'Output detailed information about the nodes including their addresses and metadata.' },
  near: { kind: 'string', usage: 'Node name to sort the node list by estimated round-trip time from.' },
  'node-meta': { kind: 'list', usage: 'Metadata to filter nodes with, as key=value; repeatable.' },
  service: { kind: 'string', usage: 'Service id or name to filter nodes by.' },
  filter: { kind: 'string', usage: 'Filter to use with the request (refused by Conclave agents until supported).' },
} as const satisfies FlagSpecs;

const SERVICES_FLAGS = {
  ...FLAGS,
  node: { kind: 'string', usage: 'Node id or name for which to list services.' },
  'node-meta': { kind: 'list', usage: 'Metadata to filter nodes with, as key=value; repeatable.' },
  tags: { kind: 'bool', usage: 'Display each service\'s tags as a comma-separated list beside each service entry.' },
} as const satisfies FlagSpecs;

/** A catalog node as the table reads it. */
interface CatalogNode {
  readonly ID: string;
  readonly Node: string;
  readonly Address: string;
  readonly Datacenter: string;
  readonly TaggedAddresses: Record<string, string> | null;
  readonly Meta: Record<string, string> | null;
}

function tooMany(io: CliIo, args: readonly string[]): boolean {
  if (args.length === 0) return false;
  io.err(`Too many arguments (expected 0, got ${args.length})`);
  return true;
}

/** `key=value` flags as `?node-meta=key:value` params; an error text for a pair without `=`. */
function nodeMetaParams(pairs: readonly string[]): QueryParams | string {
  const params: [string, string][] = [];
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    if (equals < 0) return `invalid value ${JSON.stringify(pair)} for flag -node-meta: Missing "=" value in argument: ${pair}`;
    params.push(['node-meta', `${pair.slice(0, equals)}:${pair.slice(equals + 1)}`]);
  }
  return params;
}

/** Consul's mapToKV: `k=v` pairs sorted by key, joined. */
function mapToKv(map: Record<string, string> | null): string {
  return Object.keys(map ?? {}).sort().map((key) => `${key}=${map?.[key] ?? ''}`).join(', ');
}

function nodeRow(node: CatalogNode, detailed: boolean): string[] {
  if (detailed) return [node.Node, node.ID, node.Address, node.Datacenter, mapToKv(node.TaggedAddresses), mapToKv(node.Meta)];
  // The short form shows the ID's first group only.
  const dash = node.ID.indexOf('-');
  return [node.Node, dash > 0 ? node.ID.slice(0, dash) : node.ID, node.Address, node.Datacenter];
}

async function datacenters(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, FLAGS, 'Usage: conclave catalog datacenters [options]\n\n  Lists all known datacenters.', io);
  if (typeof parsed === 'number') return parsed;
  if (tooMany(io, parsed.args)) return 1;
  return withClient(parsed.values, io, CONNECT_ERROR, async (client) => {
    try {
      for (const dc of jsonOf(await client.call('GET', '/v1/catalog/datacenters')) as string[]) io.out(dc);
      return 0;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      io.err(`Error listing datacenters: ${messageOf(error)}`);
      return 1;
    }
  });
}

async function listNodes(client: ConsulClient, values: { service: string; near: string; filter: string; stale: boolean }, meta: QueryParams): Promise<CatalogNode[]> {
  const params: (readonly [string, string])[] = [...meta];
  if (values.near !== '') params.push(['near', values.near]);
  if (values.filter !== '') params.push(['filter', values.filter]);
  if (values.stale) params.push(['stale', '']);
  if (values.service === '') return jsonOf(await client.call('GET', '/v1/catalog/nodes', params)) as CatalogNode[];
  const instances = jsonOf(await client.call('GET', `/v1/catalog/service/${values.service}`, params)) as (CatalogNode & { NodeMeta: Record<string, string> | null })[];
  return instances.map((instance) => ({ ...instance, Meta: instance.NodeMeta }));
}

async function nodes(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, NODES_FLAGS, 'Usage: conclave catalog nodes [options]\n\n  Lists the nodes registered in a datacenter.', io);
  if (typeof parsed === 'number') return parsed;
  if (tooMany(io, parsed.args)) return 1;
  const { values } = parsed;
  const meta = nodeMetaParams(values['node-meta']);
  if (typeof meta === 'string') {
    io.err(meta);
    return 1;
  }
  return withClient(values, io, CONNECT_ERROR, async (client) => {
    let list: CatalogNode[];
    try {
      list = await listNodes(client, values, meta);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      io.err(`${values.service === '' ? 'Error listing nodes' : 'Error listing nodes for service'}: ${messageOf(error)}`);
      return 1;
    }
    if (list.length === 0) {
      io.err('No nodes match the given query - try expanding your search.');
      return 0;
    }
    const header = values.detailed ? ['Node', 'ID', 'Address', 'DC', 'TaggedAddresses', 'Meta'] : ['Node', 'ID', 'Address', 'DC'];
    io.out(columnize([header, ...list.map((node) => nodeRow(node, values.detailed))]));
    return 0;
  });
}

async function listServices(client: ConsulClient, node: string, meta: QueryParams, stale: boolean): Promise<Record<string, string[]>> {
  const params: QueryParams = stale ? [...meta, ['stale', '']] : meta;
  if (node === '') return jsonOf(await client.call('GET', '/v1/catalog/services', params)) as Record<string, string[]>;
  const found = jsonOf(await client.call('GET', `/v1/catalog/node/${node}`, params)) as { Services: Record<string, { Service: string; Tags: string[] | null }> } | null;
  const services: Record<string, string[]> = {};
  for (const service of Object.values(found?.Services ?? {})) services[service.Service] = [...(services[service.Service] ?? []), ...(service.Tags ?? [])];
  return services;
}

async function services(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, SERVICES_FLAGS, 'Usage: conclave catalog services [options]\n\n  Lists the services registered in a datacenter.', io);
  if (typeof parsed === 'number') return parsed;
  if (tooMany(io, parsed.args)) return 1;
  const { values } = parsed;
  const meta = nodeMetaParams(values['node-meta']);
  if (typeof meta === 'string') {
    io.err(meta);
    return 1;
  }
  return withClient(values, io, CONNECT_ERROR, async (client) => {
    let found: Record<string, string[]>;
    try {
      found = await listServices(client, values.node, meta, values.stale);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      io.err(`${values.node === '' ? 'Error listing services' : 'Error listing services for node'}: ${messageOf(error)}`);
      return 1;
    }
    const names = Object.keys(found).sort();
    if (names.length === 0) {
      io.err('No services match the given query - try expanding your search.');
      return 0;
    }
    if (values.tags) io.out(alignPairs(names.map((name) => [name, [...(found[name] ?? [])].sort().join(',')])).trim());
    else for (const name of names) io.out(name);
    return 0;
  });
}

/** `conclave catalog <subcommand>`. */
export const catalogCommand = dispatcher('catalog', 'Interacts with the catalog.', {
  datacenters: { run: datacenters, synopsis: 'Lists all known datacenters' },
  nodes: { run: nodes, synopsis: 'Lists all nodes in the given datacenter' },
  services: { run: services, synopsis: 'Lists all registered services in a datacenter' },
});
