import t from 'tap';
import { AssertionError } from '../../src/lib/assert.js';
import { consulKvModel, consulKvOutputFromHttp } from './models.js';
import type { ConsulKvInput, ConsulKvOutput } from './models.js';
import { checkOperations } from './porcupine.js';
import type { Operation, Verdict } from './porcupine.js';

type KvOperation = Operation<ConsulKvInput, ConsulKvOutput>;

const NEVER = Number.POSITIVE_INFINITY;
const KEY = 'k';

function op(
  clientId: number,
  [callTime, returnTime]: readonly [number, number],
  input: ConsulKvInput,
  output: ConsulKvOutput,
): KvOperation {
  return { clientId, input, output, callTime, returnTime };
}

const get = { op: 'get', key: KEY } as const;
const put = (value: string, cas?: number): ConsulKvInput =>
  cas === undefined ? { op: 'put', key: KEY, value } : { op: 'put', key: KEY, value, cas };
const del = (cas?: number): ConsulKvInput =>
  cas === undefined ? { op: 'delete', key: KEY } : { op: 'delete', key: KEY, cas };
const found = (value: string, modifyIndex: number): ConsulKvOutput => ({ type: 'found', value, modifyIndex });
const notFound: ConsulKvOutput = { type: 'not-found' };
const done = (ok: boolean): ConsulKvOutput => ({ type: 'done', ok });
const unknown: ConsulKvOutput = { type: 'unknown' };
const notApplied: ConsulKvOutput = { type: 'not-applied' };

function verdict(history: readonly KvOperation[]): Verdict {
  return checkOperations(consulKvModel, history, { timeoutMs: 10_000 }).verdict;
}

t.test('sequential writes and reads', async (t) => {
  const base = [
    op(1, [0, 1], get, notFound),
    op(1, [2, 3], put('v1'), done(true)),
    op(1, [4, 5], get, found('v1', 5)),
    op(2, [6, 7], put('v2'), done(true)),
    op(2, [8, 9], get, found('v2', 8)),
  ];
  t.equal(verdict(base), 'ok');
  t.equal(verdict([...base, op(1, [10, 11], get, found('v2', 8))]), 'ok', 'repeat read');
  t.equal(verdict([...base, op(1, [10, 11], get, found('v2', 9))]), 'illegal', 'one value, one index');
});

t.test('a stale read is illegal', async (t) => {
  const history = [
    op(1, [0, 1], put('v1'), done(true)),
    op(1, [2, 3], get, found('v1', 5)),
    op(2, [4, 5], put('v2'), done(true)),
    op(3, [6, 7], get, found('v1', 5)),
  ];
  t.equal(verdict(history), 'illegal');
  t.equal(verdict([...history.slice(0, 3), op(3, [4.5, 7], get, found('v1', 5))]), 'ok',
    'the same read, overlapping the write, may see the old value');
});

t.test('a lost write is illegal', async (t) => {
  t.equal(verdict([op(1, [0, 1], put('v1'), done(true)), op(2, [2, 3], get, notFound)]), 'illegal',
    'acknowledged create, then 404');
  t.equal(verdict([
    op(1, [0, 1], put('v1'), done(true)),
    op(1, [2, 3], put('v2'), done(true)),
    op(2, [4, 5], get, found('v1', 3)),
  ]), 'illegal', 'acknowledged overwrite, then the old value');
  t.equal(verdict([
    op(1, [0, 1], put('v1'), done(true)),
    op(1, [2, 3], del(), done(true)),
    op(2, [4, 5], get, found('v1', 3)),
  ]), 'illegal', 'acknowledged delete, then the value again');
});

t.test('concurrent operations that can be ordered are ok', async (t) => {
  t.equal(verdict([
    op(1, [0, 10], put('v1'), done(true)),
    op(2, [1, 2], get, notFound),
    op(3, [3, 4], get, found('v1', 7)),
    op(2, [5, 6], get, found('v1', 7)),
  ]), 'ok', 'reads during a slow write: before, then after');
  const twoWriters = [
    op(1, [0, 10], put('a'), done(true)),
    op(2, [1, 9], put('b'), done(true)),
    op(3, [11, 12], get, found('a', 7)),
  ];
  t.equal(verdict(twoWriters), 'ok', 'b then a');
  t.equal(verdict([...twoWriters, op(3, [13, 14], get, found('b', 6))]), 'illegal',
    'but not a, then b again');
  t.equal(verdict([
    op(1, [0, 10], put('a'), done(true)),
    op(2, [1, 9], put('b'), done(true)),
    op(3, [2, 3], get, found('b', 6)),
    op(4, [4, 5], get, found('a', 4)),
  ]), 'illegal', 'b @6 then a @4: the index went down');
  t.equal(verdict([
    op(1, [0, 10], put('a'), done(true)),
    op(2, [1, 9], put('b'), done(true)),
    op(3, [2, 3], get, found('b', 6)),
    op(4, [4, 5], get, found('a', 8)),
  ]), 'ok', 'b @6 then a @8');
});

