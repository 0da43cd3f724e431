import t from 'tap';
import { casRegisterModel, kvModel } from './models.js';
import { checkOperations } from './porcupine.js';
import type { CheckResult } from './porcupine.js';
import {
  locateVectorsDirectory, parseEdnMap, parseExpectedVerdicts, parseJepsenEtcdLog, parseKvEdnLog,
  readVectorFile,
} from './vectors.js';
import type { ExpectedVerdict } from './vectors.js';

// Generous: the whole suite takes about two seconds here. Running out gives 'unknown', which
// fails the verdict comparison below, so a slow checker can never pass.
const VECTOR_TIMEOUT_MS = 60_000;

const directory = locateVectorsDirectory();
const labelled = parseExpectedVerdicts(readVectorFile(directory, 'expected.tsv'));
/** The kv runs are required whether or not expected.tsv lists them. */
const kvFiles: ExpectedVerdict[] = ['c01', 'c10', 'c50'].flatMap((clients) => [
  { file: `kv/${clients}-ok.txt`, linearizable: true },
  { file: `kv/${clients}-bad.txt`, linearizable: false },
]);

function checkVector(file: string): CheckResult<unknown, unknown> {
  const text = readVectorFile(directory, file);
  if (file.startsWith('kv/')) {
    return checkOperations(kvModel, parseKvEdnLog(text), { timeoutMs: VECTOR_TIMEOUT_MS });
  }
  return checkOperations(casRegisterModel, parseJepsenEtcdLog(text), { timeoutMs: VECTOR_TIMEOUT_MS });
}

t.test('expected.tsv has the documented labels', async (t) => {
  const jepsen = labelled.filter((row) => row.file.startsWith('jepsen-etcd/'));
  t.equal(jepsen.length, 102, '102 labelled Jepsen etcd logs');
  t.equal(jepsen.filter((row) => row.linearizable).length, 23, '23 of them linearizable');
  t.notOk(labelled.some((row) => row.file.endsWith('etcd_095.log')), 'etcd_095 is unlabelled');
  for (const kv of kvFiles) {
    const row = labelled.find((candidate) => candidate.file === kv.file);
    if (row !== undefined) t.equal(row.linearizable, kv.linearizable, `${kv.file} label`);
  }
});

t.test('every labelled history gets exactly its expected verdict', async (t) => {
  const files = [...labelled];
  for (const kv of kvFiles) if (!files.some((row) => row.file === kv.file)) files.push(kv);
  const suiteStartMs = performance.now();
  for (const { file, linearizable } of files) {
    const result = checkVector(file);
    t.equal(result.verdict, linearizable ? 'ok' : 'illegal', file);
    if (file.startsWith('kv/c50')) {
      t.comment(`${file}: ${result.verdict} in ${result.elapsedMs.toFixed(0)} ms, ${result.steps} steps`);
    }
  }
  t.comment(`${files.length} vectors in ${(performance.now() - suiteStartMs).toFixed(0)} ms`);
});

t.test('the unlabelled etcd_095 (empty) is a linearizable empty history', async (t) => {
  const operations = parseJepsenEtcdLog(readVectorFile(directory, 'jepsen-etcd/etcd_095.log'));
  t.equal(checkOperations(casRegisterModel, operations).verdict, 'ok');
});

t.test('Jepsen log parsing', async (t) => {
  const log = [
    'INFO  jepsen.util - 0\t:invoke\t:read\tnil',
    'INFO  jepsen.util - 1\t:invoke\t:cas\t[1 4]',
    'INFO  jepsen.util - 2\t:invoke\t:write\t3',
    'some other line',
    'INFO  jepsen.util - 0\t:ok\t:read\tnil',
    'INFO  jepsen.util - 1\t:fail\t:cas\t[1 4]',
    'INFO  jepsen.util - 2\t:info\t:write\t:timed-out',
    'INFO  jepsen.util - 3\t:invoke\t:read\tnil',
    'INFO  jepsen.util - 3\t:fail\t:read\t:timed-out',
    'INFO  jepsen.util - 4\t:invoke\t:write\t1',
  ].join('\n');
  const operations = parseJepsenEtcdLog(log);
  t.same(operations, [
    { clientId: 0, input: { f: 'read' }, output: { type: 'read', value: null }, callTime: 1, returnTime: 4 },
    { clientId: 1, input: { f: 'cas', expected: 1, value: 4 }, output: { type: 'fail' }, callTime: 2, returnTime: 5 },
    { clientId: 2, input: { f: 'write', value: 3 }, output: { type: 'unknown' }, callTime: 3, returnTime: Infinity },
    { clientId: 3, input: { f: 'read' }, output: { type: 'unknown' }, callTime: 7, returnTime: 8 },
    { clientId: 4, input: { f: 'write', value: 1 }, output: { type: 'unknown' }, callTime: 9, returnTime: Infinity },
  ]);
  t.throws(() => parseJepsenEtcdLog('INFO  jepsen.util - 0\t:ok\t:read\t1'), /without a call/);
});

t.test('kv EDN parsing', async (t) => {
  const map = parseEdnMap('{:process 12, :type :ok, :f :get, :key "a \\"b\\"", :value nil}');
  t.same([...map.entries()], [
    ['process', 12], ['type', { keyword: 'ok' }], ['f', { keyword: 'get' }],
    ['key', 'a "b"'], ['value', null],
  ]);
  const log = [
    '{:process 0, :type :invoke, :f :append, :key "1", :value "x 0 0 y"}',
    '{:process 1, :type :invoke, :f :get, :key "1", :value nil}',
    '{:process 0, :type :ok, :f :append, :key "1", :value "x 0 0 y"}',
    '{:process 1, :type :ok, :f :get, :key "1", :value "x 0 0 y"}',
  ].join('\n');
  t.same(parseKvEdnLog(log), [
    { clientId: 0, input: { f: 'append', key: '1', value: 'x 0 0 y' }, output: { type: 'ok' }, callTime: 1, returnTime: 3 },
    { clientId: 1, input: { f: 'get', key: '1' }, output: { type: 'get', value: 'x 0 0 y' }, callTime: 2, returnTime: 4 },
  ]);
  t.throws(() => parseEdnMap('{:a [1]}'), /unsupported EDN token/);
});
