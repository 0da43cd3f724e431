/**
 * `/v1/txn` KV semantics (Consul agent/consul/txn_endpoint.go preCheck + state/txn.go txnKVS).
 *
 * 1. Pre-check every op, as Consul's leader does before proposing: an empty key (except for
 *    delete-tree) is `Must provide key`; a `lock` on a key under lock-delay fails. If any op fails
 *    here, only these errors are reported and nothing is evaluated.
 * 2. Evaluate every op in order, each seeing the writes of the ops before it; a failing op writes
 *    nothing and evaluation goes on, so every failure is reported with its OpIndex.
 * 3. All or nothing: the writes happen inside a KvStore atomic group (an undo journal, i.e. the
 *    store itself is the working view) that is committed only when no op failed, and rolled back
 *    otherwise; watchers are notified only on commit.
 *
 * The op-count and size limits (TXN_OPS_COUNT_MAX, TXN_BODY_BYTES_MAX) are checked by HTTP.
 */
import { assert, assertNever } from '../lib/assert.js';
import type { TxnKvOp } from './commands.js';
import { goQuote } from './go-quote.js';
import type { KvEntry } from './kv.js';
import { ChangeSet } from './write-context.js';
import type { StateStores, WriteContext } from './write-context.js';

/** The HTTP layer's txn limits (413 beyond them), re-exported where txn callers look. */
export { TXN_BODY_BYTES_MAX, TXN_OPS_COUNT_MAX } from './limits.js';

/** The KV verbs Consul 1.16 knows (`get-or-empty` is not supported: an unknown verb here). */
export const TXN_KV_VERBS = [
  'set', 'cas', 'lock', 'unlock', 'get', 'get-tree', 'check-index', 'check-session',
  'check-not-exists', 'delete', 'delete-tree', 'delete-cas',
] as const;

/** A known KV verb. */
export type TxnKvVerb = (typeof TXN_KV_VERBS)[number];

/** Consul's `isWrite`: a txn with one of these goes through Raft; any other is read-only. */
const WRITE_VERBS: ReadonlySet<string> = new Set<TxnKvVerb>(['set', 'cas', 'lock', 'unlock', 'delete', 'delete-tree', 'delete-cas']);

/** One entry of `Results`: `{"KV": entry}` (Value null except for get/get-tree). */
export interface TxnResult {
  readonly KV: KvEntry;
}

/** One entry of `Errors`: `{"OpIndex": i, "What": text}`. */
export interface TxnError {
  readonly OpIndex: number;
  readonly What: string;
}

/** Success: results (possibly empty) and errors null; failure (HTTP 409): results null. */
export interface TxnOutcome {
  readonly results: readonly TxnResult[] | null;
  readonly errors: readonly TxnError[] | null;
}

/** True when `verb` is a verb Consul knows. */
export function isTxnKvVerb(verb: string): verb is TxnKvVerb {
  return (TXN_KV_VERBS as readonly string[]).includes(verb);
}

/**
 * True when the ops must be proposed through Raft (Consul's `isWrite` over the ops); otherwise
 * the HTTP layer answers with `readTxn` on the read path (stale/consistent honoured). Unknown
 * verbs count as reads, as in Consul, and fail there with `unknown KV verb`.
 */
export function txnHasWrites(ops: readonly Pick<TxnKvOp, 'verb'>[]): boolean {
  return ops.some((op) => WRITE_VERBS.has(op.verb));
}

/** Applies a write txn atomically at `context.index`. */
export function applyTxn(stores: StateStores, context: WriteContext, ops: readonly TxnKvOp[], checkedIndex?: number): TxnOutcome {
  const preErrors = precheck(stores, ops, context.nowMs, checkedIndex);
  if (preErrors.length > 0) return { results: null, errors: preErrors };
  const scratch: WriteContext = { index: context.index, nowMs: context.nowMs, changes: new ChangeSet() };
  stores.kv.beginAtomic();
  const outcome = evaluateAll(stores, scratch, ops);
  if (outcome.errors !== null) {
    stores.kv.rollbackAtomic();
  } else {
    stores.kv.commitAtomic();
    context.changes.absorb(scratch.changes);
  }
  return outcome;
}

/** Evaluates a read-only txn against the current state; writes nothing. */
export function readTxn(stores: StateStores, ops: readonly TxnKvOp[]): TxnOutcome {
  assert(!txnHasWrites(ops), 'a read-only txn has no write verbs (use txnHasWrites)');
  const preErrors = precheck(stores, ops, null);
  if (preErrors.length > 0) return { results: null, errors: preErrors };
  return evaluateAll(stores, null, ops);
}

/** `checkedIndex`: see LockCheckedIndex (commands.ts); without it the wall-clock deadline decides. */
function precheck(stores: StateStores, ops: readonly TxnKvOp[], nowMs: number | null, checkedIndex?: number): TxnError[] {
  const errors: TxnError[] = [];
  ops.forEach((op, OpIndex) => {
    if (op.key === '' && op.verb !== 'delete-tree') {
      errors.push({ OpIndex, What: 'Must provide key' });
    } else if (op.verb === 'lock' && nowMs !== null && (checkedIndex === undefined ? stores.kv.isLockDelayed(op.key, nowMs) : stores.kv.lockDelaySetAfter(op.key, checkedIndex))) {
      errors.push({ OpIndex, What: `failed to lock key ${goQuote(op.key)} due to lock delay` });
    }
  });
  return errors;
}