t.test('unknown writes may or may not have happened', async (t) => {
  const pending = op(1, [0, NEVER], put('v1'), unknown);
  t.equal(verdict([pending, op(2, [1, 2], get, notFound)]), 'ok', 'not (yet) applied');
  t.equal(verdict([pending, op(2, [1, 2], get, found('v1', 3))]), 'ok', 'applied');
  t.equal(verdict([pending, op(2, [1, 2], get, found('v1', 3)), op(2, [3, 4], get, notFound)]),
    'illegal', 'applied, then gone without a delete');
  t.equal(verdict([op(2, [0, 1], get, found('v1', 3)), { ...pending, callTime: 2 }]), 'illegal',
    'seen before it was called');
  t.equal(verdict([
    op(1, [0, 1], put('v1'), done(true)),
    op(1, [2, 3], get, found('v1', 4)),
    op(2, [4, NEVER], put('v2', 4), unknown),
    op(3, [5, 6], get, found('v1', 4)),
    op(3, [7, 8], get, found('v2', 9)),
  ]), 'ok', 'an unknown CAS applied late');
  t.equal(verdict([op(1, [0, 1], put('v1'), notApplied), op(2, [2, 3], get, notFound)]), 'ok',
    'a not-applied write never happens');
  t.equal(verdict([op(1, [0, 1], put('v1'), notApplied), op(2, [2, 3], get, found('v1', 3))]),
    'illegal', 'and cannot be seen');
  t.throws(() => verdict([op(1, [0, 5], put('v1'), unknown)]), AssertionError,
    'an unknown write must stay open to +Infinity');
  t.equal(verdict([op(1, [0, 1], put('v1'), done(true)), op(2, [2, 3], get, unknown)]), 'ok',
    'an unknown read checks nothing');
});

t.test('CAS on ModifyIndex', async (t) => {
  const written = [op(1, [0, 1], put('v1'), done(true)), op(1, [2, 3], get, found('v1', 5))];
  t.equal(verdict([...written, op(2, [4, 5], put('v2', 5), done(true)), op(2, [6, 7], get, found('v2', 6))]),
    'ok', 'cas on the current index succeeds');
  t.equal(verdict([...written, op(2, [4, 5], put('v2', 7), done(true))]), 'illegal',
    'a CAS that succeeded on an index that never existed');
  t.equal(verdict([...written, op(2, [4, 5], put('v2', 5), done(false))]), 'illegal',
    'a CAS that failed on the current index');
  t.equal(verdict([...written, op(2, [4, 5], put('v2', 4), done(false))]), 'ok',
    'a CAS on an older index fails');
  t.equal(verdict([
    op(1, [0, 1], put('v1'), done(true)),
    op(2, [2, 3], put('v2', 3), done(false)),
    op(1, [4, 5], get, found('v1', 3)),
  ]), 'illegal', 'a failed CAS on N rules N out for the value it saw');
  t.equal(verdict([
    op(1, [0, 1], put('v1'), done(true)),
    op(2, [2, 3], put('v2', 3), done(true)),
    op(1, [4, 5], get, found('v2', 4)),
  ]), 'ok', 'a successful CAS tells the index of a value no read saw');
  t.equal(verdict([
    op(1, [0, 1], put('v1'), done(true)),
    op(2, [2, 3], put('v2', 3), done(true)),
    op(1, [4, 5], get, found('v2', 3)),
  ]), 'illegal', 'and the new value is above it');
  t.equal(verdict([
    op(1, [0, 1], put('v1', 0), done(true)),
    op(2, [2, 3], put('v2', 0), done(false)),
    op(1, [4, 5], get, found('v1', 2)),
  ]), 'ok', 'cas=0 creates only');
  t.equal(verdict([op(1, [0, 1], put('v1', 0), done(true)), op(2, [2, 3], put('v2', 0), done(true))]),
    'illegal', 'two creates cannot both win');
  t.equal(verdict([op(1, [0, 1], put('v1', 0), done(false))]), 'illegal', 'cas=0 on an absent key wins');
  t.equal(verdict([op(1, [0, 1], put('v1', 3), done(true))]), 'illegal', 'cas=N on an absent key fails');
});

