/**
 * `/v1/health/*` (consul-api.md §12): node, state, checks of a service, and service instances.
 * Every read blocks and sends every meta header, X-Consul-Effective-Consistency included
 * (catalog-read.ts). Checks are HealthCheck JSON, sorted by Node then CheckID as Consul's
 * state store returns them (byte order: `serfHealth` precedes `service:*` checks).
 *
 * `service/<service>` lists each instance with its node and the checks bearing on it: the node's
 * checks (serfHealth: a failed node takes its services' health with it) and the service's own.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { HealthServiceChecksQuery, HealthStateQuery } from '../../agent/queries.js';
import { BadRequestError } from '../../lib/errors.js';
import type { HealthCheck } from '../../state/catalog.js';
import { healthCheckJson, nodeJson, nodeServiceJson } from '../catalog-json.js';
import { catalogRead, nodeMetaField } from '../catalog-read.js';
import { pathSuffix, registerEndpoint } from '../endpoints.js';
import { boolQueryParam } from '../query-options.js';
import type { RouteDeps } from '../route-deps.js';

const NODE_PREFIX = '/v1/health/node/';
const STATE_PREFIX = '/v1/health/state/';
const CHECKS_PREFIX = '/v1/health/checks/';
const SERVICE_PREFIX = '/v1/health/service/';

function nameIn(request: FastifyRequest, prefix: string, missing: string): string {
  const name = pathSuffix(request, prefix);
  if (name === '') throw new BadRequestError(missing);
  return name;
}

const checksJson = (checks: HealthCheck[]): unknown => checks.map(healthCheckJson);

/** The health endpoint family. */
export const healthRoutes: FastifyPluginAsync<RouteDeps> = async (app, { agent, registry }) => {
  registerEndpoint(app, registry, NODE_PREFIX, {
    GET: (request, reply) => catalogRead(agent, request, reply,
      () => ({ kind: 'health-node', node: nameIn(request, NODE_PREFIX, 'Missing node name') }), checksJson),
  });
  // Any state text is accepted: one no check is in answers [] (Consul does not validate it).
  registerEndpoint(app, registry, STATE_PREFIX, {
    GET: (request, reply) => catalogRead<HealthStateQuery>(agent, request, reply,
      (query) => ({ kind: 'health-state', state: nameIn(request, STATE_PREFIX, 'Missing check state'), ...nodeMetaField(query) }),
      checksJson),
  });
  registerEndpoint(app, registry, CHECKS_PREFIX, {
    GET: (request, reply) => catalogRead<HealthServiceChecksQuery>(agent, request, reply,
      (query) => ({ kind: 'health-service-checks', service: nameIn(request, CHECKS_PREFIX, 'Missing service name'), ...nodeMetaField(query) }),
      checksJson),
  });
  registerEndpoint(app, registry, SERVICE_PREFIX, {
    GET: (request, reply) => catalogRead(agent, request, reply, (query) => {
      const service = nameIn(request, SERVICE_PREFIX, 'Missing service name');
      // `?passing` drops instances with any non-passing check; parsed now so a bad value is a 400.
      const passing = boolQueryParam(query, 'passing');
      if (passing === null) throw new BadRequestError('Invalid value for ?passing');
      return { kind: 'service-instances', service, tags: query.getAll('tag'), passing, ...nodeMetaField(query) };
    }, (rows) => rows.map((row) => ({ Node: nodeJson(row.node), Service: nodeServiceJson(row.service), Checks: row.checks.map(healthCheckJson) }))),
  });
};
