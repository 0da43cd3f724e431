/**
 * Every bound of the HTTP layer, named, with its reason. The state machine's own limits
 * (value size, txn ops, lock-delay cap) live in src/state/limits.ts and are re-used from there.
 */
import { assert } from '../lib/assert.js';
import { COMMAND_BYTES_MAX, KV_VALUE_BYTES_MAX, TXN_BODY_BYTES_MAX } from '../state/limits.js';

/**
 * A request line longer than this gets 414. Node's HTTP parser already refuses headers over
 * 16 KiB on a socket (431); this bound holds for `inject()` and a raised header limit too.
 */
export const URL_BYTES_MAX = 32 * 1024;

/**
 * A KV key longer than this (UTF-8 bytes) gets 400. Consul has no key limit of its own, but its
 * keys arrive in a URL, which Node caps at 16 KiB; txn keys are held to the same bound so every
 * stored key could also be read back over HTTP.
 */
export const KV_KEY_BYTES_MAX = 16 * 1024;

/**
 * JSON bodies of endpoints other than `/v1/txn` (session create, ...): a session body is a few
 * hundred bytes; anything near this is not a session.
 */
export const JSON_BODY_BYTES_MAX = 64 * 1024;

/**
 * Nesting depth of a JSON body. The reader is recursive: this keeps a 512 KiB body of `[[[[…`
 * from overflowing the stack. No Consul body nests more than 4 levels.
 */
export const JSON_NESTING_DEPTH_MAX = 64;

/**
 * Checks in one `/v1/catalog/register` (Check plus Checks). Consul has no such bound; a node
 * with more checks is a bug or an attack, and this keeps every registration's command well
 * under COMMAND_BYTES_MAX (each check costs ~130 bytes of field names besides its JSON text).
 */
export const CATALOG_CHECKS_COUNT_MAX = 1024;

/** Consul's `session_ttl_min` default; configurable (libkv's tests run with 1 s). */
export const SESSION_TTL_MS_MIN_DEFAULT = 10_000;

/** Consul's `structs.SessionTTLMax`: 24 h. */
export const SESSION_TTL_MS_MAX = 24 * 60 * 60_000;

/** Consul's default lock-delay for a new session. */
export const SESSION_LOCK_DELAY_MS_DEFAULT = 15_000;

/** Consul's `lockDelayMinThreshold`: a LockDelay below 1000 (ns) is taken as seconds. */
export const LOCK_DELAY_SECONDS_THRESHOLD_NS = 1000;

/** A `?wait=`/`?max_stale=`/TTL text longer than this is not a duration (Go would overflow anyway). */
export { DURATION_TEXT_LENGTH_MAX } from '../lib/go-duration.js';

/** The documentation links Consul puts in its 413 texts. */
export const KV_MAX_VALUE_SIZE_DOC = 'https://www.consul.io/docs/agent/config/config-files#kv_max_value_size';
/** See KV_MAX_VALUE_SIZE_DOC. */
export const TXN_MAX_REQ_LEN_DOC = 'https://www.consul.io/docs/agent/config/config-files#txn_max_req_len';

export { KV_VALUE_BYTES_MAX, TXN_BODY_BYTES_MAX };

assert(KV_KEY_BYTES_MAX < URL_BYTES_MAX, 'a maximal key fits a URL');
assert(JSON_BODY_BYTES_MAX <= TXN_BODY_BYTES_MAX, 'no JSON body is larger than a txn');
assert(SESSION_TTL_MS_MIN_DEFAULT < SESSION_TTL_MS_MAX, 'the TTL range is not empty');
assert(CATALOG_CHECKS_COUNT_MAX * 256 + JSON_BODY_BYTES_MAX * 3 < COMMAND_BYTES_MAX, 'a catalog registration always fits a command');
