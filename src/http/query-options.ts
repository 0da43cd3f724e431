/**
 * Consul's common query parameters (consul-api.md §1, agent/http.go `parse`): consistency
 * modes, `?wait=` and `?index=` for blocking queries, the datacenter, and the uint64 parameters of
 * KV writes, each with Consul's exact error text and in Consul's order:
 * `Invalid max_stale value "x"` → `Cannot specify ?stale with ?consistent, conflicting semantics.`
 * → `Invalid wait time` → `Invalid index` (all 400). Tokens are accepted and ignored (ACLs off).
 */
import type { AgentInfo, Consistency, QueryOptions } from '../agent/agent-api.js';
import { QUERY_WAIT_MS_DEFAULT, QUERY_WAIT_MS_MAX } from '../agent/queries.js';
import { BadRequestError, InternalError } from '../lib/errors.js';
import { goQuote } from '../state/go-quote.js';
import { UINT64_MAX } from '../state/limits.js';
import { parseGoDuration } from './go-duration.js';
import type { GoQuery } from './go-query.js';

/** The parsed common options of a read. */
export interface ParsedQueryOptions {
  readonly consistency: Consistency;
  /** `?index=`, clamped to a safe integer (a larger index is in the future: it waits out the timeout). */
  readonly minIndex: number;
  /** `?wait=`, defaulted (5 min for missing, zero or negative) and clamped (10 min). */
  readonly waitMs: number;
  /** `?max_stale=` when positive; null otherwise. */
  readonly maxStaleMs: number | null;
}

/** Options of a request without parameters: the hot path allocates nothing. */
const DEFAULT_OPTIONS: ParsedQueryOptions = { consistency: 'default', minIndex: 0, waitMs: QUERY_WAIT_MS_DEFAULT, maxStaleMs: null };

/** Milliseconds of a positive duration in ns, rounded up so `500us` stays a wait. */
function positiveMs(ns: bigint): number {
  const ms = (ns + 999_999n) / 1_000_000n;
  return ms > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(ms);
}

/** Parses the consistency, wait and index parameters; throws BadRequestError with Consul's text. */
export function parseQueryOptions(query: GoQuery): ParsedQueryOptions {
  const consistentAsked = query.has('consistent');
  let staleAsked = query.has('stale');
  let maxStaleMs: number | null = null;
  const maxStale = query.get('max_stale');
  if (maxStale !== '') {
    const parsed = parseGoDuration(maxStale);
    if (!parsed.ok) throw new BadRequestError(`Invalid max_stale value ${goQuote(maxStale)}`);
    if (parsed.ns > 0n) {
      staleAsked = true;
      maxStaleMs = positiveMs(parsed.ns);
    }
  }
  if (staleAsked && consistentAsked) {
    throw new BadRequestError('Cannot specify ?stale with ?consistent, conflicting semantics.');
  }
  const waitMs = parseWaitMs(query.get('wait'));
  const minIndex = parseIndex(query.get('index'));
  const consistency: Consistency = consistentAsked ? 'consistent' : staleAsked ? 'stale' : 'default';
  if (consistency === 'default' && minIndex === 0 && waitMs === QUERY_WAIT_MS_DEFAULT) return DEFAULT_OPTIONS;
  return { consistency, minIndex, waitMs, maxStaleMs };
}

function parseWaitMs(wait: string): number {
  if (wait === '') return QUERY_WAIT_MS_DEFAULT;
  const parsed = parseGoDuration(wait);
  if (!parsed.ok) throw new BadRequestError('Invalid wait time');
  if (parsed.ns <= 0n) return QUERY_WAIT_MS_DEFAULT;
  return Math.min(positiveMs(parsed.ns), QUERY_WAIT_MS_MAX);
}

function parseIndex(index: string): number {
  if (index === '') return 0;
  const parsed = parseUint64(index);
  if (parsed === null) throw new BadRequestError('Invalid index');
  return parsed > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(parsed);
}

/** Go's `strconv.ParseUint(text, 10, 64)`, or null (bad syntax or out of range). */
export function parseUint64(text: string): bigint | null {
  if (!/^\d+$/.test(text)) return null;
  const value = BigInt(text);
  return value <= UINT64_MAX ? value : null;
}

/**
 * A uint64 KV parameter (`flags`, `cas`): Consul returns the strconv error as a 500
 * (`strconv.ParseUint: parsing "x": invalid syntax`).
 */
export function uint64Param(query: GoQuery, name: string): bigint {
  const text = query.get(name);
  const value = parseUint64(text);
  if (value !== null) return value;
  const reason = /^\d+$/.test(text) ? 'value out of range' : 'invalid syntax';
  throw new InternalError(`strconv.ParseUint: parsing ${goQuote(text)}: ${reason}`);
}

/**
 * The datacenter a request names (`?datacenter=` wins over `?dc=`); only the local one is
 * reachable: anything else is Consul's `500 No path to datacenter`.
 */
export function checkDatacenter(query: GoQuery, info: AgentInfo): void {
  const named = query.get('datacenter') || query.get('dc');
  if (named !== '' && named !== info.datacenter) throw new InternalError('No path to datacenter');
}

/** True when the request names a datacenter other than ours (session create's cross-DC rule). */
export function namesOtherDatacenter(query: GoQuery, info: AgentInfo): boolean {
  const named = query.get('datacenter') || query.get('dc');
  return named !== '' && named !== info.datacenter;
}

/**
 * `?filter=` needs bexpr, which we do not have: endpoints where Consul filters refuse it rather
 * than silently return unfiltered data (consul-api.md §1).
 */
export function rejectFilter(query: GoQuery): void {
  if (query.get('filter') !== '') throw new BadRequestError('Filtering (?filter=) is not supported by this agent');
}

/** The AgentApi options of a read, with the signal that ends its wait on disconnect. */
export function toQueryOptions(parsed: ParsedQueryOptions, signal: AbortSignal): QueryOptions {
  return { ...parsed, signal };
}

/** Go's `strconv.ParseBool`, or null for anything else. */
export function parseGoBool(text: string): boolean | null {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return null;
}

/**
 * Consul's getBoolQueryParam: absent is false, present without a value is true, otherwise Go's
 * ParseBool; null when the value does not parse (the caller answers its own 400).
 */
export function boolQueryParam(query: GoQuery, name: string): boolean | null {
  if (!query.has(name)) return false;
  const text = query.get(name);
  return text === '' ? true : parseGoBool(text);
}
