/**
 * `/v1/agent/*`, answered by the local agent without meta headers (consul-api.md §10): self,
 * members, join, leave and force-leave. Services and checks: agent-services.ts.
 *
 * Membership writes answer an empty 200 (no Content-Type) and every failure is a 500 with the
 * agent's text, as Consul returns its Serf errors.
 */
import { availableParallelism } from 'node:os';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AgentApi, AgentInfo, MemberInfo } from '../../agent/agent-api.js';
import { AssertionError } from '../../lib/assert.js';
import { AgentError, BadRequestError, InternalError } from '../../lib/errors.js';
import { queryOf } from '../agent-calls.js';
import { pathSuffix, registerEndpoint } from '../endpoints.js';
import { formatGoDuration } from '../go-duration.js';
import { sendJson } from '../json.js';
import { rejectFilter } from '../query-options.js';
import type { RouteDeps } from '../route-deps.js';

/**
 * Serf's LAN port, which Consul reports as `Member.Port`. We run no Serf; clients only display
 * it, so the conventional value is reported.
 */
export const SERF_LAN_PORT = 8301;

/** Serf's WAN port: `Member.Port` of the WAN pool (`/v1/agent/members?wan=1`). */
export const SERF_WAN_PORT = 8302;

/** Serf member statuses as Consul's CLI prints them (serf.MemberStatus.String()). */
export const MEMBER_STATUS_NAMES = ['none', 'alive', 'leaving', 'left', 'failed'] as const;

const JOIN_PREFIX = '/v1/agent/join/';
const FORCE_LEAVE_PREFIX = '/v1/agent/force-leave/';

/** The `build` tag: `<version>:<revision>`, as Consul's Serf tags carry it. */
function buildTag(info: AgentInfo): string {
  return `${info.version}:${info.revision}`;
}

/**
 * The Serf tags Consul sets (agent/consul setupSerf), sorted by key as Go's JSON sorts map keys.
 * Every member is reported with this agent's build: a Conclave cluster runs one build, and
 * MemberInfo does not carry another.
 */
