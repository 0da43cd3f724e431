/**
 * Sequential specifications for the linearizability checker (porcupine.ts):
 * - `registerModel`: one read/write register;
 * - `casRegisterModel`: the Jepsen etcd register with read/write/cas (jepsen-etcd vectors);
 * - `kvModel`: Porcupine's get/put/append key-value store (kv vectors);
 * - `consulKvModel`: Conclave's KV API, checked per key: values and ModifyIndex
 *   (shared/consul-api.md §4), fed straight from the fault-injection harness's HTTP results.
 *
 * Unknown outcomes. An operation whose effect is unknown (timeout, crash) must return at
 * +Infinity. Its step then always succeeds and applies the effect when it can: the search may
 * place it anywhere after its call, and placing it last stands for "it never happened", so both
 * cases are covered by one deterministic step (Porcupine's etcd model does the same). The
 * partition functions assert this, because a finite return would silently drop "never happened".
 * Unknown reads may return at any time: they accept every state and change none.
 */
import { AssertionError, assert, assertNever } from '../../src/lib/assert.js';
import { hashNumber, hashString } from './porcupine.js';
import type { Model, Operation, StepResult } from './porcupine.js';

/** Groups a history by key, keeping history order inside each group (P-compositionality). */
export function partitionByKey<I, O>(
  history: readonly Operation<I, O>[],
  keyOf: (input: I) => string,
): Operation<I, O>[][] {
  const byKey = new Map<string, Operation<I, O>[]>();
  for (const operation of history) {
    const key = keyOf(operation.input);
    const group = byKey.get(key);
    if (group === undefined) byKey.set(key, [operation]);
    else group.push(operation);
  }
  return [...byKey.values()];
}

/**
 * Asserts that an operation with an unknown effect stays open to the end of the history
 * (returnTime +Infinity); see the module comment for why a finite return would be wrong.
 */
function assertUnknownWriteOpen(operation: Operation<unknown, unknown>, isRead: boolean): void {
  if (isRead) return;
  assert(
    operation.returnTime === Number.POSITIVE_INFINITY,
    'a write with an unknown outcome must return at +Infinity',
  );
}

/**
 * True when every value some read returned was written by an operation in `operations` (values
 * are compared with ===). `readValue` gives a read's value, or undefined when there is nothing
 * to explain; `writtenValue` the value an operation may have written, or undefined.
 */
function readsHaveWriters<I, O, V>(
  operations: readonly Operation<I, O>[],
  readValue: (operation: Operation<I, O>) => V | undefined,
  writtenValue: (operation: Operation<I, O>) => V | undefined,
): boolean {
  const written = new Set<V>();
  for (const operation of operations) {
    const value = writtenValue(operation);
    if (value !== undefined) written.add(value);
  }
  return operations.every((operation) => {
    const value = readValue(operation);
    return value === undefined || written.has(value);
  });
}

function formatValue(value: string | number | null): string {
  return value === null ? 'nil' : typeof value === 'string' ? JSON.stringify(value) : String(value);
}

// ---------------------------------------------------------------------------------------------
// (a) A read/write register.

/** A register value; null means never written. */
export type RegisterValue = string | number | null;
/** A register call. */
export type RegisterInput =
  | { readonly f: 'read' }
  | { readonly f: 'write'; readonly value: RegisterValue };
/** A register reply: a read's value, a write's acknowledgement, or no reply at all. */
export type RegisterOutput =
  | { readonly type: 'read'; readonly value: RegisterValue }
  | { readonly type: 'written' }
  | { readonly type: 'unknown' };

function registerStep(
  state: RegisterValue,
  input: RegisterInput,
  output: RegisterOutput,
): StepResult<RegisterValue> {
  if (output.type === 'unknown') return [true, input.f === 'write' ? input.value : state];
  switch (input.f) {
    case 'read':
      assert(output.type === 'read', 'a read replies with a value');
      return [output.value === state, state];
    case 'write':
      assert(output.type === 'written', 'a write replies with an acknowledgement');
      return [true, input.value];
    default:
      return assertNever(input, 'register input');
  }
}

