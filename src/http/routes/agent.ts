/**
 * `/v1/agent/*`, answered by the local agent without meta headers (consul-api.md §10). For now
 * only `/v1/agent/self`; members, services and checks come with the catalog.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AgentInfo } from '../../agent/agent-api.js';
import { registerEndpoint } from '../endpoints.js';
import { sendJson } from '../json.js';
import type { RouteDeps } from '../route-deps.js';

/**
 * Serf's LAN port, which Consul reports as `Member.Port`. We run no Serf; clients only display
 * it, so the conventional value is reported.
 */
export const SERF_LAN_PORT = 8301;

/** A Member as Consul reports it: protocol and delegate versions are Serf's/Consul's fixed ranges. */
export function memberOf(info: AgentInfo): Record<string, unknown> {
  const tags: Record<string, string> = {
    build: `${info.version}:${info.revision}`,
    dc: info.datacenter,
    id: info.nodeId,
    role: info.server ? 'consul' : 'node',
    segment: '',
    vsn: '2',
    vsn_max: '3',
    vsn_min: '2',
  };
  if (info.server) tags['port'] = String(info.serverPort);
  return {
    Name: info.nodeName, Addr: info.advertiseAddress, Port: SERF_LAN_PORT, Tags: tags, Status: 1,
    ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4,
  };
}

/** `/v1/agent/self`: Go's `Agent().NodeName()` panics without Config.NodeName. */
export function agentSelf(info: AgentInfo): Record<string, unknown> {
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
    Stats: {},
    Meta: {},
  };
}

/** The agent endpoint family. */
export const agentRoutes: FastifyPluginAsync<RouteDeps> = async (app, { agent, registry }) => {
  registerEndpoint(app, registry, '/v1/agent/self', {
    GET: async (request, reply) => sendJson(request, reply, () => agentSelf(agent.info)),
  });
};