function memberTags(member: MemberInfo, build: string, wan: boolean): Record<string, string> {
  const tags: Record<string, string> = {
    build, dc: member.datacenter, id: member.nodeId, role: member.server ? 'consul' : 'node', segment: '',
    vsn: '2', vsn_max: '3', vsn_min: '2',
  };
  if (member.server) {
    tags['port'] = String(member.serverPort ?? '');
    tags['raft_vsn'] = '3';
    if (!wan) tags['wan_join_port'] = String(SERF_WAN_PORT);
  }
  return Object.fromEntries(Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A Member as Consul reports it: protocol and delegate versions are Serf's/Consul's fixed ranges. */
export function memberJson(member: MemberInfo, build: string, wan = false): Record<string, unknown> {
  return {
    Name: wan ? `${member.name}.${member.datacenter}` : member.name,
    Addr: member.address,
    Port: wan ? SERF_WAN_PORT : SERF_LAN_PORT,
    Tags: memberTags(member, build, wan),
    Status: member.status,
    ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4,
  };
}

/** This agent as a member (alive: it is answering). */
export function memberOf(info: AgentInfo): Record<string, unknown> {
  const self: MemberInfo = {
    name: info.nodeName, address: info.advertiseAddress, server: info.server, status: 1, nodeId: info.nodeId,
    datacenter: info.datacenter, serverPort: info.server ? info.serverPort : null, meta: {},
  };
  return memberJson(self, buildTag(info));
}

/** A number field of the Raft status, as text ("" when absent). */
function statusNumber(status: Record<string, unknown>, field: string): string {
  const value = status[field];
  return typeof value === 'number' || typeof value === 'bigint' ? String(value) : '';
}

/** Consul's `raft` stats section, from this server's Raft status (hashicorp/raft Stats names). */
function raftStats(status: Record<string, unknown>): Record<string, string> {
  const role = typeof status['role'] === 'string' ? status['role'] : '';
  const lastContactMs = status['lastContactMs'];
  let lastContact = 'never';
  if (role === 'leader') lastContact = '0';
  else if (typeof lastContactMs === 'number') lastContact = formatGoDuration(BigInt(Math.round(lastContactMs)) * 1_000_000n);
  return {
    applied_index: statusNumber(status, 'appliedIndex'),
    commit_index: statusNumber(status, 'commitIndex'),
    last_contact: lastContact,
    last_log_index: statusNumber(status, 'lastIndex'),
    last_snapshot_index: statusNumber(status, 'snapshotIndex'),
    protocol_version: '3',
    state: role === '' ? '' : `${role.charAt(0).toUpperCase()}${role.slice(1)}`,
    term: statusNumber(status, 'term'),
  };
}

/** The `agent` section: how many local services and checks, monitors (runners) and TTL checks. */
function checkStats(agent: AgentApi): Record<string, string> {
  const checks = agent.local.checks();
  const monitors = checks.filter((check) => check.spec.kind === 'http' || check.spec.kind === 'tcp' || check.spec.kind === 'script');
  return {
    check_monitors: String(monitors.length),
    check_ttls: String(checks.filter((check) => check.spec.kind === 'ttl').length),
    checks: String(checks.length),
    services: String(agent.local.services().length),
  };
}

/**
 * `Config.Stats` of /v1/agent/self, what `consul info` prints: string values in sections, as
 * Consul's. Only local facts: agent/self must answer without a server (Go clients call it to
 * learn the node name), so a client agent reports no leader.
 */
async function agentStats(agent: AgentApi): Promise<Record<string, Record<string, string>>> {
  const { info } = agent;
  const stats: Record<string, Record<string, string>> = {
    agent: checkStats(agent),
    build: { prerelease: '', revision: info.revision, version: info.version, version_metadata: '' },
    consul: { acl: 'disabled', server: String(info.server) },
    runtime: { arch: process.arch, cpu_count: String(availableParallelism()), os: process.platform, version: process.version },
  };
  const status = agent.raftStatus();
  if (info.server && status !== null) {
    const consul = stats['consul'] ?? {};
    consul['known_datacenters'] = '1';
    consul['leader'] = String(status['role'] === 'leader');
    consul['leader_addr'] = await agent.leaderAddress();
    stats['raft'] = raftStats(status);
  }
  return stats;
}

/** `/v1/agent/self`: Go's `Agent().NodeName()` panics without Config.NodeName. */
export async function agentSelf(agent: AgentApi): Promise<Record<string, unknown>> {
  const { info } = agent;
  return {
    Config: {
      Datacenter: info.datacenter,
      PrimaryDatacenter: info.datacenter,
      NodeName: info.nodeName,
      NodeID: info.nodeId,
      Revision: info.revision,
      Server: info.server,
      Version: info.version,
      BuildDate: info.buildDate,
    },
    DebugConfig: {},
    Coord: { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 0.00001 },
    Member: memberOf(info),
    Stats: await agentStats(agent),
    Meta: {},
  };
}

/**
 * `GET /v1/agent/members[?wan=1]`. The LAN pool is every member. The WAN pool of a single
 * datacenter is its servers, named `<node>.<dc>` on port 8302, as a Consul server lists itself
 * and its peers; a client agent is in no WAN pool and answers [] (Consul: no members).
 */
async function members(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const query = queryOf(request);
  rejectFilter(query);
  const wan = query.get('wan') !== '';
  const build = buildTag(agent.info);
  if (wan && !agent.info.server) return sendJson(request, reply, () => []);
  const list = await agent.members();
  const pool = wan ? list.filter((member) => member.server) : list;
  return sendJson(request, reply, () => pool.map((member) => memberJson(member, build, wan)));
}

/** Membership failures are Consul's 500 with the agent's text, whatever our error's own status. */
function asInternalError(error: unknown): Error {
  if (error instanceof AssertionError) return error;
  if (error instanceof AgentError && error.statusCode === 500) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new InternalError(message, { cause: error });
}

async function membershipCall(call: () => Promise<void>, reply: FastifyReply) {
  try {
    await call();
  } catch (error) {
    throw asInternalError(error);
  }
  return reply.code(200).send();
}

async function join(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const address = pathSuffix(request, JOIN_PREFIX);
  if (queryOf(request).get('wan') !== '') {
    // One datacenter per cluster: there is no WAN pool to join.
    throw new InternalError(agent.info.server ? 'WAN federation is not supported: a Conclave cluster is one datacenter'
      : 'Must be a server to join WAN cluster');
  }
  if (address === '') throw new InternalError('Missing address to join');
  return membershipCall(() => agent.join(address), reply);
}

async function forceLeave(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const node = pathSuffix(request, FORCE_LEAVE_PREFIX);
  if (node === '') throw new BadRequestError('Missing node name');
  const prune = queryOf(request).has('prune');
  return membershipCall(() => agent.forceLeave(node, prune), reply);
}

/** The agent endpoint family. */
export const agentRoutes: FastifyPluginAsync<RouteDeps> = async (app, { agent, registry }) => {
  registerEndpoint(app, registry, '/v1/agent/self', {
    GET: async (request, reply) => {
      const self = await agentSelf(agent);
      return sendJson(request, reply, () => self);
    },
  });
  registerEndpoint(app, registry, '/v1/agent/members', { GET: (request, reply) => members(agent, request, reply) });
  registerEndpoint(app, registry, JOIN_PREFIX, { PUT: (request, reply) => join(agent, request, reply) });
  // The Agent wrapper shuts the agent down shortly after leave() resolves, once this 200 is out.
  registerEndpoint(app, registry, '/v1/agent/leave', { PUT: (_request, reply) => membershipCall(() => agent.leave(), reply) });
  registerEndpoint(app, registry, FORCE_LEAVE_PREFIX, { PUT: (request, reply) => forceLeave(agent, request, reply) });
};
