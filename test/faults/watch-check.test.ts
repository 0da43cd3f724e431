import t from 'tap';
import { checkWatches, finalValues, showsFinalState } from './checks.js';
import type { WatchCheck } from './checks.js';
import type { CompletionType, NemesisEvent, OpFunction, OpRecord, ReadMode, SeenEntry } from './history.js';

/**
 * The watch checker (P5) on synthetic histories, no servers: each must-be-0 figure is caught
 * when its bug is written into the history (a positive control in miniature), and what Consul
 * allows — a `?stale` watcher's index dropping after its server restarted — is not counted.
 */

const KEY = 'reg/run/g0/k0';
const PREFIX = 'reg/run/g0/';
let nextId = 1;

interface Timing {
  readonly at: number;
  readonly done?: number;
}

function record(f: OpFunction, proc: string, key: string, { at, done }: Timing, fields: Partial<OpRecord> & { type: CompletionType | null }): OpRecord {
  return {
    id: nextId++, proc, f, key, value: null, node: 's1', mode: null, cas: null,
    invokeT: at, invokeWall: at, completeT: done ?? at + 1, completeWall: done ?? at + 1,
    status: null, body: null, outcome: null, index: null, data: null, entries: null,
    ...fields,
  };
}

/** An acknowledged PUT (`type` info: no answer, it may have been applied). */
function write(value: string, timing: Timing, type: CompletionType = 'ok', key = KEY): OpRecord {
  return record('write', 'r0', key, timing, { value, type, status: type === 'ok' ? 200 : null, body: type === 'ok' ? 'true' : null });
}

/** A register GET that saw `value` at ModifyIndex `index` (procs `final-*` are the final reads). */
function read(value: string | null, index: number | null, timing: Timing, proc = 'r1', key = KEY): OpRecord {
  const body = value === null ? '' : JSON.stringify([{ Key: key, Value: Buffer.from(value).toString('base64'), ModifyIndex: index, CreateIndex: 1, LockIndex: 0 }]);
  return record('read', proc, key, timing, { type: 'ok', status: value === null ? 404 : 200, body, index, mode: 'consistent' });
}

/** A watch answer: X-Consul-Index `index`, showing `entries` (none: a 404). */
function watch(proc: string, node: string, mode: ReadMode, index: number | null, entries: readonly SeenEntry[], timing: Timing, options: { recurse?: boolean; key?: string } = {}): OpRecord {
  const recurse = options.recurse ?? false;
  return record('watch', proc, options.key ?? (recurse ? PREFIX : KEY), timing, {
    node, mode, type: 'ok', status: entries.length === 0 ? 404 : 200, index, entries, data: { minIndex: 0, recurse },
  });
}

const seen = (value: string, modifyIndex: number, key = KEY): SeenEntry => ({ key, value, modifyIndex });
const kill = (t: number, nodes: readonly string[]): NemesisEvent => ({ t, f: 'kill', value: { nodes, kind: 'kill-follower' } });

function check(ops: readonly OpRecord[], events: readonly NemesisEvent[] = [], defaultReadsMayBeStale = false): WatchCheck {
  return checkWatches(ops, events, { defaultReadsMayBeStale });
}

/** a written at 10, b at 12; the final read shows b. */
const base = (): OpRecord[] => [write('a', { at: 0, done: 5 }), write('b', { at: 20, done: 25 }), read('b', 12, { at: 200, done: 201 }, 'final-s1')];

t.test('a correct history: nothing counted, all converged, wake-ups measured', async (t) => {
  const ops = [
    ...base(),
    watch('w0', 's1', 'default', 10, [seen('a', 10)], { at: 1, done: 7 }),
    watch('w0', 's1', 'default', 12, [seen('b', 12)], { at: 8, done: 30 }),
    watch('w1', 's2', 'stale', 12, [seen('b', 12)], { at: 2, done: 40 }),
  ];
  const result = check(ops);
  t.same(result.regressions, []);
  t.same(result.unwritten, []);
  t.same(result.indexMismatches, []);
  t.same(result.missingIndex, []);
  t.same(result.notConverged, []);
  t.equal(result.converged, 2);
  t.equal(result.watchers, 2);
  t.same(result.responses, { 'key-default': 2, 'key-stale': 1 });
  t.equal(result.acknowledgedWrites, 2);
  // a: w0 at 7 (2 ms after its ack at 5); b: w0 at 30 and w1 at 40 (5 and 15 ms after 25).
  t.same(result.wakeup, { samples: 3, p50Ms: 5, p99Ms: 15, maxMs: 15 });
  t.equal(result.convergeMsMax, 15, 'b\'s write returned at 25; w0 showed it at 30, w1 at 40');
});