function hashRegisterValue(value: RegisterValue): number {
  if (value === null) return 0;
  return typeof value === 'string' ? hashString(value) : hashNumber(value, 0x1234567);
}

/** One read/write register starting as null; every read must return the latest write. */
export const registerModel: Model<RegisterValue, RegisterInput, RegisterOutput> = {
  name: 'register',
  init: () => null,
  step: registerStep,
  equal: (a, b) => a === b,
  hash: hashRegisterValue,
  partition(history) {
    for (const op of history) {
      if (op.output.type === 'unknown') assertUnknownWriteOpen(op, op.input.f === 'read');
    }
    return [history.slice()];
  },
  isSelfContained: (operations) => readsHaveWriters(
    operations,
    ({ output }) => (output.type === 'read' && output.value !== null ? output.value : undefined),
    ({ input }) => (input.f === 'write' ? input.value : undefined),
  ),
  describeOperation(input, output) {
    const call = input.f === 'read' ? 'read' : `write ${formatValue(input.value)}`;
    if (output.type === 'unknown') return `${call} -> ?`;
    return output.type === 'read' ? `${call} -> ${formatValue(output.value)}` : `${call} -> ok`;
  },
  describeState: formatValue,
};

// ---------------------------------------------------------------------------------------------
// (b) The Jepsen etcd CAS register (shared/linearizability-vectors/README.md).

/** A CAS register call, as in Jepsen's etcd logs. */
export type CasRegisterInput =
  | { readonly f: 'read' }
  | { readonly f: 'write'; readonly value: number }
  | { readonly f: 'cas'; readonly expected: number; readonly value: number };
/**
 * A CAS register reply: 'read' carries the value (null: absent); 'ok' is a done write or a cas
 * that succeeded; 'fail' is a call that definitely had no effect (a cas whose comparison
 * failed); 'unknown' is no reply (Jepsen's :info, a timed-out read).
 */
export type CasRegisterOutput =
  | { readonly type: 'read'; readonly value: number | null }
  | { readonly type: 'ok' }
  | { readonly type: 'fail' }
  | { readonly type: 'unknown' };

function casRegisterStep(
  state: number | null,
  input: CasRegisterInput,
  output: CasRegisterOutput,
): StepResult<number | null> {
  switch (input.f) {
    case 'read':
      if (output.type !== 'read') return [true, state]; // no value came back: nothing to check
      return [output.value === state, state];
    case 'write':
      assert(output.type !== 'read');
      return output.type === 'fail' ? [true, state] : [true, input.value];
    case 'cas': {
      assert(output.type !== 'read');
      const matches = state === input.expected;
      if (output.type === 'unknown') return [true, matches ? input.value : state];
      if (output.type === 'fail') return [!matches, state];
      return [matches, input.value];
    }
    default:
      return assertNever(input, 'cas register input');
  }
}

function describeCasRegisterOperation(input: CasRegisterInput, output: CasRegisterOutput): string {
  const call =
    input.f === 'read' ? 'read'
    : input.f === 'write' ? `write ${input.value}`
    : `cas ${input.expected}->${input.value}`;
  if (output.type === 'read') return `${call} -> ${formatValue(output.value)}`;
  return `${call} -> ${output.type === 'unknown' ? '?' : output.type}`;
}

/**
 * Jepsen's etcd register: starts absent (null); a read returns the state; write sets it;
 * cas(A, B) succeeds iff the state is A and then sets B. Unknown results may go either way.
 */
