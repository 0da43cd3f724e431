import t from 'tap';
import { Prng } from '../../src/lib/prng.js';
import { consulKvModel } from './models.js';
import type { ConsulKvInput, ConsulKvOutput } from './models.js';
import { checkOperations } from './porcupine.js';
import type { Operation } from './porcupine.js';

/**
 * Histories from a simulated Consul KV store: each operation takes effect atomically at a random
 * tick between its call and its return, and every write takes the next Raft index (failed CAS
 * included, as in Consul). A correct store must always be judged 'ok' (no false alarms); each
 * injected bug (RELIABILITY.md's positive controls, in miniature) must be caught.
 */

type KvOperation = Operation<ConsulKvInput, ConsulKvOutput>;

interface Entry {
  readonly value: string;
  readonly modifyIndex: number;
}

/** The bugs a simulated store can have. */
type StoreBug = 'none' | 'stale-read' | 'lost-write' | 'cas-ignores-index';
/** How far behind a 'stale-read' store's reads are. */
const STALE_READ_TICKS = 5;

class SimulatedStore {
  raftIndex = 0;
  entries = new Map<string, Entry>();
  /** Copies of `entries` after each tick, for the stale-read bug. */
  readonly past: Map<string, Entry>[] = [];

  constructor(
    readonly bug: StoreBug,
    readonly prng: Prng,
  ) {}

  apply(input: ConsulKvInput): ConsulKvOutput {
    if (input.op === 'get') {
      const source = this.bug === 'stale-read'
        ? this.past[this.past.length - STALE_READ_TICKS] ?? new Map<string, Entry>()
        : this.entries;
      const entry = source.get(input.key);
      return entry === undefined ? { type: 'not-found' } : { type: 'found', ...entry };
    }
    this.raftIndex += 1;
    const current = this.entries.get(input.key);
    if (input.op === 'put') {
      const allowed = input.cas === undefined || this.bug === 'cas-ignores-index'
        || (input.cas === 0 ? current === undefined : current?.modifyIndex === input.cas);
      const lost = this.bug === 'lost-write' && this.prng.chance(0.1);
      if (allowed && !lost) {
        this.entries.set(input.key, { value: input.value, modifyIndex: this.raftIndex });
      }
      return { type: 'done', ok: allowed };
    }
    const allowed = input.cas === undefined || current === undefined || current.modifyIndex === input.cas;
    if (allowed) this.entries.delete(input.key);
    return { type: 'done', ok: allowed };
  }
}

interface InFlight {
  readonly input: ConsulKvInput;
  readonly callTime: number;
  readonly applyAt: number;
  readonly returnAt: number;
  /** The reply will be lost; `applies` says whether the request still takes effect. */
  readonly timesOut: boolean;
  readonly applies: boolean;
  output: ConsulKvOutput | null;
}

const KEYS = ['a', 'b'];
const CLIENT_COUNT = 5;
const SEEDS = 100;
const TICKS = 300;

function chooseInput(prng: Prng, clientId: number, serial: number, lastSeen: Map<string, number>): ConsulKvInput {
  const key = prng.pick(KEYS);
  const value = `c${clientId}-${serial}`;
  const seenIndex = lastSeen.get(key) ?? 0;
  const roll = prng.nextInt(10);
  if (roll < 4) return { op: 'get', key };
  if (roll < 6) return { op: 'put', key, value };
  if (roll < 8) return { op: 'put', key, value, cas: prng.chance(0.2) ? 0 : seenIndex };
  if (roll < 9) return { op: 'delete', key };
  return { op: 'delete', key, cas: seenIndex };
}

function simulate(seed: number, bug: StoreBug): KvOperation[] {
  const prng = new Prng(seed);
  const store = new SimulatedStore(bug, new Prng(seed + 1_000_000));
  const history: KvOperation[] = [];
  const inFlight: (InFlight | null)[] = Array<InFlight | null>(CLIENT_COUNT).fill(null);
  const lastSeen = Array.from({ length: CLIENT_COUNT }, () => new Map<string, number>());
  let serial = 0;
  for (let tick = 0; tick < TICKS; tick++) {
    for (const clientId of prng.shuffle([...Array(CLIENT_COUNT).keys()])) {
      const call = inFlight[clientId];
      if (call === null || call === undefined || call.applyAt !== tick) continue;
      const output = call.timesOut && !call.applies ? null : store.apply(call.input);
      call.output = call.timesOut ? { type: 'unknown' } : output;
    }
    store.past.push(new Map(store.entries));
    for (let clientId = 0; clientId < CLIENT_COUNT; clientId++) {
      const call = inFlight[clientId];
      if (call !== null && call !== undefined && call.returnAt === tick) {
        if (call.output === null) throw new Error('returned before it was applied');
        const lost = call.timesOut && call.input.op !== 'get';
        history.push({
          clientId, input: call.input, output: call.output, callTime: call.callTime,
          returnTime: lost ? Number.POSITIVE_INFINITY : tick,
        });
        if (call.output.type === 'found') lastSeen[clientId]?.set(call.input.key, call.output.modifyIndex);
        inFlight[clientId] = null;
      }
      if (inFlight[clientId] === null && prng.chance(0.5)) {
        serial += 1;
        const applyAt = tick + prng.between(1, 3); // applied in a later tick
        const timesOut = prng.chance(0.05);
        inFlight[clientId] = {
          input: chooseInput(prng, clientId, serial, lastSeen[clientId] ?? new Map()),
          callTime: tick, applyAt, returnAt: applyAt + prng.between(0, 3),
          timesOut, applies: prng.chance(0.5), output: null,
        };
      }
    }
  }
  // Calls still in flight at the end never got a reply: their outcome is unknown.
  inFlight.forEach((call, clientId) => {
    if (call === null) return;
    const output: ConsulKvOutput = { type: 'unknown' };
    history.push({ clientId, input: call.input, output, callTime: call.callTime, returnTime: Infinity });
  });
  return history;
}

t.test('a correct store is always linearizable', async (t) => {
  let operations = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const history = simulate(seed, 'none');
    operations += history.length;
    const result = checkOperations(consulKvModel, history, { timeoutMs: 30_000 });
    t.equal(result.verdict, 'ok', `seed=${seed}`);
  }
  t.comment(`${operations} operations over ${SEEDS} seeds`);
});

for (const bug of ['stale-read', 'lost-write', 'cas-ignores-index'] as const) {
  t.test(`a store with the bug ${bug} is caught`, async (t) => {
    let caught = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const result = checkOperations(consulKvModel, simulate(seed, bug), { timeoutMs: 30_000 });
      t.not(result.verdict, 'unknown', `seed=${seed} decided`);
      if (result.verdict === 'illegal') caught += 1;
    }
    t.comment(`${bug} caught in ${caught} of ${SEEDS} seeds`);
    t.ok(caught >= SEEDS * (bug === 'lost-write' ? 0.5 : 0.9), 'most runs with the bug are illegal');
  });
}