t.test('a default-mode index drop without a restart is caught', async (t) => {
  const ops = [
    ...base(),
    watch('w0', 's1', 'default', 12, [seen('b', 12)], { at: 30, done: 31 }),
    watch('w0', 's1', 'default', 10, [seen('a', 10)], { at: 32, done: 33 }),
    watch('w0', 's1', 'default', 12, [seen('b', 12)], { at: 34, done: 35 }),
  ];
  const result = check(ops);
  t.equal(result.regressions.length, 1, result.regressions.join('; '));
  t.match(result.regressions[0], /X-Consul-Index 10 .* after 12/);
  t.equal(result.regressionsAfterRestart, 0);
});

t.test('a default-mode drop is caught even across a restart of the server (it waits for the read index)', async (t) => {
  const ops = [
    ...base(),
    watch('w0', 's1', 'default', 12, [seen('b', 12)], { at: 30, done: 31 }),
    watch('w0', 's1', 'default', 10, [seen('a', 10)], { at: 50, done: 51 }),
  ];
  t.equal(check(ops, [kill(40, ['s1'])]).regressions.length, 1);
  t.equal(check(ops, [kill(40, ['s1'])], true).staleDefaultRegressions, 1, 'reported, not failed, when default reads may be stale');
  t.equal(check(ops, [kill(40, ['s1'])], true).regressions.length, 0);
});

t.test('a ?stale drop after its server restarted is allowed; without a restart, or after another server\'s, it is caught', async (t) => {
  const ops = [
    ...base(),
    watch('w1', 's2', 'stale', 12, [seen('b', 12)], { at: 30, done: 31 }),
    watch('w1', 's2', 'stale', 10, [seen('a', 10)], { at: 50, done: 51 }),
    watch('w1', 's2', 'stale', 12, [seen('b', 12)], { at: 52, done: 53 }),
  ];
  const restarted = check(ops, [kill(40, ['s1', 's2', 's3'])]);
  t.same(restarted.regressions, []);
  t.equal(restarted.regressionsAfterRestart, 1);
  t.equal(check(ops, [{ t: 40, f: 'crash', value: { node: 's2', failpoint: 'raft.afterApply' } }]).regressionsAfterRestart, 1, 'a failpoint crash is a restart too');
  t.equal(check(ops).regressions.length, 1, 'no restart');
  t.equal(check(ops, [kill(40, ['s1'])]).regressions.length, 1, 'another server restarted');
  t.equal(check(ops, [kill(60, ['s2'])]).regressions.length, 1, 'the restart came after the lower answer');
});

t.test('?consistent drops are never excused', async (t) => {
  const ops = [
    ...base(),
    watch('w4', 's1', 'consistent', 12, [seen('b', 12)], { at: 30, done: 31 }),
    watch('w4', 's1', 'consistent', 10, [seen('a', 10)], { at: 50, done: 51 }),
  ];
  t.equal(check(ops, [kill(40, ['s1'])], true).regressions.length, 1);
});

t.test('drops are per query: a new generation starts over', async (t) => {
  const other = 'reg/run/g1/k0';
  const ops = [
    ...base(),
    write('c', { at: 40, done: 41 }, 'ok', other),
    watch('w0', 's1', 'default', 12, [seen('b', 12)], { at: 30, done: 31 }),
    // A missing key answers with the KV-space index; the new generation's key was written at 11.
    watch('w0', 's1', 'default', 11, [seen('c', 11, other)], { at: 50, done: 51 }, { key: other }),
  ];
  t.same(check(ops).regressions, []);
});

t.test('an unwritten value is caught; maybe-written values are not', async (t) => {
  const ops = [
    ...base(),
    write('lost-reply', { at: 30, done: 5000 }, 'info'),
    write('refused', { at: 30, done: 31 }, 'fail'),
    record('cas', 'r2', KEY, { at: 30, done: 32 }, { value: 'cas-false', type: 'ok', status: 200, body: 'false' }),
    write('later', { at: 100, done: 101 }),
    watch('w0', 's1', 'default', 13, [seen('lost-reply', 13)], { at: 31, done: 40 }),
    watch('w0', 's1', 'default', 14, [seen('never', 14)], { at: 41, done: 42 }),
    watch('w0', 's1', 'default', 15, [seen('refused', 15)], { at: 43, done: 44 }),
    watch('w0', 's1', 'default', 16, [seen('cas-false', 16)], { at: 45, done: 46 }),
    watch('w0', 's1', 'default', 17, [seen('later', 17)], { at: 47, done: 48 }),
  ];
  const result = check(ops);
  t.equal(result.unwritten.length, 4, result.unwritten.join('\n'));
  t.match(result.unwritten.join('\n'), /never/);
  t.match(result.unwritten.join('\n'), /refused/);
  t.match(result.unwritten.join('\n'), /cas-false/);
  t.match(result.unwritten.join('\n'), /later.*only after the answer/);
  t.notMatch(result.unwritten.join('\n'), /lost-reply/);
});

