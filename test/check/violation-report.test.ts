import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { casRegisterModel, consulKvModel } from './models.js';
import type { ConsulKvInput, ConsulKvOutput } from './models.js';
import { checkOperations, checkPartition } from './porcupine.js';
import type { Operation } from './porcupine.js';
import { locateVectorsDirectory, parseJepsenEtcdLog, readVectorFile } from './vectors.js';
import { writeViolationReport } from './violation-report.js';

type KvOperation = Operation<ConsulKvInput, ConsulKvOutput>;

/**
 * Three clients write and read key k in turn; client 2's read at time 40 sees v1 again after v4
 * was acknowledged: a stale read buried in correct traffic. Key j is traffic on another key.
 */
function staleReadHistory(): KvOperation[] {
  const history: KvOperation[] = [];
  let time = 0;
  let index = 10;
  const add = (clientId: number, input: ConsulKvInput, output: ConsulKvOutput): void => {
    history.push({ clientId, input, output, callTime: time, returnTime: time + 3 });
    time += 2; // overlaps the next call by one tick
  };
  for (let round = 1; round <= 6; round++) {
    index += 2;
    add(round % 3, { op: 'put', key: 'k', value: `v${round}` }, { type: 'done', ok: true });
    add((round + 1) % 3, { op: 'get', key: 'j' }, { type: 'not-found' });
    time += 2;
    add((round + 2) % 3, { op: 'get', key: 'k' }, { type: 'found', value: `v${round}`, modifyIndex: index });
    time += 2;
    if (round === 4) add(2, { op: 'get', key: 'k' }, { type: 'found', value: 'v1', modifyIndex: 12 });
  }
  return history;
}

t.test('a Consul KV stale read is reported with the failing operations', async (t) => {
  const history = staleReadHistory();
  const result = checkOperations(consulKvModel, history);
  t.equal(result.verdict, 'illegal');
  const illegal = result.illegalOperations;
  if (illegal === null) throw new Error('no illegal partition');
  const filePath = path.join(t.testdir(), 'reports', 'stale-read.txt');
  const report = writeViolationReport(filePath, consulKvModel, illegal, { title: 'stale read test' });

  const text = readFileSync(filePath, 'utf8');
  t.equal(text, report.text, 'the file holds the report');
  t.match(text, /^stale read test\nmodel: consul-kv\n/);
  t.match(text, /GET k -> "v1" @12 {3}<- cannot be placed/, 'names the stale read');
  t.match(text, /PUT k "v1" -> true/, 'keeps the write of the value it saw');
  t.match(text, /PUT k "v[2-4]" -> true/, 'shows an acknowledged write it missed');
  t.match(text, /Lanes \(time runs left to right/);
  t.match(text, /client \d+ +\[#\d/, 'draws lanes');
  t.match(text, /Longest linearizable order found: #\d/);
  t.ok(report.shrunk.minimal, 'shrunk to a 1-minimal history');
  t.ok(report.shrunk.operations.length <= 4, `small: ${report.shrunk.operations.length} operations`);
  t.ok(report.shrunk.operations.length < illegal.length, 'smaller than the partition');
  const recheck = checkPartition(consulKvModel, report.shrunk.operations, {
    deadlineMs: performance.now() + 10_000, stepsMax: 1_000_000,
  });
  t.equal(recheck.verdict, 'illegal', 'the shrunk history is still illegal');
  t.comment(text);
});

t.test('a Jepsen etcd violation shrinks to a few operations', async (t) => {
  const directory = locateVectorsDirectory();
  const history = parseJepsenEtcdLog(readVectorFile(directory, 'jepsen-etcd/etcd_000.log'));
  const result = checkOperations(casRegisterModel, history);
  t.equal(result.verdict, 'illegal');
  if (result.illegalOperations === null) throw new Error('no illegal partition');
  const filePath = path.join(t.testdir(), 'etcd_000.txt');
  const report = writeViolationReport(filePath, casRegisterModel, result.illegalOperations);
  t.ok(report.shrunk.operations.length < 20, `shrunk to ${report.shrunk.operations.length}`);
  t.ok(report.shrunk.prefixCount < history.length, 'the illegal prefix is shorter than the history');
  const text = readFileSync(filePath, 'utf8');
  for (const operation of report.shrunk.operations) {
    const described = casRegisterModel.describeOperation?.(operation.input, operation.output) ?? '';
    t.ok(text.includes(described), `lists ${described}`);
  }
  t.comment(text);
});

t.test('an undecidable partition is reported unshrunk, not called a violation', async (t) => {
  const directory = locateVectorsDirectory();
  const history = parseJepsenEtcdLog(readVectorFile(directory, 'jepsen-etcd/etcd_002.log'));
  const filePath = path.join(t.testdir(), 'undecided.txt');
  const report = writeViolationReport(filePath, casRegisterModel, history, {
    shrink: { checkStepsMax: 100 },
  });
  t.equal(report.shrunk.initialVerdict, 'unknown');
  t.equal(report.shrunk.operations.length, history.length);
  t.match(readFileSync(filePath, 'utf8'), /not shrunk: re-checking the \d+ operations gave 'unknown'/);
});