export const casRegisterModel: Model<number | null, CasRegisterInput, CasRegisterOutput> = {
  name: 'cas-register',
  init: () => null,
  step: casRegisterStep,
  equal: (a, b) => a === b,
  hash: (state) => (state === null ? 0 : hashNumber(state, 0x1234567)),
  partition(history) {
    for (const op of history) {
      if (op.output.type === 'unknown') assertUnknownWriteOpen(op, op.input.f === 'read');
    }
    return [history.slice()];
  },
  isSelfContained: (operations) => readsHaveWriters(
    operations,
    ({ output }) => (output.type === 'read' && output.value !== null ? output.value : undefined),
    ({ input, output }) => (input.f !== 'read' && output.type !== 'fail' ? input.value : undefined),
  ),
  describeOperation: describeCasRegisterOperation,
  describeState: formatValue,
};

// ---------------------------------------------------------------------------------------------
// (c) Porcupine's key-value store with get/put/append (kv vectors).

/** A kv call. */
export type KvInput =
  | { readonly f: 'get'; readonly key: string }
  | { readonly f: 'put'; readonly key: string; readonly value: string }
  | { readonly f: 'append'; readonly key: string; readonly value: string };
/** A kv reply: a get's value, a put/append acknowledgement, or no reply. */
export type KvOutput =
  | { readonly type: 'get'; readonly value: string }
  | { readonly type: 'ok' }
  | { readonly type: 'unknown' };

function kvStep(state: string, input: KvInput, output: KvOutput): StepResult<string> {
  switch (input.f) {
    case 'get':
      if (output.type === 'unknown') return [true, state];
      assert(output.type === 'get', 'a get replies with a value');
      return [output.value === state, state];
    case 'put':
      return [true, input.value];
    case 'append':
      return [true, state + input.value];
    default:
      return assertNever(input, 'kv input');
  }
}

/** Tail characters hashed: appended values are unique, so the tail tells states apart. */
const KV_HASH_TAIL_CHARS = 64;

/**
 * Per key, a string starting as "": get returns it, put replaces it, append concatenates.
 * Partitioned by key.
 */
export const kvModel: Model<string, KvInput, KvOutput> = {
  name: 'kv',
  init: () => '',
  step: kvStep,
  equal: (a, b) => a === b,
  // Appends make states long; hashing only the length and the tail keeps a step O(1).
  hash: (state) => hashNumber(state.length, hashString(state.slice(-KV_HASH_TAIL_CHARS))),
  partition(history) {
    for (const op of history) {
      if (op.output.type === 'unknown') assertUnknownWriteOpen(op, op.input.f === 'get');
    }
    return partitionByKey(history, (input) => input.key);
  },
  // A get's value ends with the last put or append it saw; that one must still be there.
  isSelfContained(operations) {
    const written = operations.flatMap(({ input }) => (input.f === 'get' ? [] : [input.value]));
    return operations.every(({ output }) =>
      output.type !== 'get' || output.value === ''
      || written.some((value) => output.value.endsWith(value)));
  },
  describeOperation(input, output) {
    const call = input.f === 'get'
      ? `get ${input.key}`
      : `${input.f} ${input.key} ${JSON.stringify(input.value)}`;
    if (output.type === 'get') return `${call} -> ${JSON.stringify(output.value)}`;
    return `${call} -> ${output.type === 'unknown' ? '?' : 'ok'}`;
  },
  describeState: (state) => JSON.stringify(state),
};

// ---------------------------------------------------------------------------------------------
// (d) Consul KV: PUT, PUT ?cas, DELETE, DELETE ?cas and GET on one key (consul-api.md §4).

/**
 * A Consul KV request, as the harness sent it. Values must be unique per write (the harness
 * writes fresh values), which lets a read name the write it saw. `cas` is the `?cas=` query
 * parameter; absent for a plain PUT/DELETE; 0 on a PUT means create-only.
 * Flags, sessions (acquire/release), recurse and txn are outside this model.
 */
export type ConsulKvInput =
  | { readonly op: 'get'; readonly key: string }
  | { readonly op: 'put'; readonly key: string; readonly value: string; readonly cas?: number }
  | { readonly op: 'delete'; readonly key: string; readonly cas?: number };

