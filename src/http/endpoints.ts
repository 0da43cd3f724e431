/**
 * Consul's endpoint table on Fastify's router. Consul registers each endpoint with a fixed
 * method list (agent/http.go `registerEndpoint`) on a Go ServeMux, which gives these rules
 * (consul-api.md §1), reproduced here:
 * - a pattern ending in `/` is a subtree (`/v1/kv/` serves every key); others match exactly;
 * - a wrong method is `405` with `Allow: OPTIONS,<methods>` and `method X not allowed`;
 *   `OPTIONS` is `200` with the same `Allow`; there is no automatic HEAD;
 * - the subtree root without its slash (`/v1/kv`) is redirected (301) to `/v1/kv/`;
 * - an unknown path is `404 Invalid URL path: not a recognized HTTP API endpoint\n`.
 *
 * Handlers take their key or id from `request.consulPath`, the percent-decoded, canonical path
 * set by app.ts before any handler runs (`%2F` is part of a key).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { assert } from '../lib/assert.js';
import { sendText } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The decoded, canonical request path (set in onRequest; see canonical-path.ts). */
    consulPath: string;
  }
}

/** An endpoint handler; it answers through `reply` or returns the reply. */
export type EndpointHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** The methods Consul endpoints use, in the order Consul lists them in `Allow`. */
export type EndpointMethod = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** One registered endpoint. */
interface Endpoint {
  readonly pattern: string;
  readonly allow: string;
}

/** The endpoints registered so far: what a 404 consults to answer 405 for exotic methods. */
export class EndpointRegistry {
  readonly #exact = new Map<string, Endpoint>();
  readonly #subtrees: Endpoint[] = [];

  /** Records an endpoint; patterns are unique (Consul panics on a duplicate). */
  add(pattern: string, allow: string): void {
    assert(pattern.startsWith('/v1/'), 'endpoints live under /v1/');
    assert(this.#find(pattern)?.pattern !== pattern, `endpoint ${pattern} registered twice`);
    const endpoint = { pattern, allow };
    if (pattern.endsWith('/')) {
      this.#subtrees.push(endpoint);
      this.#subtrees.sort((a, b) => b.pattern.length - a.pattern.length); // longest match first
    } else {
      this.#exact.set(pattern, endpoint);
    }
  }

  /** True when `pattern` (exact) is registered. */
  hasExact(pattern: string): boolean {
    return this.#exact.has(pattern);
  }

  /** The endpoint serving `path`, as Go's ServeMux picks it (exact, else the longest subtree). */
  match(path: string): Endpoint | undefined {
    return this.#find(path);
  }

  #find(path: string): Endpoint | undefined {
    return this.#exact.get(path) ?? this.#subtrees.find((endpoint) => path.startsWith(endpoint.pattern));
  }
}

/** Answers OPTIONS (200) or a wrong method (405), both with `Allow`. */
export function sendMethodNotAllowed(request: FastifyRequest, reply: FastifyReply, allow: string): FastifyReply {
  reply.header('allow', allow);
  if (request.method === 'OPTIONS') return reply.code(200).send();
  return sendText(reply, 405, `method ${request.method} not allowed`);
}

/**
 * Registers `pattern` with one handler per allowed method; every other method Fastify routes
 * gets 405 (or 200 for OPTIONS). A subtree pattern also redirects its root without the slash.
 */
export function registerEndpoint(app: FastifyInstance, registry: EndpointRegistry, pattern: string,
  handlers: Partial<Record<EndpointMethod, EndpointHandler>>): void {
  const methods = Object.keys(handlers) as EndpointMethod[];
  assert(methods.length > 0, 'an endpoint has at least one method');
  const allow = ['OPTIONS', ...methods].join(',');
  registry.add(pattern, allow);
  const subtree = pattern.endsWith('/');
  const url = subtree ? `${pattern}*` : pattern;
  for (const method of methods) {
    const handler = handlers[method];
    assert(handler !== undefined, 'a listed method has a handler');
    app.route({ method, url, handler });
  }
  const others = app.supportedMethods.filter((method) => !(methods as string[]).includes(method)) as HTTPMethods[];
  app.route({ method: others, url, handler: async (request, reply) => sendMethodNotAllowed(request, reply, allow) });
  const root = pattern.slice(0, -1);
  if (subtree && !registry.hasExact(root)) {
    app.route({
      method: app.supportedMethods as HTTPMethods[],
      url: root,
      handler: async (request, reply) => {
        const queryAt = request.url.indexOf('?');
        const query = queryAt < 0 || queryAt === request.url.length - 1 ? '' : request.url.slice(queryAt);
        return reply.code(301).header('location', `${pattern}${query}`).send();
      },
    });
  }
}

/** The part of the request path after `prefix` (a subtree pattern): the key, session or node. */
export function pathSuffix(request: FastifyRequest, prefix: string): string {
  const path = request.consulPath;
  assert(path.startsWith(prefix), `${path} is routed under ${prefix}`);
  return path.slice(prefix.length);
}

/** Consul's 404 for a path no endpoint serves (Go's Index handler: Fprintln, hence the newline). */
export function sendUnknownPath(reply: FastifyReply, path: string): FastifyReply {
  if (path === '/') return sendText(reply, 200, 'Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and restart.');
  const message = path.includes('/v1/')
    ? 'Invalid URL path: not a recognized HTTP API endpoint\n'
    : "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n";
  return sendText(reply, 404, message);
}
