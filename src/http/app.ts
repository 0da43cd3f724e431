/**
 * `buildHttpApp()`: Consul's HTTP API as a Fastify instance that never listens (STYLE §7: tests
 * use `inject()`, `serve.ts` listens). One plugin per endpoint family; shared here:
 * - every body reaches the handlers unread (one catch-all parser), since Consul decides on key,
 *   flags and Content-Length before reading, and takes KV bodies raw whatever their type;
 * - the query string is Go's (`GoQuery`), parsed only when asked;
 * - every request's path is percent-decoded and checked (canonical-path.ts) before a handler
 *   runs: bad escapes and unprintable paths are 400, non-canonical ones are redirected (301);
 * - one error map (errors.ts) and Consul's 404/405 for unknown paths and methods.
 */
import Fastify, { LogController } from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AgentApi } from '../agent/agent-api.js';
import { silentLogger } from '../lib/logger.js';
import type { Logger } from '../lib/logger.js';
import { checkPath } from './canonical-path.js';
import { EndpointRegistry, sendMethodNotAllowed, sendUnknownPath } from './endpoints.js';
import { exitOnBug, installErrorHandler, sendText } from './errors.js';
import type { BugHandler } from './errors.js';
import { fastifyLoggerFor } from './fastify-logger.js';
import { parseGoQuery } from './go-query.js';
import type { GoQuery } from './go-query.js';
import type { RouteDeps } from './route-deps.js';
import { agentRoutes } from './routes/agent.js';
import { agentServiceRoutes } from './routes/agent-services.js';
import { catalogRoutes } from './routes/catalog.js';
import { healthRoutes } from './routes/health.js';
import { kvRoutes } from './routes/kv.js';
import { operatorRoutes } from './routes/operator.js';
import { sessionRoutes } from './routes/session.js';
import { snapshotRoutes } from './routes/snapshot.js';
import { statusRoutes } from './routes/status.js';
import { txnRoutes } from './routes/txn.js';
import { uiRoutes } from './routes/ui.js';
import { resolveHttpSettings } from './settings.js';
import type { HttpSettings } from './settings.js';
import { invalidEscape } from './url-codec.js';

/** Options of the HTTP app. */
export interface HttpAppOptions extends Partial<HttpSettings> {
  /** What to do with a programmer error (AssertionError); default: log and exit the process. */
  readonly onBug?: BugHandler;
  /**
   * How long a client may take to send a whole request (headers and body), when listening:
   * the slowloris bound. A blocking query's wait is not part of it.
   */
  readonly requestTimeoutMs?: number;
  /** Serve the web UI at /ui/ and redirect / there (the agent's `ui` / `ui_config.enabled`). */
  readonly ui?: boolean;
}

/** What buildHttpApp needs. */
export interface HttpAppDeps {
  readonly agent: AgentApi;
  readonly logger?: Logger;
  readonly options?: HttpAppOptions;
}

/** Default HttpAppOptions.requestTimeoutMs: a 512 KiB body needs far less on any live link. */
const REQUEST_TIMEOUT_MS_DEFAULT = 30_000;

/**
 * The onRequest checks of every request (see the file comment). Also drops the Content-Type
 * header, so Fastify neither refuses an unusual one (415) nor picks a parser by it: Consul
 * ignores Content-Type everywhere.
 */
function checkRequest(request: FastifyRequest, reply: FastifyReply): FastifyReply | undefined {
  const check = checkPath(request.url);
  switch (check.kind) {
    case 'too-long':
      return sendText(reply, 414, 'Request URI too long');
    case 'bad-escape':
      return sendText(reply, 400, `invalid URL escape ${JSON.stringify(check.escape)}`);
    case 'unprintable':
      return reply.code(400).send();
    case 'redirect':
      return reply.code(301).header('location', check.location).send();
    case 'ok':
      break;
  }
  // Go's ParseQuery failing makes Consul's HTTP wrapper answer 500 with no body.
  if ((request.query as GoQuery).malformed) return reply.code(500).send();
  const route = request.routeOptions.url;
  // Fastify routes on the raw path; a decoded path outside the matched pattern is unknown to us.
  if (route !== undefined && !(route.endsWith('*') ? check.path.startsWith(route.slice(0, -1)) : check.path === route)) {
    return sendUnknownPath(reply, check.path);
  }
  request.consulPath = check.path;
  delete request.raw.headers['content-type'];
  return undefined;
}

/** Fastify's own URL errors (a `%` escape its router cannot decode): Consul's 400s. */
function frameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const queryAt = request.url.indexOf('?');
  const escape = invalidEscape(queryAt < 0 ? request.url : request.url.slice(0, queryAt));
  if (escape !== null) sendText(reply, 400, `invalid URL escape ${JSON.stringify(escape)}`);
  else if (error.code === 'FST_ERR_BAD_URL') reply.code(400).send();
  else sendText(reply, 400, error.message);
}

/** Builds the app (routes registered, not listening). Await `app.ready()` or `inject()`. */
export function buildHttpApp(deps: HttpAppDeps): FastifyInstance {
  const { agent, logger = silentLogger, options = {} } = deps;
  const settings = resolveHttpSettings(options);
  const app = Fastify({
    loggerInstance: fastifyLoggerFor(logger),
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    routerOptions: { querystringParser: parseGoQuery as unknown as (text: string) => Record<string, unknown> },
    frameworkErrors: frameworkError,
    requestTimeout: options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT,
    // Blocking queries hold connections for minutes: close() must not wait for them.
    forceCloseConnections: true,
  });
  app.decorateRequest('consulPath', '');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  installErrorHandler(app, options.onBug ?? exitOnBug(logger));
  app.addHook('onRequest', async (request, reply) => checkRequest(request, reply));
  const registry = new EndpointRegistry();
  app.setNotFoundHandler(async (request, reply) => {
    const endpoint = registry.match(request.consulPath);
    if (endpoint !== undefined) return sendMethodNotAllowed(request, reply, endpoint.allow);
    return sendUnknownPath(reply, request.consulPath);
  });
  const routeDeps: RouteDeps = { agent, registry, settings };
  void app.register(kvRoutes, routeDeps);
  void app.register(txnRoutes, routeDeps);
  void app.register(sessionRoutes, routeDeps);
  void app.register(statusRoutes, routeDeps);
  void app.register(agentRoutes, routeDeps);
  void app.register(agentServiceRoutes, routeDeps);
  void app.register(catalogRoutes, routeDeps);
  void app.register(healthRoutes, routeDeps);
  void app.register(operatorRoutes, routeDeps);
  void app.register(snapshotRoutes, routeDeps);
  if (options.ui === true) void app.register(uiRoutes);
  return app;
}
