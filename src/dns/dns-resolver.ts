/**
 * Answers one DNS question from the catalog (consul-api.md §14; Consul's agent/dns.go), through
 * the agent's read path (`lookup` runs AgentApi.query in default consistency; a client agent
 * forwards it):
 * - `<service>[.<tag>].service[.<dc>].consul` and RFC 2782 `_<service>._<tag|tcp>.service...`:
 *   A/AAAA records of the instances whose checks all pass (serfHealth included), and SRV records
 *   (priority 1, weight from Weights, the service port, target `<node>.node.<dc>.consul.` or
 *   `<hex ip>.addr.<dc>.consul.` when the service has its own address) with the target's address
 *   as an additional record; instances shuffled, TTL 0;
 * - `<node>.node[.<dc>].consul`: the node's address;
 * - `<hex ip>.addr[.<dc>].consul`: that address (SRV targets);
 * - anything unknown under `consul.`: NXDOMAIN with the SOA; a known name without records of the
 *   asked type: NOERROR, no answer, the SOA (NODATA). Names outside `consul.`: REFUSED (no recursor).
 */
import { isIP } from 'node:net';
import type { Answer, Question, RecordType } from 'dns-packet';
import type { Query, QueryValue, ServiceHealthRow } from '../agent/queries.js';
import { assertNever } from '../lib/assert.js';

/** The DNS domain Conclave answers for (Consul's default `domain`). */
export const DNS_DOMAIN = 'consul';

/** Response codes (RFC 1035 §4.1.1) this server sends. */
export const RCODES = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** A response code's name. */
export type Rcode = keyof typeof RCODES;

/** What to answer. */
export interface DnsResult {
  readonly rcode: Rcode;
  readonly answers: Answer[];
  readonly authorities: Answer[];
  readonly additionals: Answer[];
  /** More instances than `answersMax`: the client should retry over TCP. */
  readonly truncated: boolean;
}

/** What the resolver needs. */
export interface ResolverDeps {
  /** Runs a catalog read (throws on no leader and such: the server answers SERVFAIL). */
  lookup<Q extends Query>(query: Q): Promise<QueryValue<Q>>;
  readonly datacenter: string;
  /** Instances per answer (3 over UDP). */
  readonly answersMax: number;
  /** Fisher–Yates with the given random source. */
  readonly random: () => number;
  /** The SOA serial (Consul: the current Unix time). */
  readonly serial: number;
}

/** A name under `consul.`, split: the kind of lookup and its labels. */
type ParsedName =
  | { readonly kind: 'apex' }
  | { readonly kind: 'service'; readonly service: string; readonly tag: string | null }
  | { readonly kind: 'node'; readonly node: string }
  | { readonly kind: 'addr'; readonly address: string }
  | { readonly kind: 'unknown' };

/** The SOA of our zone, sent in the authority section of NXDOMAIN and NODATA answers. */
export function soaRecord(serial: number): Answer {
  return {
    type: 'SOA', name: DNS_DOMAIN, ttl: 0, class: 'IN',
    data: { mname: `ns.${DNS_DOMAIN}`, rname: `hostmaster.${DNS_DOMAIN}`, serial: serial >>> 0, refresh: 3600, retry: 600, expire: 86_400, minimum: 0 },
  };
}

/** The labels of `name` below `consul.` (lower-cased only for the keywords), or null outside it. */
function labelsUnderDomain(name: string): string[] | null {
  const labels = name.replace(/\.$/, '').split('.');
  if (labels.length === 0 || labels.at(-1)?.toLowerCase() !== DNS_DOMAIN) return null;
  return labels.slice(0, -1).filter((label) => label !== '');
}

/** `<hex>` of an `.addr.` name: 8 hex digits for IPv4, 32 for IPv6. */
function addressOfHex(hex: string): string | null {
  if (/^[0-9a-f]{8}$/i.test(hex)) return [0, 2, 4, 6].map((at) => Number.parseInt(hex.slice(at, at + 2), 16)).join('.');
  if (/^[0-9a-f]{32}$/i.test(hex)) return (hex.match(/.{4}/g) ?? []).join(':').toLowerCase();
  return null;
}

/** `<ip>` → the `<hex>` label of its `.addr.` name. */
function hexOfAddress(address: string): string {
  if (isIP(address) === 4) return address.split('.').map((octet) => Number(octet).toString(16).padStart(2, '0')).join('');
  const groups = address.split('::');
  const head = (groups[0] ?? '').split(':').filter((g) => g !== '');
  const tail = groups.length > 1 ? (groups[1] ?? '').split(':').filter((g) => g !== '') : [];
  const full = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  return full.map((group) => group.padStart(4, '0')).join('');
}

