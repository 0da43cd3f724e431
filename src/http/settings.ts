/**
 * What the HTTP API can be configured with, its defaults, and the checks of their relations
 * (hashicorp/raft's DefaultConfig + ValidateConfig pattern). The agent's config maps Consul's
 * names (`session_ttl_min`) onto these.
 */
import { ConfigError } from '../lib/errors.js';
import { KV_VALUE_BYTES_MAX, SESSION_TTL_MS_MAX, SESSION_TTL_MS_MIN_DEFAULT } from './limits.js';

/** HTTP API settings. */
export interface HttpSettings {
  /** Consul's `session_ttl_min`: the shortest session TTL accepted (libkv's tests use 1 s). */
  readonly sessionTtlMinMs: number;
  /**
   * Consul's `kv_max_value_size`, in bytes: a larger KV value (or txn op value) gets 413. At most
   * KV_VALUE_BYTES_MAX, which the state machine's command size is built around.
   */
  readonly kvMaxValueSize: number;
}

/** The defaults (Consul's). */
export const DEFAULT_HTTP_SETTINGS: HttpSettings = { sessionTtlMinMs: SESSION_TTL_MS_MIN_DEFAULT, kvMaxValueSize: KV_VALUE_BYTES_MAX };

/** Fills in defaults and checks the values; throws ConfigError. */
export function resolveHttpSettings(given: Partial<HttpSettings> = {}): HttpSettings {
  const settings: HttpSettings = { ...DEFAULT_HTTP_SETTINGS, ...given };
  const { sessionTtlMinMs, kvMaxValueSize } = settings;
  if (!Number.isSafeInteger(sessionTtlMinMs) || sessionTtlMinMs < 1 || sessionTtlMinMs > SESSION_TTL_MS_MAX) {
    throw new ConfigError(`session_ttl_min must be between 1ms and 24h, got ${sessionTtlMinMs}ms`);
  }
  if (!Number.isSafeInteger(kvMaxValueSize) || kvMaxValueSize < 1 || kvMaxValueSize > KV_VALUE_BYTES_MAX) {
    throw new ConfigError(`kv_max_value_size must be between 1 and ${KV_VALUE_BYTES_MAX} bytes, got ${kvMaxValueSize}`);
  }
  return settings;
}