/**
 * What the harness learnt from the reply (build it with `consulKvOutputFromHttp`):
 * - `done`: PUT/DELETE answered 200 with body `true` (`ok: true`) or `false` (a `?cas` miss);
 * - `found`: GET answered 200 with the entry's value and ModifyIndex (Value null reads as "");
 * - `not-found`: GET answered 404;
 * - `not-applied`: the request definitely had no effect (X-Conclave-Outcome: not-applied, or a
 *   4xx/429 rejection before proposing); legal anywhere, changes nothing;
 * - `unknown`: no reply, or an error after the write may have been proposed; for a write the
 *   operation must return at +Infinity (see the module comment). For a GET, dropping the
 *   operation is equivalent.
 */
export type ConsulKvOutput =
  | { readonly type: 'done'; readonly ok: boolean }
  | { readonly type: 'found'; readonly value: string; readonly modifyIndex: number }
  | { readonly type: 'not-found' }
  | { readonly type: 'not-applied' }
  | { readonly type: 'unknown' };

/**
 * One key's state. Writes do not return their ModifyIndex, so the index of the current value is
 * either known (a read or a successful `?cas` showed it) or only bounded: at least `indexMin`,
 * and none of `indexesExcluded` (a `?cas` on them failed). Every write raises the index
 * (consul-api.md §3: one global Raft counter) and a delete takes an index of its own, so after a
 * delete the next create is at least two above the deleted entry.
 */
export interface ConsulKvKeyState {
  /** The current value; null when the key is absent (never written, or deleted). */
  readonly value: string | null;
  /** The ModifyIndex when known; 0 when absent or not known yet. */
  readonly modifyIndex: number;
  /**
   * Present: the least ModifyIndex the value can have (equal to modifyIndex when known).
   * Absent: the least ModifyIndex the next create can get. Never itself excluded.
   */
  readonly indexMin: number;
  /** Present with an unknown index: indexes above indexMin it cannot have; sorted. */
  readonly indexesExcluded: readonly number[];
}

/** Raft indexes start at 1, so the first write of any key has ModifyIndex ≥ 1. */
const CONSUL_KV_INITIAL: ConsulKvKeyState = {
  value: null, modifyIndex: 0, indexMin: 1, indexesExcluded: [],
};

function isIndexKnown(state: ConsulKvKeyState): boolean {
  return state.modifyIndex > 0;
}

/** Could the present value's ModifyIndex be `index`? */
function canHaveIndex(state: ConsulKvKeyState, index: number): boolean {
  if (state.value === null) return false;
  if (isIndexKnown(state)) return state.modifyIndex === index;
  return index >= state.indexMin && !state.indexesExcluded.includes(index);
}

/** Is the present value's ModifyIndex certainly `index`? */
function mustHaveIndex(state: ConsulKvKeyState, index: number): boolean {
  return state.value !== null && isIndexKnown(state) && state.modifyIndex === index;
}

/** The present value's ModifyIndex is `index` (the caller checked canHaveIndex). */
function pinIndex(state: ConsulKvKeyState, index: number): ConsulKvKeyState {
  assert(canHaveIndex(state, index));
  assert(index >= 1);
  return { value: state.value, modifyIndex: index, indexMin: index, indexesExcluded: [] };
}

/** The present value's ModifyIndex is not `index` (a `?cas=index` on it failed). */
function excludeIndex(state: ConsulKvKeyState, index: number): ConsulKvKeyState {
  if (state.value === null || isIndexKnown(state) || index < state.indexMin) return state;
  if (state.indexesExcluded.includes(index)) return state;
  const excluded = [...state.indexesExcluded, index].sort((a, b) => a - b);
  let indexMin = state.indexMin;
  while (excluded[0] === indexMin) {
    excluded.shift();
    indexMin += 1;
  }
  return { value: state.value, modifyIndex: 0, indexMin, indexesExcluded: excluded };
}

