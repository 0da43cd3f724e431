/**
 * The agent's own services and checks (consul-api.md §10): listed and changed locally, without
 * meta headers, whatever the agent's mode; they reach the catalog through anti-entropy
 * (src/agent/service-sync.ts). Writes answer an empty 200; errors carry Consul's texts.
 *
 * Service and check deregistration and pass/warn/fail also accept GET, as Consul did before
 * 1.0: Debian's python3-consul (0.7.1) still sends GET for them, and Consul 1.16 would answer 405.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AgentApi } from '../../agent/agent-api.js';
import type { LocalCheck } from '../../agent/local-state.js';
import { durationText } from '../../agent/local-state.js';
import { BadRequestError, TooLargeError } from '../../lib/errors.js';
import type { HealthStatus, ServiceDefinition } from '../../state/commands.js';
import { hashNodeServices } from '../../agent/service-sync.js';
import { queryOf } from '../agent-calls.js';
import { bodyText, readBody } from '../body.js';
import { pathSuffix, registerEndpoint } from '../endpoints.js';
import { sendJson } from '../json.js';
import { JSON_BODY_BYTES_MAX } from '../limits.js';
import { boolQueryParam, parseGoBool, rejectFilter } from '../query-options.js';
import type { RouteDeps } from '../route-deps.js';
import { decodeAgentCheckRegistration, decodeAgentServiceRegistration, decodeCheckUpdate } from '../service-request.js';

const SERVICE_PREFIX = '/v1/agent/service/';
const SERVICE_DEREGISTER_PREFIX = '/v1/agent/service/deregister/';
const SERVICE_MAINTENANCE_PREFIX = '/v1/agent/service/maintenance/';
const CHECK_DEREGISTER_PREFIX = '/v1/agent/check/deregister/';
const CHECK_UPDATE_PREFIX = '/v1/agent/check/update/';
const TTL_PREFIXES = { pass: 'passing', warn: 'warning', fail: 'critical' } as const satisfies Record<string, HealthStatus>;

function bodyTooLarge(declaredBytes: number | null): TooLargeError {
  const size = declaredBytes === null ? '' : `(${declaredBytes} bytes)`;
  return new TooLargeError(`Request body${size} too large, max size: ${JSON_BODY_BYTES_MAX} bytes.`);
}

async function jsonBody(request: FastifyRequest): Promise<string> {
  return bodyText(await readBody(request, JSON_BODY_BYTES_MAX, bodyTooLarge));
}

/** An AgentService (api.AgentService) as `/v1/agent/services` lists it. */
export function agentServiceJson(service: ServiceDefinition, datacenter: string): Record<string, unknown> {
  return {
    ID: service.serviceId,
    Service: service.service,
    Tags: [...service.tags],
    Meta: { ...service.meta },
    Port: service.port,
    Address: service.address,
    Weights: { Passing: service.weights.passing, Warning: service.weights.warning },
    EnableTagOverride: service.enableTagOverride,
    Datacenter: datacenter,
  };
}

/** Consul's HealthCheckDefinition of a local check: only the fields that are set. */
function definitionJson(check: LocalCheck): Record<string, unknown> {
  const { spec } = check;
  const definition: Record<string, unknown> = {};
  if (spec.http !== '') definition['HTTP'] = spec.http;
  if (Object.keys(spec.header).length > 0) definition['Header'] = spec.header;
  if (spec.method !== '') definition['Method'] = spec.method;
  if (spec.body !== '') definition['Body'] = spec.body;
  if (spec.tlsSkipVerify) definition['TLSSkipVerify'] = true;
  if (spec.tcp !== '') definition['TCP'] = spec.tcp;
  if (spec.intervalMs > 0) definition['Interval'] = durationText(spec.intervalMs);
  if (spec.outputMaxBytes > 0) definition['OutputMaxSize'] = spec.outputMaxBytes;
  if (spec.timeoutMs > 0) definition['Timeout'] = durationText(spec.timeoutMs);
  if (spec.deregisterCriticalServiceAfterMs > 0) definition['DeregisterCriticalServiceAfter'] = durationText(spec.deregisterCriticalServiceAfterMs);
  if (spec.args.length > 0) definition['ScriptArgs'] = [...spec.args];
  if (spec.ttlMs > 0) definition['TTL'] = durationText(spec.ttlMs);
  return definition;
}

/** A local check as a HealthCheck (§12), indexes 0 as Consul's agent reports them. */
export function agentCheckJson(check: LocalCheck, nodeName: string): Record<string, unknown> {
  const { spec } = check;
  return {
    Node: nodeName, CheckID: spec.checkId, Name: spec.name, Status: check.status, Notes: spec.notes, Output: check.output,
    ServiceID: spec.serviceId, ServiceName: check.serviceName, ServiceTags: [...check.serviceTags], Type: spec.kind,
    Interval: durationText(spec.intervalMs), Timeout: durationText(spec.timeoutMs), ExposedPort: 0,
    Definition: definitionJson(check), CreateIndex: 0, ModifyIndex: 0,
  };
}