function parseName(labels: readonly string[], datacenter: string): ParsedName {
  if (labels.length === 0) return { kind: 'apex' };
  const isKind = (label: string | undefined): boolean => ['service', 'node', 'addr'].includes(label?.toLowerCase() ?? '');
  let at = labels.length - 1;
  if (!isKind(labels[at])) {
    // `<...>.<kind>.<dc>`: the datacenter must be ours (one datacenter per cluster).
    if (!isKind(labels[at - 1]) || labels[at]?.toLowerCase() !== datacenter.toLowerCase()) return { kind: 'unknown' };
    at--;
  }
  const kind = (labels[at] as string).toLowerCase();
  const parts = labels.slice(0, at);
  if (parts.length === 0) return { kind: 'unknown' };
  if (kind === 'node') return { kind: 'node', node: parts.join('.') };
  if (kind === 'addr') {
    const address = parts.length === 1 ? addressOfHex(parts[0] as string) : null;
    return address === null ? { kind: 'unknown' } : { kind: 'addr', address };
  }
  if (parts.length === 1) return { kind: 'service', service: parts[0] as string, tag: null };
  if (parts.length !== 2) return { kind: 'unknown' };
  const [first, second] = parts as [string, string];
  if (first.startsWith('_') && second.startsWith('_')) {
    // RFC 2782: `_service._protocol`; `_tcp` means no tag (Consul's rule).
    const tag = second.slice(1);
    return { kind: 'service', service: first.slice(1), tag: tag.toLowerCase() === 'tcp' ? null : tag };
  }
  return { kind: 'service', service: second, tag: first };
}

/** A question's type; `ANY` (255) is decoded by dns-packet but missing from its RecordType. */
type QuestionType = RecordType | 'ANY';

/** An address record of `name` for `address`, if it fits `type` (A for IPv4, AAAA for IPv6). */
function addressRecord(name: string, address: string, type: QuestionType): Answer | null {
  const family = isIP(address);
  if (family === 4 && (type === 'A' || type === 'ANY')) return { type: 'A', name, ttl: 0, class: 'IN', data: address };
  if (family === 6 && (type === 'AAAA' || type === 'ANY')) return { type: 'AAAA', name, ttl: 0, class: 'IN', data: address };
  return null;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

const NOTHING: Answer[] = [];

function result(rcode: Rcode, answers: Answer[], deps: ResolverDeps, extra: Partial<Pick<DnsResult, 'additionals' | 'truncated'>> = {}): DnsResult {
  // NXDOMAIN and NODATA carry the SOA so resolvers can cache the negative answer (RFC 2308).
  const authorities = answers.length === 0 && (rcode === 'NOERROR' || rcode === 'NXDOMAIN') ? [soaRecord(deps.serial)] : NOTHING;
  return { rcode, answers, authorities, additionals: extra.additionals ?? [], truncated: extra.truncated ?? false };
}

function serviceRecords(question: Question, type: QuestionType, rows: ServiceHealthRow[], deps: ResolverDeps): DnsResult {
  const chosen = shuffle([...rows], deps.random);
  const truncated = chosen.length > deps.answersMax;
  const answers: Answer[] = [];
  const additionals: Answer[] = [];
  for (const { node, service } of chosen.slice(0, deps.answersMax)) {
    const address = service.Address !== '' ? service.Address : node.Address;
    if (type === 'SRV') {
      const ownAddress = service.Address !== '' && service.Address !== node.Address && isIP(service.Address) !== 0;
      const target = ownAddress ? `${hexOfAddress(service.Address)}.addr.${deps.datacenter}.${DNS_DOMAIN}` : `${node.Node}.node.${deps.datacenter}.${DNS_DOMAIN}`;
      answers.push({ type: 'SRV', name: question.name, ttl: 0, class: 'IN', data: { priority: 1, weight: service.Weights.Passing, port: service.Port, target } });
      const extra = addressRecord(target, address, 'ANY');
      if (extra !== null) additionals.push(extra);
      continue;
    }
    const record = addressRecord(question.name, address, type);
    if (record !== null) answers.push(record);
  }
  return result('NOERROR', answers, deps, { additionals, truncated });
}

/** Answers `question`; lookups that throw propagate (the server answers SERVFAIL). */
export async function resolveQuestion(question: Question, deps: ResolverDeps): Promise<DnsResult> {
  const labels = labelsUnderDomain(question.name);
  if (labels === null) return result('REFUSED', NOTHING, deps);
  const parsed = parseName(labels, deps.datacenter);
  const type = question.type as QuestionType;
  switch (parsed.kind) {
    case 'apex': {
      const soa = type === 'SOA' || type === 'ANY' ? [{ ...soaRecord(deps.serial), name: question.name }] : [];
      return result('NOERROR', soa, deps);
    }
    case 'unknown':
      return result('NXDOMAIN', NOTHING, deps);
    case 'addr': {
      const record = addressRecord(question.name, parsed.address, type);
      return result('NOERROR', record === null ? [] : [record], deps);
    }
    case 'node': {
      const found = await deps.lookup({ kind: 'catalog-node', node: parsed.node });
      if (found === null) return result('NXDOMAIN', NOTHING, deps);
      const record = addressRecord(question.name, found.node.Address, type);
      return result('NOERROR', record === null ? [] : [record], deps);
    }
    case 'service': {
      const rows = await deps.lookup({ kind: 'service-instances', service: parsed.service, tags: parsed.tag === null ? [] : [parsed.tag], passing: true });
      // Consul: no healthy instance is "no such name".
      if (rows.length === 0) return result('NXDOMAIN', NOTHING, deps);
      return serviceRecords(question, type, rows, deps);
    }
    default:
      return assertNever(parsed, 'parsed DNS name');
  }
}