/** The state after writing `value`: a new entry above every index the key had. */
function writeValue(state: ConsulKvKeyState, value: string): ConsulKvKeyState {
  // Consul ≥ 1.6 skips a PUT that changes nothing: the ModifyIndex stays.
  if (state.value === value) return state;
  const indexMin = state.value === null ? state.indexMin : state.indexMin + 1;
  return { value, modifyIndex: 0, indexMin, indexesExcluded: [] };
}

/** The state after a delete: the tombstone takes an index, the next create one above it. */
function deleteValue(state: ConsulKvKeyState): ConsulKvKeyState {
  // Deleting an absent key may not reach Raft at all: assume nothing, so no false alarm.
  if (state.value === null) return state;
  return { value: null, modifyIndex: 0, indexMin: state.indexMin + 2, indexesExcluded: [] };
}

/** PUT: plain (upsert), ?cas=0 (create only) or ?cas=N (only if ModifyIndex is N). */
function stepPut(
  state: ConsulKvKeyState,
  value: string,
  cas: number | undefined,
  output: ConsulKvOutput,
): StepResult<ConsulKvKeyState> {
  assert(output.type === 'done' || output.type === 'unknown', 'a PUT replies true/false');
  const ok = output.type === 'done' ? output.ok : null; // null: unknown
  if (cas === undefined) {
    if (ok === false) return [false, state]; // a plain PUT never answers false
    return [true, writeValue(state, value)];
  }
  if (cas === 0) {
    const absent = state.value === null;
    if (ok === null) return [true, absent ? writeValue(state, value) : state];
    return ok ? [absent, writeValue(state, value)] : [!absent, state];
  }
  if (ok === false) return [!mustHaveIndex(state, cas), excludeIndex(state, cas)];
  const possible = canHaveIndex(state, cas);
  if (ok === null) return [true, possible ? writeValue(pinIndex(state, cas), value) : state];
  return possible ? [true, writeValue(pinIndex(state, cas), value)] : [false, state];
}

/** DELETE: plain (always true) or ?cas=N (true if ModifyIndex was N or the key is absent). */
function stepDelete(
  state: ConsulKvKeyState,
  cas: number | undefined,
  output: ConsulKvOutput,
): StepResult<ConsulKvKeyState> {
  assert(output.type === 'done' || output.type === 'unknown', 'a DELETE replies true/false');
  const ok = output.type === 'done' ? output.ok : null;
  if (cas === undefined) {
    if (ok === false) return [false, state]; // a plain DELETE never answers false
    return [true, deleteValue(state)];
  }
  if (state.value === null) return [ok !== false, state];
  if (ok === false) return [!mustHaveIndex(state, cas), excludeIndex(state, cas)];
  const possible = cas > 0 && canHaveIndex(state, cas);
  if (ok === null) return [true, possible ? deleteValue(pinIndex(state, cas)) : state];
  return possible ? [true, deleteValue(pinIndex(state, cas))] : [false, state];
}

/** GET: must see the current value and its one ModifyIndex, or 404 when absent. */
function stepGet(state: ConsulKvKeyState, output: ConsulKvOutput): StepResult<ConsulKvKeyState> {
  switch (output.type) {
    case 'found':
      if (state.value !== output.value || !canHaveIndex(state, output.modifyIndex)) {
        return [false, state];
      }
      return [true, pinIndex(state, output.modifyIndex)];
    case 'not-found':
      return [state.value === null, state];
    case 'unknown':
    case 'not-applied':
      return [true, state];
    case 'done':
      throw new AssertionError('a GET replies with a value or 404, not true/false');
    default:
      return assertNever(output, 'GET output');
  }
}

function consulKvStep(
  state: ConsulKvKeyState,
  input: ConsulKvInput,
  output: ConsulKvOutput,
): StepResult<ConsulKvKeyState> {
  if (output.type === 'not-applied') return [true, state];
  switch (input.op) {
    case 'get':
      return stepGet(state, output);
    case 'put':
      return stepPut(state, input.value, input.cas, output);
    case 'delete':
      return stepDelete(state, input.cas, output);
    default:
      return assertNever(input, 'Consul KV input');
  }
}