t.test('DELETE and DELETE ?cas', async (t) => {
  const written = [op(1, [0, 1], put('v1'), done(true)), op(1, [2, 3], get, found('v1', 5))];
  t.equal(verdict([...written, op(2, [4, 5], del(), done(true)), op(2, [6, 7], get, notFound)]), 'ok');
  t.equal(verdict([...written, op(2, [4, 5], del(5), done(true)), op(2, [6, 7], get, notFound)]), 'ok',
    'delete ?cas on the current index');
  t.equal(verdict([...written, op(2, [4, 5], del(4), done(true))]), 'illegal', 'on another index');
  t.equal(verdict([...written, op(2, [4, 5], del(0), done(true))]), 'illegal',
    'cas=0 against an existing key is a mismatch');
  t.equal(verdict([...written, op(2, [4, 5], del(4), done(false)), op(2, [6, 7], get, found('v1', 5))]), 'ok',
    'a failed delete ?cas leaves the value');
  t.equal(verdict([op(1, [0, 1], del(7), done(true))]), 'ok', 'delete ?cas on an absent key is true');
  t.equal(verdict([op(1, [0, 1], del(7), done(false))]), 'illegal', '… never false');
  t.equal(verdict([op(1, [0, 1], del(), done(false))]), 'illegal', 'a plain delete is never false');
  const recreated = [
    ...written,
    op(2, [4, 5], del(), done(true)),
    op(2, [6, 7], put('v2'), done(true)),
  ];
  t.equal(verdict([...recreated, op(1, [8, 9], get, found('v2', 7))]), 'ok');
  t.equal(verdict([...recreated, op(1, [8, 9], get, found('v2', 6))]), 'illegal',
    'the delete took an index of its own');
});

t.test('a no-op PUT keeps the ModifyIndex (Consul ≥ 1.6)', async (t) => {
  t.equal(verdict([
    op(1, [0, 1], put('v1'), done(true)),
    op(1, [2, 3], get, found('v1', 5)),
    op(1, [4, 5], put('v1'), done(true)),
    op(1, [6, 7], get, found('v1', 5)),
  ]), 'ok');
});

t.test('keys are checked apart', async (t) => {
  const result = checkOperations(consulKvModel, [
    op(1, [0, 1], { op: 'put', key: 'a', value: 'a1' }, done(true)),
    op(1, [2, 3], { op: 'put', key: 'b', value: 'b1' }, done(true)),
    op(2, [4, 5], { op: 'get', key: 'a' }, found('a1', 2)),
    op(2, [6, 7], { op: 'get', key: 'b' }, notFound),
  ]);
  t.equal(result.verdict, 'illegal');
  t.equal(result.partitionCount, 2);
  t.same(result.illegalOperations?.map((operation) => operation.input.key), ['b', 'b']);
});

t.test('HTTP replies map to outputs', async (t) => {
  const entry = (value: string | null): string =>
    JSON.stringify([{ LockIndex: 0, Key: KEY, Flags: 0, Value: value, CreateIndex: 3, ModifyIndex: 9 }]);
  t.same(consulKvOutputFromHttp(get, null), unknown, 'no reply');
  t.same(consulKvOutputFromHttp(get, { status: 200, body: entry(Buffer.from('hé').toString('base64')) }),
    found('hé', 9));
  t.same(consulKvOutputFromHttp(get, { status: 200, body: entry(null) }), found('', 9), 'Value null');
  t.same(consulKvOutputFromHttp(get, { status: 404, body: '' }), notFound);
  t.same(consulKvOutputFromHttp(get, { status: 500, body: 'No cluster leader' }), unknown);
  t.same(consulKvOutputFromHttp(put('x'), { status: 200, body: 'true' }), done(true));
  t.same(consulKvOutputFromHttp(put('x', 4), { status: 200, body: 'false\n' }), done(false));
  t.same(consulKvOutputFromHttp(del(), { status: 500, body: 'timeout' }), unknown);
  t.same(consulKvOutputFromHttp(del(), { status: 500, body: 'No cluster leader', outcome: 'not-applied' }),
    notApplied);
  t.same(consulKvOutputFromHttp(put('x'), { status: 413, body: 'too large' }), notApplied);
  t.throws(() => consulKvOutputFromHttp(put('x'), { status: 200, body: 'ok' }), /200 with body/);
  t.throws(() => consulKvOutputFromHttp(get, { status: 200, body: '[]' }), /expected one entry/);
});
