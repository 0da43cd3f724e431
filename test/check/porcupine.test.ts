import t from 'tap';
import { AssertionError } from '../../src/lib/assert.js';
import { casRegisterModel, kvModel, registerModel } from './models.js';
import type { CasRegisterInput, CasRegisterOutput, RegisterInput, RegisterOutput } from './models.js';
import { checkOperations, checkPartition } from './porcupine.js';
import type { Operation } from './porcupine.js';
import { locateVectorsDirectory, parseJepsenEtcdLog, readVectorFile } from './vectors.js';

type RegisterOperation = Operation<RegisterInput, RegisterOutput>;

function registerOp(
  clientId: number,
  callTime: number,
  returnTime: number,
  input: RegisterInput,
  output: RegisterOutput,
): RegisterOperation {
  return { clientId, input, output, callTime, returnTime };
}

const read = { f: 'read' } as const;
const write = (value: number): RegisterInput => ({ f: 'write', value });
const sawValue = (value: number | null): RegisterOutput => ({ type: 'read', value });
const written: RegisterOutput = { type: 'written' };

t.test('register: the textbook cases', async (t) => {
  t.equal(checkOperations(registerModel, []).verdict, 'ok', 'the empty history');
  t.equal(checkOperations(registerModel, [
    registerOp(0, 0, 10, write(1), written),
    registerOp(1, 1, 2, read, sawValue(1)),
    registerOp(2, 3, 4, read, sawValue(null)),
  ]).verdict, 'illegal', 'a read may not go back to the old value after another saw the new one');
  t.equal(checkOperations(registerModel, [
    registerOp(0, 0, 10, write(1), written),
    registerOp(1, 1, 2, read, sawValue(null)),
    registerOp(2, 3, 4, read, sawValue(1)),
  ]).verdict, 'ok', 'old then new during the write');
  t.equal(checkOperations(registerModel, [
    registerOp(0, 0, 1, write(1), written),
    registerOp(1, 1, 2, read, sawValue(1)),
  ]).verdict, 'ok', 'touching at one instant counts as concurrent');
  t.equal(checkOperations(registerModel, [
    registerOp(0, 0, 1, write(1), written),
    registerOp(1, 2, 3, write(2), written),
    registerOp(2, 4, 5, read, sawValue(1)),
  ]).verdict, 'illegal', 'a stale read');
});

t.test('CAS register: Jepsen etcd semantics', async (t) => {
  const op = (
    clientId: number, callTime: number, returnTime: number,
    input: CasRegisterInput, output: CasRegisterOutput,
  ): Operation<CasRegisterInput, CasRegisterOutput> => ({ clientId, input, output, callTime, returnTime });
  const write1 = op(0, 0, 1, { f: 'write', value: 1 }, { type: 'ok' });
  t.equal(checkOperations(casRegisterModel, [
    write1, op(1, 2, 3, { f: 'cas', expected: 1, value: 2 }, { type: 'ok' }),
    op(2, 4, 5, { f: 'read' }, { type: 'read', value: 2 }),
  ]).verdict, 'ok');
  t.equal(checkOperations(casRegisterModel, [
    write1, op(1, 2, 3, { f: 'cas', expected: 1, value: 2 }, { type: 'fail' }),
  ]).verdict, 'illegal', 'a cas that matched cannot fail');
  t.equal(checkOperations(casRegisterModel, [
    write1, op(1, 2, Infinity, { f: 'cas', expected: 1, value: 2 }, { type: 'unknown' }),
    op(2, 4, 5, { f: 'read' }, { type: 'read', value: 1 }),
    op(2, 6, 7, { f: 'read' }, { type: 'read', value: 2 }),
  ]).verdict, 'ok', 'an unknown cas may land late');
  t.equal(checkOperations(casRegisterModel, [
    write1, op(1, 2, Infinity, { f: 'cas', expected: 3, value: 2 }, { type: 'unknown' }),
    op(2, 4, 5, { f: 'read' }, { type: 'read', value: 2 }),
  ]).verdict, 'illegal', 'but only if it could match');
});

t.test('budgets: running out gives unknown, never ok', async (t) => {
  const directory = locateVectorsDirectory();
  const history = parseJepsenEtcdLog(readVectorFile(directory, 'jepsen-etcd/etcd_002.log'));
  const bySteps = checkOperations(casRegisterModel, history, { stepsMax: 1000 });
  t.equal(bySteps.verdict, 'unknown');
  t.equal(bySteps.exhausted, 'steps');
  t.equal(bySteps.unknownPartitionCount, 1);
  t.ok(bySteps.steps <= 1001, 'stops at the step limit');
  const byTime = checkOperations(casRegisterModel, history, { timeoutMs: 1 });
  t.equal(byTime.verdict, 'unknown', 'a 1 ms budget cannot prove this history');
  t.equal(byTime.exhausted, 'time');
  const byMemory = checkOperations(casRegisterModel, history, { cacheBytesMax: 64 * 1024 });
  t.equal(byMemory.verdict, 'unknown', 'nor can a 64 KiB cache');
  t.equal(byMemory.exhausted, 'memory');
  t.equal(checkOperations(casRegisterModel, history).verdict, 'ok', 'the default budget can');
});

t.test('partitions: an illegal key wins over an undecided one', async (t) => {
  const history = [
    { clientId: 0, input: { f: 'put', key: 'a', value: 'x' }, output: { type: 'ok' }, callTime: 0, returnTime: 1 },
    { clientId: 1, input: { f: 'get', key: 'a' }, output: { type: 'get', value: 'y' }, callTime: 2, returnTime: 3 },
    { clientId: 2, input: { f: 'get', key: 'b' }, output: { type: 'get', value: '' }, callTime: 0, returnTime: 3 },
  ] as const;
  const result = checkOperations(kvModel, history);
  t.equal(result.verdict, 'illegal');
  t.equal(result.partitionCount, 2);
  t.equal(result.illegalOperations?.length, 2);
});

t.test('the longest linearization is reported on request', async (t) => {
  const history = [
    registerOp(0, 0, 1, write(1), written),
    registerOp(1, 2, 3, read, sawValue(1)),
    registerOp(1, 4, 5, read, sawValue(7)),
  ];
  const result = checkPartition(registerModel, history, {
    deadlineMs: performance.now() + 10_000, stepsMax: 1000, trackLongest: true,
  });
  t.equal(result.verdict, 'illegal');
  t.same(result.longestLinearization, [0, 1]);
});

t.test('malformed operations are programmer errors', async (t) => {
  t.throws(() => checkOperations(registerModel, [registerOp(0, 5, 4, read, sawValue(null))]), AssertionError);
  t.throws(() => checkOperations(registerModel, [registerOp(0, 0, 4, write(1), { type: 'unknown' })]),
    AssertionError, 'an unknown write must return at +Infinity');
});