function consulKvStatesEqual(a: ConsulKvKeyState, b: ConsulKvKeyState): boolean {
  if (a.value !== b.value || a.modifyIndex !== b.modifyIndex || a.indexMin !== b.indexMin) {
    return false;
  }
  if (a.indexesExcluded.length !== b.indexesExcluded.length) return false;
  return a.indexesExcluded.every((index, position) => b.indexesExcluded[position] === index);
}

function hashConsulKvState(state: ConsulKvKeyState): number {
  let hash = state.value === null ? 0x5bd1e995 : hashString(state.value);
  hash = hashNumber(state.modifyIndex, hash);
  hash = hashNumber(state.indexMin, hash);
  for (const index of state.indexesExcluded) hash = hashNumber(index, hash);
  return hash;
}

function describeConsulKvInput(input: ConsulKvInput): string {
  const cas = input.op !== 'get' && input.cas !== undefined ? `?cas=${input.cas}` : '';
  switch (input.op) {
    case 'get':
      return `GET ${input.key}`;
    case 'put':
      return `PUT ${input.key}${cas} ${JSON.stringify(input.value)}`;
    case 'delete':
      return `DELETE ${input.key}${cas}`;
    default:
      return assertNever(input, 'Consul KV input');
  }
}

function describeConsulKvOutput(output: ConsulKvOutput): string {
  switch (output.type) {
    case 'done':
      return String(output.ok);
    case 'found':
      return `${JSON.stringify(output.value)} @${output.modifyIndex}`;
    case 'not-found':
      return '404';
    case 'not-applied':
      return 'not applied';
    case 'unknown':
      return '?';
    default:
      return assertNever(output, 'Consul KV output');
  }
}

/** Human text of one key's state, e.g. `"v3" @17`, `"v4" @≥18 not 20`, `absent (next @≥20)`. */
export function describeConsulKvState(state: ConsulKvKeyState): string {
  if (state.value === null) return `absent (next @≥${state.indexMin})`;
  if (isIndexKnown(state)) return `${JSON.stringify(state.value)} @${state.modifyIndex}`;
  const excluded = state.indexesExcluded.length > 0
    ? ` not ${state.indexesExcluded.join(',')}`
    : '';
  return `${JSON.stringify(state.value)} @≥${state.indexMin}${excluded}`;
}

/**
 * Conclave's KV per key (P1 and, per key, P3 of RELIABILITY.md): a GET returns the current value
 * with the one ModifyIndex it was written at, or 404 when absent; writes raise the index; `?cas`
 * compares the ModifyIndex (PUT cas=0: create only; DELETE ?cas on an absent key: true).
 * Checks per key only; that an index names one value across keys is a separate check.
 * A 404's X-Consul-Index is the whole KV space's index, so it is not checked here.
 */
export const consulKvModel: Model<ConsulKvKeyState, ConsulKvInput, ConsulKvOutput> = {
  name: 'consul-kv',
  init: () => CONSUL_KV_INITIAL,
  step: consulKvStep,
  equal: consulKvStatesEqual,
  hash: hashConsulKvState,
  partition(history) {
    for (const op of history) {
      assertConsulKvOperation(op);
      if (op.output.type === 'unknown') assertUnknownWriteOpen(op, op.input.op === 'get');
    }
    return partitionByKey(history, (input) => input.key);
  },
  isSelfContained: (operations) => readsHaveWriters(
    operations,
    ({ output }) => (output.type === 'found' ? output.value : undefined),
    ({ input, output }) =>
      (input.op === 'put' && (output.type === 'unknown' || (output.type === 'done' && output.ok))
        ? input.value : undefined),
  ),
  describeOperation: (input, output) =>
    `${describeConsulKvInput(input)} -> ${describeConsulKvOutput(output)}`,
  describeState: describeConsulKvState,
};