function evaluateAll(stores: StateStores, context: WriteContext | null, ops: readonly TxnKvOp[]): TxnOutcome {
  const results: TxnResult[] = [];
  const errors: TxnError[] = [];
  ops.forEach((op, OpIndex) => {
    const outcome = isTxnKvVerb(op.verb)
      ? evaluateOp(stores, context, op, op.verb)
      : { error: `unknown KV verb ${goQuote(op.verb)}` };
    if ('error' in outcome) errors.push({ OpIndex, What: outcome.error });
    else for (const entry of outcome.entries) results.push({ KV: entry });
  });
  return errors.length > 0 ? { results: null, errors } : { results, errors: null };
}

type OpOutcome = { readonly entries: readonly KvEntry[] } | { readonly error: string };

const NONE: OpOutcome = { entries: [] };

/** One op (txnKVS). Results of non-get verbs carry Value null (Consul clones and blanks it). */
function evaluateOp(stores: StateStores, context: WriteContext | null, op: TxnKvOp, verb: TxnKvVerb): OpOutcome {
  const { kv } = stores;
  const write = (): WriteContext => {
    assert(context !== null, `write verb ${verb} in a read-only txn`);
    return context;
  };
  switch (verb) {
    case 'set':
      return blanked(kv.set(write(), op.key, op.value, op.flags));
    case 'cas': {
      const entry = kv.setCas(write(), op.key, op.value, op.flags, op.index);
      return entry === null ? { error: `failed to set key ${goQuote(op.key)}, index is stale` } : blanked(entry);
    }
    case 'lock':
    case 'unlock':
      return evaluateLockOp(stores, write(), op, verb);
    case 'get': {
      const entry = kv.get(op.key);
      return entry === undefined ? { error: `key ${goQuote(op.key)} doesn't exist` } : { entries: [entry] };
    }
    case 'get-tree':
      return { entries: kv.list(op.key) };
    case 'check-index':
    case 'check-session':
    case 'check-not-exists':
      return evaluateCheckOp(stores, op, verb);
    case 'delete':
      kv.delete(write(), op.key);
      return NONE;
    case 'delete-tree':
      kv.deleteTree(write(), op.key);
      return NONE;
    case 'delete-cas':
      return kv.deleteCas(write(), op.key, op.index) ? NONE : { error: `failed to delete key ${goQuote(op.key)}, index is stale` };
    default:
      return assertNever(verb, 'txn verb');
  }
}

function evaluateLockOp(stores: StateStores, context: WriteContext, op: TxnKvOp, verb: 'lock' | 'unlock'): OpOutcome {
  const outcome = verb === 'lock'
    ? stores.kv.lock(context, op.key, op.value, op.flags, op.session, (id) => stores.sessions.get(id) !== undefined)
    : stores.kv.unlock(context, op.key, op.value, op.flags, op.session);
  switch (outcome.kind) {
    case 'ok':
      return blanked(outcome.entry);
    case 'error':
      return { error: outcome.message };
    case 'refused':
      return verb === 'lock'
        ? { error: `failed to lock key ${goQuote(op.key)}, lock is already held` }
        : { error: `failed to unlock key ${goQuote(op.key)}, lock isn't held, or is held by another session` };
    default:
      return assertNever(outcome, 'lock outcome');
  }
}

function evaluateCheckOp(stores: StateStores, op: TxnKvOp, verb: 'check-index' | 'check-session' | 'check-not-exists'): OpOutcome {
  const entry = stores.kv.get(op.key);
  if (verb === 'check-not-exists') return entry === undefined ? NONE : { error: `key ${goQuote(op.key)} exists` };
  if (verb === 'check-index') {
    if (entry === undefined) return { error: `failed to check index, key ${goQuote(op.key)} doesn't exist` };
    if (BigInt(entry.ModifyIndex) !== op.index) {
      return { error: `failed index check for key ${goQuote(op.key)}, current modify index ${entry.ModifyIndex} != ${op.index}` };
    }
    return blanked(entry);
  }
  if (entry === undefined) return { error: `failed to check session, key ${goQuote(op.key)} doesn't exist` };
  if (entry.Session !== op.session) {
    return { error: `failed session check for key ${goQuote(op.key)}, current session ${goQuote(entry.Session)} != ${goQuote(op.session)}` };
  }
  return blanked(entry);
}

/**
 * The entry with Value null. Written out field by field, not `{ ...entry, Value: null }`: V8's
 * optimized spread gives each clone a hidden class of its own (see KvStore.#upsert), one per op
 * of every applied txn.
 */
function blanked(entry: KvEntry): OpOutcome {
  const result: KvEntry = Object.freeze({
    Key: entry.Key,
    Value: null,
    Flags: entry.Flags,
    LockIndex: entry.LockIndex,
    Session: entry.Session,
    CreateIndex: entry.CreateIndex,
    ModifyIndex: entry.ModifyIndex,
  });
  return { entries: [result] };
}
