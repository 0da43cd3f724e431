/**
 * Reading back the registrations file the local state writes (local-state.ts): every field is
 * checked, since the file may be old, hand-edited or cut short; anything malformed makes the
 * whole file invalid (null), and the agent refuses to start rather than silently drop a service.
 */
import { HEALTH_STATUSES } from '../state/commands.js';
import type { HealthStatus, ServiceDefinition } from '../state/commands.js';
import { SERVICE_PORT_MAX } from '../state/limits.js';
import { CHECK_KINDS } from './check-types.js';
import type { CheckKind, CheckSpec } from './check-types.js';

/** The registrations of one agent. */
export interface PersistedState {
  readonly services: readonly ServiceDefinition[];
  readonly checks: readonly CheckSpec[];
}

/** Thrown inside the parser; turned into null at the top. */
class Invalid extends Error {}

type Obj = Record<string, unknown>;

function object(value: unknown): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Invalid();
  return value as Obj;
}

function text(value: unknown): string {
  if (typeof value !== 'string') throw new Invalid();
  return value;
}

function count(value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) throw new Invalid();
  return value;
}

function bool(value: unknown): boolean {
  if (typeof value !== 'boolean') throw new Invalid();
  return value;
}

function texts(value: unknown): string[] {
  if (!Array.isArray(value)) throw new Invalid();
  return value.map(text);
}

function textMap(value: unknown): Record<string, string> {
  const map: Record<string, string> = {};
  for (const [key, member] of Object.entries(object(value))) {
    Object.defineProperty(map, key, { value: text(member), enumerable: true, writable: true, configurable: true });
  }
  return map;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw new Invalid();
  return value as T;
}

function service(value: unknown): ServiceDefinition {
  const raw = object(value);
  const weights = object(raw['weights']);
  const serviceId = text(raw['serviceId']);
  const name = text(raw['service']);
  if (serviceId === '' || name === '') throw new Invalid();
  return {
    serviceId, service: name, tags: texts(raw['tags']), address: text(raw['address']), meta: textMap(raw['meta']),
    port: count(raw['port'], SERVICE_PORT_MAX), weights: { passing: count(weights['passing']), warning: count(weights['warning']) },
    enableTagOverride: bool(raw['enableTagOverride']),
  };
}

function header(value: unknown): Record<string, string[]> {
  const map: Record<string, string[]> = {};
  for (const [key, member] of Object.entries(object(value))) {
    Object.defineProperty(map, key, { value: texts(member), enumerable: true, writable: true, configurable: true });
  }
  return map;
}

function check(value: unknown): CheckSpec {
  const raw = object(value);
  const checkId = text(raw['checkId']);
  if (checkId === '') throw new Invalid();
  const kind: CheckKind = oneOf(raw['kind'], CHECK_KINDS);
  const initialStatus: HealthStatus = oneOf(raw['initialStatus'], HEALTH_STATUSES);
  const args = texts(raw['args']);
  if (kind === 'script' && args.length === 0) throw new Invalid();
  return {
    checkId, name: text(raw['name']), notes: text(raw['notes']), serviceId: text(raw['serviceId']), initialStatus, kind,
    http: text(raw['http']), method: text(raw['method']), header: header(raw['header']), body: text(raw['body']),
    tlsSkipVerify: bool(raw['tlsSkipVerify']), tcp: text(raw['tcp']), args, intervalMs: count(raw['intervalMs']),
    timeoutMs: count(raw['timeoutMs']), ttlMs: count(raw['ttlMs']),
    deregisterCriticalServiceAfterMs: count(raw['deregisterCriticalServiceAfterMs']), outputMaxBytes: count(raw['outputMaxBytes']),
  };
}

/** The registrations in `text` (the file's content), or null when it is not a valid file. */
export function parsePersistedState(content: string): PersistedState | null {
  try {
    const raw = object(JSON.parse(content) as unknown);
    if (raw['version'] !== 1 || !Array.isArray(raw['services']) || !Array.isArray(raw['checks'])) return null;
    const services = raw['services'].map(service);
    const checks = raw['checks'].map(check);
    if (new Set(services.map((s) => s.serviceId)).size !== services.length) return null;
    if (new Set(checks.map((c) => c.checkId)).size !== checks.length) return null;
    return { services, checks };
  } catch (error) {
    if (error instanceof Invalid || error instanceof SyntaxError) return null;
    throw error;
  }
}