function assertConsulKvOperation(op: Operation<ConsulKvInput, ConsulKvOutput>): void {
  const { input, output } = op;
  if (input.op !== 'get' && input.cas !== undefined) {
    assert(Number.isSafeInteger(input.cas) && input.cas >= 0, 'cas is an index ≥ 0');
  }
  if (output.type === 'found') {
    assert(input.op === 'get', 'only a GET finds a value');
    assert(Number.isSafeInteger(output.modifyIndex), 'ModifyIndex must be an exact integer');
    assert(output.modifyIndex >= 1, 'ModifyIndex is a Raft index, ≥ 1');
  }
  if (output.type === 'done') assert(input.op !== 'get', 'a GET replies with a value or 404');
  if (output.type === 'not-found') assert(input.op === 'get', 'only a GET answers 404');
}

/** One HTTP exchange as the harness saw it. */
export interface ConsulHttpReply {
  readonly status: number;
  /** The body as text (utf-8). */
  readonly body: string;
  /** The X-Conclave-Outcome header, if any: `not-applied` or `unknown` (RELIABILITY.md B1). */
  readonly outcome?: string;
}

/**
 * Maps a reply (or null: timeout, reset, no reply) to a `ConsulKvOutput`:
 * - no reply or 5xx → unknown (the write may have been proposed);
 * - X-Conclave-Outcome `not-applied`, or 4xx/429 → not-applied (validated before proposing);
 * - PUT/DELETE 200 → done true/false;
 * - GET 200 → found (the entry's base64 Value decoded as utf-8, null as ""); 404 → not-found;
 *   anything else → unknown. A 200 whose body is not what Consul sends throws: that is a server
 * bug to report, not an outcome to guess.
 */
export function consulKvOutputFromHttp(
  input: ConsulKvInput,
  reply: ConsulHttpReply | null,
): ConsulKvOutput {
  if (reply === null) return { type: 'unknown' };
  const outcome = reply.outcome?.trim().toLowerCase();
  if (outcome === 'not-applied' || outcome === 'not applied') return { type: 'not-applied' };
  if (input.op === 'get') {
    if (reply.status === 200) return parseKvGetBody(input.key, reply.body);
    if (reply.status === 404) return { type: 'not-found' };
    return { type: 'unknown' };
  }
  if (reply.status === 200) {
    const body = reply.body.trim();
    if (body === 'true') return { type: 'done', ok: true };
    if (body === 'false') return { type: 'done', ok: false };
    const request = `${input.op.toUpperCase()} ${input.key}`;
    throw new Error(`${request}: 200 with body ${JSON.stringify(body)}`);
  }
  if (outcome !== 'unknown' && reply.status >= 400 && reply.status < 500) {
    return { type: 'not-applied' };
  }
  return { type: 'unknown' };
}

function parseKvGetBody(key: string, body: string): ConsulKvOutput {
  const entries: unknown = JSON.parse(body);
  if (!Array.isArray(entries) || entries.length !== 1) {
    throw new Error(`GET ${key}: expected one entry, got ${body.slice(0, 200)}`);
  }
  const entry: unknown = entries[0];
  if (typeof entry !== 'object' || entry === null) throw new Error(`GET ${key}: bad entry`);
  const { Key, Value, ModifyIndex } = entry as Record<string, unknown>;
  if (Key !== key) throw new Error(`GET ${key}: entry for key ${JSON.stringify(Key)}`);
  if (typeof ModifyIndex !== 'number' || !Number.isSafeInteger(ModifyIndex) || ModifyIndex < 1) {
    throw new Error(`GET ${key}: bad ModifyIndex ${JSON.stringify(ModifyIndex)}`);
  }
  if (Value !== null && typeof Value !== 'string') throw new Error(`GET ${key}: bad Value`);
  const value = Value === null ? '' : Buffer.from(Value, 'base64').toString('utf8');
  return { type: 'found', value, modifyIndex: ModifyIndex };
}