t.test('a value at a ModifyIndex other than the reads\' (or an index with two values) is caught', async (t) => {
  const wrongIndex = [...base(), watch('w0', 's1', 'default', 13, [seen('b', 13)], { at: 30, done: 31 })];
  t.equal(check(wrongIndex).indexMismatches.length, 1, 'b was read at 12');
  const twoValues = [...base(), watch('w0', 's1', 'default', 12, [seen('a', 12)], { at: 30, done: 31 })];
  t.ok(check(twoValues).indexMismatches.length >= 1, '12 is b\'s index');
  const twoWatches = [
    ...base(),
    watch('w2', 's3', 'default', 10, [seen('a', 10)], { at: 6, done: 7 }, { recurse: true }),
    watch('w0', 's1', 'stale', 9, [seen('a', 9)], { at: 6, done: 8 }),
  ];
  t.equal(check(twoWatches).indexMismatches.length, 1, 'two watches disagree');
});

t.test('a missing or zero X-Consul-Index is caught', async (t) => {
  const ops = [
    ...base(),
    watch('w0', 's1', 'default', null, [seen('b', 12)], { at: 30, done: 31 }),
    watch('w0', 's1', 'default', 0, [], { at: 32, done: 33 }),
  ];
  t.equal(check(ops).missingIndex.length, 2);
});

t.test('convergence: the last answer must show the final state of the last query', async (t) => {
  const stale = [...base(), watch('w0', 's1', 'default', 10, [seen('a', 10)], { at: 6, done: 7 })];
  const result = check(stale);
  t.equal(result.converged, 0);
  t.equal(result.notConverged.length, 1);
  const late = [
    ...base(),
    watch('w0', 's1', 'default', 10, [seen('a', 10)], { at: 6, done: 7 }),
    watch('w0', 's1', 'default', 12, [seen('b', 12)], { at: 8, done: 130 }),
    record('watch', 'w0', KEY, { at: 131, done: 140 }, { node: 's1', mode: 'default', type: 'info', body: 'cancelled: the run is over', data: { minIndex: 12, recurse: false } }),
  ];
  const converged = check(late);
  t.equal(converged.converged, 1, converged.notConverged.join('; '));
  t.equal(converged.convergeMsMax, 105, 'from b\'s write (returned at 25) to the answer at 130');
  t.equal(converged.unanswered, 1);
  const moved = [...late, record('watch', 'w0', 'reg/run/g1/k0', { at: 141, done: 142 }, { node: 's1', mode: 'default', type: 'fail', data: { minIndex: 0, recurse: false } })];
  t.equal(check(moved).converged, 0, 'its last query (a new generation) never answered');
});

t.test('prefix watches: every key under the prefix, deleted keys absent', async (t) => {
  const k1 = 'reg/run/g0/k1';
  const ops = [
    ...base(),
    write('x', { at: 30, done: 31 }, 'ok', k1),
    read(null, 15, { at: 200, done: 201 }, 'final-s1', k1),
    read('b', 12, { at: 200, done: 201 }, 'final-s1', 'reg/run/g1/k0'),
  ];
  const finals = finalValues(ops);
  t.equal(finals.get(KEY), 'b');
  t.equal(finals.get(k1), null);
  t.ok(showsFinalState(watch('w2', 's3', 'default', 15, [seen('b', 12)], { at: 40 }, { recurse: true }), finals));
  t.notOk(showsFinalState(watch('w2', 's3', 'default', 13, [seen('b', 12), seen('x', 13, k1)], { at: 40 }, { recurse: true }), finals));
  t.notOk(showsFinalState(watch('w2', 's3', 'default', 15, [], { at: 40 }, { recurse: true }), finals));
  t.ok(showsFinalState(watch('w0', 's1', 'default', 15, [], { at: 40 }, { key: k1 }), finals), 'a 404 for a deleted key');
});
