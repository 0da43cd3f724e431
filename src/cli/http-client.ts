/**
 * The CLI's HTTP client: undici calls to an agent's `/v1` API, set up and failing like Consul's
 * Go `api` package, so commands print the errors Consul's CLI prints:
 * - the address: `-http-addr`, else `CONSUL_HTTP_ADDR`, else `127.0.0.1:8500`; `http://`,
 *   `https://` or `unix://` prefixes (`CONSUL_HTTP_SSL=true` makes a bare address https);
 *   another scheme is `Unknown protocol scheme: x`;
 * - the token: `-token`, else `CONSUL_HTTP_TOKEN`, sent as `X-Consul-Token`; `-datacenter`
 *   becomes `?dc=` on every call;
 * - a status other than the expected one is `Unexpected response code: 500 (<body>)`; a
 *   transport failure is Go's url.Error: `Get "http://…/v1/…": dial tcp …: connect: connection refused`.
 */
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { goPathEscape, goQueryEscape } from '../http/url-codec.js';
import type { FlagSpecs } from './flags.js';

/** Consul's ClientFlags: where the agent is and which token to send. */
export const CLIENT_FLAGS = {
  'http-addr': {
    kind: 'string',
    usage: 'The address and port of the Conclave HTTP agent, as ip:port or a URL (http://, https://, unix://). '
      + 'Also CONSUL_HTTP_ADDR; the default is http://127.0.0.1:8500.',
  },
  token: { kind: 'string', usage: 'ACL token to use in the request (accepted and ignored: ACLs are off). Also CONSUL_HTTP_TOKEN.' },
} as const satisfies FlagSpecs;

/** Consul's ServerFlags: the datacenter to ask and whether a stale read is fine. */
export const SERVER_FLAGS = {
  datacenter: { kind: 'string', usage: 'Name of the datacenter to query. The default is the agent\'s datacenter.' },
  stale: { kind: 'bool', usage: 'Permit any server (non-leader) to respond to this request.' },
} as const satisfies FlagSpecs;

/** The default agent address (Consul's api.DefaultConfig). */
const DEFAULT_ADDRESS = '127.0.0.1:8500';

/** What an agent answered. */
export interface HttpAnswer {
  readonly status: number;
  readonly body: Buffer;
  /** `X-Consul-Index` (blocking queries), or null when absent. */
  readonly index: string | null;
}

/** A failed call, with the text Consul's Go api gives the same failure. */
export class ApiError extends Error {
  override name = 'ApiError';
}

/** The client settings a command's flags give. */
export interface ClientSettings {
  readonly httpAddr: string;
  readonly token: string;
  readonly datacenter: string;
}

/** Query parameters in order of appearance; encoded sorted by key, as Go's Values.Encode. */
export type QueryParams = readonly (readonly [string, string])[];

function encodeQuery(params: QueryParams): string {
  const sorted = [...params].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return sorted.map(([key, value]) => `${goQueryEscape(key)}=${goQueryEscape(value)}`).join('&');
}

/** Go's url.Error op: the method with only its first letter upper-case (`Get`, `Put`). */
function goMethod(method: string): string {
  return `${method.charAt(0)}${method.slice(1).toLowerCase()}`;
}

/** The network error code of an undici/net failure (also inside an AggregateError or a cause). */
function errorCode(error: unknown): string {
  const candidate = error as { code?: unknown; errors?: unknown[]; cause?: unknown };
  if (typeof candidate.code === 'string') return candidate.code;
  if (Array.isArray(candidate.errors) && candidate.errors.length > 0) return errorCode(candidate.errors[0]);
  if (candidate.cause !== undefined) return errorCode(candidate.cause);
  return '';
}

/** An agent's HTTP API. Close it when done: it keeps connections alive between calls. */
export class ConsulClient {
  readonly #origin: string;
  readonly #dialTarget: string;
  readonly #headers: Record<string, string>;
  readonly #datacenter: string;
  readonly #dispatcher: Dispatcher;