/** `?enable=` of the maintenance endpoints: required, Go ParseBool. */
function enableParam(request: FastifyRequest): boolean {
  const query = queryOf(request);
  if (!query.has('enable')) throw new BadRequestError('Missing value for enable');
  const raw = query.get('enable');
  const enable = parseGoBool(raw);
  if (enable === null) throw new BadRequestError(`Invalid value for enable: ${JSON.stringify(raw)}`);
  return enable;
}

function idIn(request: FastifyRequest, prefix: string, missing: string): string {
  const id = pathSuffix(request, prefix);
  if (id === '') throw new BadRequestError(missing);
  return id;
}

async function registerService(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const { service, checks } = decodeAgentServiceRegistration(await jsonBody(request));
  const replaceExisting = boolQueryParam(queryOf(request), 'replace-existing-checks');
  if (replaceExisting === null) throw new BadRequestError('Invalid value for ?replace-existing-checks');
  agent.local.registerService(service, checks, replaceExisting);
  return reply.code(200).send();
}

/** `GET /v1/agent/service/<id>`: one service with its ContentHash. */
async function getService(agent: AgentApi, request: FastifyRequest, reply: FastifyReply) {
  const id = idIn(request, SERVICE_PREFIX, 'Missing service ID');
  const service = agent.local.service(id);
  if (service === undefined) return reply.code(404).header('content-type', 'text/plain; charset=utf-8').send(`unknown service ID: ${id}`);
  const hash = hashNodeServices({ services: [service], checks: [] }).slice(0, 16);
  return sendJson(request, reply, () => ({ ...agentServiceJson(service, agent.info.datacenter), ContentHash: hash }));
}

/** The endpoints of the agent's own services and checks. */
export const agentServiceRoutes: FastifyPluginAsync<RouteDeps> = async (app, { agent, registry }) => {
  registerEndpoint(app, registry, '/v1/agent/services', {
    GET: async (request, reply) => {
      rejectFilter(queryOf(request));
      const services = agent.local.services();
      return sendJson(request, reply, () => Object.fromEntries(services.map((s) => [s.serviceId, agentServiceJson(s, agent.info.datacenter)])));
    },
  });
  registerEndpoint(app, registry, '/v1/agent/checks', {
    GET: async (request, reply) => {
      rejectFilter(queryOf(request));
      const checks = agent.local.checks();
      return sendJson(request, reply, () => Object.fromEntries(checks.map((c) => [c.spec.checkId, agentCheckJson(c, agent.info.nodeName)])));
    },
  });
  registerEndpoint(app, registry, SERVICE_PREFIX, { GET: (request, reply) => getService(agent, request, reply) });
  registerEndpoint(app, registry, '/v1/agent/service/register', { PUT: (request, reply) => registerService(agent, request, reply) });
  const deregisterService = async (request: FastifyRequest, reply: FastifyReply) => {
    agent.local.deregisterService(idIn(request, SERVICE_DEREGISTER_PREFIX, 'Missing service ID'));
    return reply.code(200).send();
  };
  registerEndpoint(app, registry, SERVICE_DEREGISTER_PREFIX, { GET: deregisterService, PUT: deregisterService });
  registerEndpoint(app, registry, SERVICE_MAINTENANCE_PREFIX, {
    PUT: async (request, reply) => {
      const id = idIn(request, SERVICE_MAINTENANCE_PREFIX, 'Missing service ID');
      agent.local.setServiceMaintenance(id, enableParam(request), queryOf(request).get('reason'));
      return reply.code(200).send();
    },
  });
  registerEndpoint(app, registry, '/v1/agent/maintenance', {
    PUT: async (request, reply) => {
      agent.local.setNodeMaintenance(enableParam(request), queryOf(request).get('reason'));
      return reply.code(200).send();
    },
  });
  registerCheckEndpoints(app, registry, agent);
};

function registerCheckEndpoints(app: Parameters<typeof registerEndpoint>[0], registry: RouteDeps['registry'], agent: AgentApi): void {
  registerEndpoint(app, registry, '/v1/agent/check/register', {
    PUT: async (request, reply) => {
      agent.local.registerCheck(decodeAgentCheckRegistration(await jsonBody(request)));
      return reply.code(200).send();
    },
  });
  const deregisterCheck = async (request: FastifyRequest, reply: FastifyReply) => {
    agent.local.deregisterCheck(pathSuffix(request, CHECK_DEREGISTER_PREFIX));
    return reply.code(200).send();
  };
  registerEndpoint(app, registry, CHECK_DEREGISTER_PREFIX, { GET: deregisterCheck, PUT: deregisterCheck });
  for (const [verb, status] of Object.entries(TTL_PREFIXES)) {
    const prefix = `/v1/agent/check/${verb}/`;
    const update = async (request: FastifyRequest, reply: FastifyReply) => {
      agent.local.updateTtl(pathSuffix(request, prefix), status, queryOf(request).get('note'));
      return reply.code(200).send();
    };
    registerEndpoint(app, registry, prefix, { GET: update, PUT: update });
  }
  registerEndpoint(app, registry, CHECK_UPDATE_PREFIX, {
    PUT: async (request, reply) => {
      const { status, output } = decodeCheckUpdate(await jsonBody(request));
      agent.local.updateTtl(pathSuffix(request, CHECK_UPDATE_PREFIX), status, output);
      return reply.code(200).send();
    },
  });
}
