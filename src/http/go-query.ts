/**
 * A request's query string as Go's `url.ParseQuery` reads it: `&`-separated pairs, `+` is a
 * space, repeated keys keep every value, `Get` is the first. Consul's flags are presence-based
 * (`?recurse=false` still recurses), so `has()` is what most handlers ask.
 *
 * Parsed lazily: the hot path (GET/PUT of one key without parameters) never parses anything.
 * Installed as Fastify's `querystringParser`, so `request.query` is a GoQuery.
 */
import { goQueryEscape, percentDecode } from './url-codec.js';

/** The parsed query of one request. */
export class GoQuery {
  readonly #raw: string;
  #values: Map<string, string[]> | null = null;
  #malformed = false;

  /** `raw` is the text after `?` (possibly empty), still percent-encoded. */
  constructor(raw: string) {
    this.#raw = raw;
  }

  /**
   * True when Go's ParseQuery would return an error (a bad `%` escape, a `;` in a pair). Consul's
   * HTTP wrapper then answers 500 with an empty body before anything else.
   */
  get malformed(): boolean {
    this.#parse();
    return this.#malformed;
  }

  /** Whether the parameter is present, with any value (Consul's flag test). */
  has(name: string): boolean {
    return this.#parse().has(name);
  }

  /** The first value, or "" (Go's `Values.Get`). */
  get(name: string): string {
    return this.#parse().get(name)?.[0] ?? '';
  }

  /** Every value of a repeated parameter, in order ([] when absent): `?node-meta=a:1&node-meta=b:2`. */
  getAll(name: string): readonly string[] {
    return this.#parse().get(name) ?? [];
  }

  /** Go's `Values.Encode()`: keys sorted, every value, query-escaped (for `Conflicting flags:`). */
  encode(): string {
    const values = this.#parse();
    const keys = [...values.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const parts: string[] = [];
    for (const key of keys) {
      for (const value of values.get(key) ?? []) parts.push(`${goQueryEscape(key)}=${goQueryEscape(value)}`);
    }
    return parts.join('&');
  }

  #parse(): Map<string, string[]> {
    if (this.#values !== null) return this.#values;
    const values = new Map<string, string[]>();
    this.#values = values;
    if (this.#raw === '') return values;
    for (const pair of this.#raw.split('&')) {
      if (pair.includes(';')) {
        this.#malformed = true;
        continue;
      }
      if (pair === '') continue;
      const equals = pair.indexOf('=');
      const key = percentDecode(equals < 0 ? pair : pair.slice(0, equals), true, false);
      const value = percentDecode(equals < 0 ? '' : pair.slice(equals + 1), true, false);
      if (key === null || value === null) {
        this.#malformed = true;
        continue;
      }
      const list = values.get(key);
      if (list === undefined) values.set(key, [value]);
      else list.push(value);
    }
    return values;
  }
}

/** An empty query, shared by every request without one. */
export const EMPTY_QUERY = new GoQuery('');

/** Fastify's `querystringParser`: wraps the raw text; nothing is decoded until asked. */
export function parseGoQuery(raw: string): GoQuery {
  return raw === '' ? EMPTY_QUERY : new GoQuery(raw);
}