  private constructor(origin: string, dialTarget: string, token: string, datacenter: string, dispatcher: Dispatcher) {
    this.#origin = origin;
    this.#dialTarget = dialTarget;
    this.#headers = token === '' ? {} : { 'x-consul-token': token };
    this.#datacenter = datacenter;
    this.#dispatcher = dispatcher;
  }

  /** Builds a client from flags and environment; throws ApiError on an unusable address. */
  static create(settings: ClientSettings, env: Readonly<Record<string, string | undefined>>): ConsulClient {
    let address = settings.httpAddr || env['CONSUL_HTTP_ADDR'] || DEFAULT_ADDRESS;
    let scheme = /^(1|t|T|TRUE|true|True)$/.test(env['CONSUL_HTTP_SSL'] ?? '') ? 'https' : 'http';
    const token = settings.token || (env['CONSUL_HTTP_TOKEN'] ?? '');
    const separator = address.indexOf('://');
    if (separator >= 0) {
      scheme = address.slice(0, separator);
      address = address.slice(separator + 3);
    }
    if (scheme === 'unix') {
      const dispatcher = new Agent({ connect: { socketPath: address } });
      return new ConsulClient('http://localhost', `unix ${address}`, token, settings.datacenter, dispatcher);
    }
    if (scheme !== 'http' && scheme !== 'https') throw new ApiError(`Unknown protocol scheme: ${scheme}`);
    address = address.replace(/\/+$/, '');
    return new ConsulClient(`${scheme}://${address}`, `tcp ${address}`, token, settings.datacenter, new Agent());
  }

  /**
   * One call; `path` is unescaped (`/v1/kv/a b`) and escaped here as Go escapes a URL path.
   * `signal` aborts it (a blocking query on SIGINT).
   */
  async call(method: 'GET' | 'PUT' | 'DELETE', path: string, params: QueryParams = [], body?: Uint8Array | string, signal?: AbortSignal): Promise<HttpAnswer> {
    const all: QueryParams = this.#datacenter === '' ? params : [...params, ['dc', this.#datacenter]];
    const query = encodeQuery(all);
    const url = `${this.#origin}${goPathEscape(path)}${query === '' ? '' : `?${query}`}`;
    try {
      const response = await request(url, { method, headers: this.#headers, body: body ?? null, dispatcher: this.#dispatcher, signal: signal ?? null });
      const bytes = Buffer.from(await response.body.arrayBuffer());
      const index = response.headers['x-consul-index'];
      return { status: response.statusCode, body: bytes, index: typeof index === 'string' ? index : null };
    } catch (error) {
      throw new ApiError(`${goMethod(method)} ${JSON.stringify(url)}: ${this.#reason(error)}`, { cause: error });
    }
  }

  /** Closes the connections. */
  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  #reason(error: unknown): string {
    const code = errorCode(error);
    if (code === 'ECONNREFUSED') return `dial ${this.#dialTarget}: connect: connection refused`;
    if (code === 'ENOENT') return `dial ${this.#dialTarget}: connect: no such file or directory`;
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `dial ${this.#dialTarget}: lookup: no such host`;
    return error instanceof Error ? error.message : String(error);
  }
}

/** The Go api's check of a reply: anything but `expected` is `Unexpected response code: N (body)`. */
export function requireStatus(answer: HttpAnswer, ...expected: number[]): HttpAnswer {
  if (expected.length === 0 ? answer.status === 200 : expected.includes(answer.status)) return answer;
  throw new ApiError(`Unexpected response code: ${answer.status} (${answer.body.toString('utf8').trim()})`);
}

/** A 200 answer's JSON body. */
export function jsonOf(answer: HttpAnswer): unknown {
  const ok = requireStatus(answer);
  try {
    return JSON.parse(ok.body.toString('utf8')) as unknown;
  } catch (error) {
    throw new ApiError(`invalid JSON in the response: ${(error as Error).message}`, { cause: error });
  }
}
