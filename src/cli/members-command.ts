/**
 * `conclave members [-detailed] [-wan] [-status=<regexp>]`: Consul's members table
 * (command/members): Node, Address (ip:serf-port), Status, Type, Build, Protocol, DC,
 * Partition, Segment; servers first, then by name. `-detailed` prints every tag instead. No
 * member matching `-status` exits 2, as Consul's does.
 */
import { isIP } from 'node:net';
import type { CliIo } from './cli-io.js';
import { columnize } from './columns.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { ApiError, CLIENT_FLAGS, jsonOf } from './http-client.js';

const FLAGS = {
  ...CLIENT_FLAGS,
  detailed: { kind: 'bool', usage: 'Provides detailed information about nodes.' },
  wan: { kind: 'bool', usage: 'List the WAN pool (the servers, on a server agent).' },
  status: { kind: 'string', default: '.*', usage: 'Only list members whose status matches this regular expression.' },
  segment: { kind: 'string', default: '_all', usage: '(Enterprise-only; ignored) The network segment to list.' },
  filter: { kind: 'string', usage: 'Filter to use with the request (refused by Conclave agents until supported).' },
} as const satisfies FlagSpecs;

const HELP = `
Usage: conclave members [options]

  Outputs the members of a running Conclave cluster.`;

/** The Member fields the table reads. */
interface Member {
  readonly Name: string;
  readonly Addr: string;
  readonly Port: number;
  readonly Status: number;
  readonly Tags: Record<string, string>;
}

/** serf.MemberStatus.String(). */
const STATUS_NAMES = ['none', 'alive', 'leaving', 'left', 'failed'];

function statusName(status: number): string {
  return STATUS_NAMES[status] ?? `unknown MemberStatus ${status}`;
}

/** Go's net.TCPAddr.String(): `ip:port`, `[ipv6]:port`, `:port` when the IP does not parse. */
function tcpAddress(ip: string, port: number): string {
  const family = isIP(ip);
  if (family === 6) return `[${ip}]:${port}`;
  return family === 4 ? `${ip}:${port}` : `:${port}`;
}

/** Consul's tag fix-ups before sorting and printing. */
function normalize(member: Member): Member {
  const tags = { ...member.Tags };
  if ((tags['ap'] ?? '') === '') tags['ap'] = 'default';
  if (tags['role'] === 'consul') tags['segment'] = '<all>';
  else if ((tags['segment'] ?? '') === '') tags['segment'] = '<default>';
  return { ...member, Tags: tags };
}

/** Servers first, then segment, then name (Consul's ByMemberNamePartitionAndSegment). */
function compareMembers(a: Member, b: Member): number {
  const serverA = a.Tags['role'] === 'consul';
  const serverB = b.Tags['role'] === 'consul';
  if (serverA !== serverB) return serverA ? -1 : 1;
  const segmentA = a.Tags['segment'] ?? '';
  const segmentB = b.Tags['segment'] ?? '';
  if (segmentA !== segmentB) return segmentA < segmentB ? -1 : 1;
  return a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0;
}

function standardRow(member: Member): string[] {
  const { Tags: tags } = member;
  const address = tcpAddress(member.Addr, member.Port);
  const status = statusName(member.Status);
  const type = tags['role'] === 'node' ? 'client' : tags['role'] === 'consul' ? 'server' : null;
  if (type === null) return [member.Name, address, status, 'unknown', '', '', '', '', ''];
  const build = tags['build'] === undefined || tags['build'] === '' ? '< 0.3' : tags['build'].split(':')[0] ?? '';
  return [member.Name, address, status, type, build, tags['vsn'] ?? '', tags['dc'] ?? '', tags['ap'] ?? '', tags['segment'] ?? ''];
}

function detailedRow(member: Member): string[] {
  const tags = Object.keys(member.Tags).sort().map((key) => `${key}=${member.Tags[key] ?? ''}`).join(',');
  return [member.Name, tcpAddress(member.Addr, member.Port), statusName(member.Status), tags];
}

/** `conclave members`. */
export async function membersCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, FLAGS, HELP, io);
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  let statusFilter: RegExp;
  try {
    statusFilter = new RegExp(values.status);
  } catch (error) {
    io.err(`Failed to compile status regexp: ${(error as Error).message}`);
    return 1;
  }
  return withClient(values, io, CONNECT_ERROR, async (client) => {
    let members: Member[];
    try {
      const params: [string, string][] = [['segment', values.segment]];
      if (values.wan) params.push(['wan', '1']);
      if (values.filter !== '') params.push(['filter', values.filter]);
      members = (jsonOf(await client.call('GET', '/v1/agent/members', params)) as Member[]).map(normalize);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      io.err(`Error retrieving members: ${messageOf(error)}`);
      return 1;
    }
    const shown = members.filter((member) => statusFilter.test(statusName(member.Status))).sort(compareMembers);
    if (shown.length === 0) return 2;
    const header = values.detailed ? ['Node', 'Address', 'Status', 'Tags'] : ['Node', 'Address', 'Status', 'Type', 'Build', 'Protocol', 'DC', 'Partition', 'Segment'];
    io.out(columnize([header, ...shown.map(values.detailed ? detailedRow : standardRow)]));
    return 0;
  });
}
