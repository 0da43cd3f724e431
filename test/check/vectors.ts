/**
 * Readers for the golden histories in shared/linearizability-vectors (formats in its README):
 * Jepsen etcd logs (a CAS register) and Porcupine's kv EDN logs (get/put/append). Histories carry
 * no clock, so an operation's times are the positions of its lines: the order is all that
 * matters to linearizability.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { assert } from '../../src/lib/assert.js';
import type { CasRegisterInput, CasRegisterOutput, KvInput, KvOutput } from './models.js';
import type { Operation } from './porcupine.js';

/** The environment variable naming the vectors directory when it is not next to the repo. */
export const VECTORS_DIR_ENV = 'CONCLAVE_VECTORS_DIR';

/**
 * Finds shared/linearizability-vectors: `../shared/linearizability-vectors` from the working
 * directory (the repo root when tests run), else $CONCLAVE_VECTORS_DIR. Throws if neither holds
 * expected.tsv, so a missing checkout fails the tests instead of skipping them.
 */
export function locateVectorsDirectory(cwd: string = process.cwd()): string {
  // The repository carries a copy (test/check/vectors-data, MIT data from Porcupine) so a clean
  // clone anywhere finds them; the shared folder beside the checkout and the env var also work.
  const candidates: string[] = [];
  const fromEnv = process.env[VECTORS_DIR_ENV];
  if (fromEnv !== undefined && fromEnv !== '') candidates.push(path.resolve(fromEnv));
  candidates.push(path.resolve(cwd, 'test', 'check', 'vectors-data'), path.resolve(cwd, '..', 'shared', 'linearizability-vectors'));
  for (const candidate of candidates) {
    if (existsSync(path.join(candidate, 'expected.tsv'))) return candidate;
  }
  const tried = candidates.join(' or ');
  throw new Error(`linearizability vectors not found in ${tried}; set ${VECTORS_DIR_ENV}`);
}

/** One row of expected.tsv: a file (relative to the vectors directory) and its verdict. */
export interface ExpectedVerdict {
  readonly file: string;
  readonly linearizable: boolean;
}

/** Parses expected.tsv (`file<TAB>expected_linearizable`, one header line). */
export function parseExpectedVerdicts(text: string): ExpectedVerdict[] {
  const lines = text.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  const header = lines.shift();
  assert(header !== undefined, 'expected.tsv is empty');
  if (header.split('\t')[0] !== 'file') throw new Error(`expected.tsv: bad header ${header}`);
  return lines.map((line, lineIndex) => {
    const [file, verdict, ...rest] = line.split('\t');
    if (file === undefined || rest.length > 0 || (verdict !== 'true' && verdict !== 'false')) {
      throw new Error(`expected.tsv line ${lineIndex + 2}: ${line}`);
    }
    return { file, linearizable: verdict === 'true' };
  });
}

/** The return time of a call whose outcome is unknown: it stays open to the end. */
const OPEN = Number.POSITIVE_INFINITY;

/** A call waiting for its completion line. */
interface PendingCall<I> {
  readonly clientId: number;
  readonly input: I;
  readonly callTime: number;
}

type CasRegisterOperation = Operation<CasRegisterInput, CasRegisterOutput>;

const JEPSEN_LINE = /jepsen\.util - (\d+)\s+:(invoke|ok|fail|info)\s+:(read|write|cas)\s+(.*?)\s*$/;

/**
 * Parses a Jepsen etcd log into CAS register operations. Only `jepsen.util - P :type :f value`
 * lines count. `:info` and calls never completed stay open (+Infinity, unknown outcome); a read
 * that failed with :timed-out has an unknown value.
 */
export function parseJepsenEtcdLog(text: string): CasRegisterOperation[] {
  const operations: CasRegisterOperation[] = [];
  const pending = new Map<number, PendingCall<CasRegisterInput>>();
  let time = 0;
  const lines = text.split('\n');
  for (let lineIndex = 0; lineIndex < lines.length; lineIndex++) {
    const match = JEPSEN_LINE.exec(lines[lineIndex] ?? '');
    if (match === null) continue;
    const [, processText, type, f, argument] = match;
    assert(processText !== undefined && type !== undefined && f !== undefined);
    const where = `line ${lineIndex + 1}`;
    const clientId = Number(processText);
    time += 1;
    if (type === 'invoke') {
      if (pending.has(clientId)) throw new Error(`${where}: process ${clientId} invoked twice`);
      const input = parseJepsenInput(f, argument ?? '', where);
      pending.set(clientId, { clientId, input, callTime: time });
      continue;
    }
    const call = pending.get(clientId);
    if (call === undefined) throw new Error(`${where}: completion without a call`);
    if (call.input.f !== f) throw new Error(`${where}: completes :${call.input.f} with :${f}`);
    pending.delete(clientId);
    const output = parseJepsenOutput(call.input, type, argument ?? '', where);
    const returnTime = output.type === 'unknown' && f !== 'read' ? OPEN : time;
    operations.push({ ...call, output, returnTime });
  }
  for (const call of pending.values()) {
    operations.push({ ...call, output: { type: 'unknown' }, returnTime: OPEN });
  }
  return operations;
}

function parseJepsenInteger(text: string, where: string): number {
  if (!/^-?\d+$/.test(text)) throw new Error(`${where}: expected an integer, got ${text}`);
  return Number(text);
}

function parseJepsenInput(f: string, argument: string, where: string): CasRegisterInput {
  if (f === 'read') return { f: 'read' };
  if (f === 'write') return { f: 'write', value: parseJepsenInteger(argument, where) };
  const pair = /^\[(-?\d+) (-?\d+)\]$/.exec(argument);
  if (pair === null) throw new Error(`${where}: expected [A B], got ${argument}`);
  return {
    f: 'cas',
    expected: parseJepsenInteger(pair[1] ?? '', where),
    value: parseJepsenInteger(pair[2] ?? '', where),
  };
}

function parseJepsenOutput(
  input: CasRegisterInput,
  type: string,
  argument: string,
  where: string,
): CasRegisterOutput {
  if (type === 'info') return { type: 'unknown' };
  if (input.f === 'read') {
    if (type === 'fail') return { type: 'unknown' }; // :timed-out: the value is unknown
    return { type: 'read', value: argument === 'nil' ? null : parseJepsenInteger(argument, where) };
  }
  return type === 'ok' ? { type: 'ok' } : { type: 'fail' };
}

type KvOperation = Operation<KvInput, KvOutput>;

/** An EDN scalar as the kv logs use them: a keyword (without its colon), string, integer, nil. */
type EdnScalar = { readonly keyword: string } | string | number | null | boolean;

/**
 * Parses one flat EDN map of scalars, e.g. `{:process 0, :type :ok, :key "4", :value nil}`.
 * Keys must be keywords. Nested collections are not needed by the vectors and are rejected.
 */
export function parseEdnMap(line: string): Map<string, EdnScalar> {
  const tokens = tokenizeEdn(line);
  if (tokens.shift() !== '{' || tokens.pop() !== '}') throw new Error(`not an EDN map: ${line}`);
  if (tokens.length % 2 !== 0) throw new Error(`odd EDN map: ${line}`);
  const map = new Map<string, EdnScalar>();
  for (let index = 0; index < tokens.length; index += 2) {
    const key = ednScalar(tokens[index] ?? '');
    if (typeof key !== 'object' || key === null) {
      throw new Error(`EDN key is not a keyword: ${line}`);
    }
    map.set(key.keyword, ednScalar(tokens[index + 1] ?? ''));
  }
  return map;
}

/** Splits EDN into tokens; strings stay quoted (with escapes) so ednScalar can tell them apart. */
function tokenizeEdn(text: string): string[] {
  const tokens: string[] = [];
  let index = 0;
  while (index < text.length) {
    const char = text[index] ?? '';
    if (/[\s,]/.test(char)) {
      index += 1;
    } else if (char === '{' || char === '}') {
      tokens.push(char);
      index += 1;
    } else if (char === '"') {
      let end = index + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (end >= text.length) throw new Error(`unterminated EDN string: ${text}`);
      tokens.push(text.slice(index, end + 1));
      index = end + 1;
    } else {
      let end = index;
      while (end < text.length && !/[\s,{}"]/.test(text[end] ?? '')) end += 1;
      tokens.push(text.slice(index, end));
      index = end;
    }
  }
  return tokens;
}

function ednScalar(token: string): EdnScalar {
  if (token.startsWith('"')) return JSON.parse(token) as string; // EDN's escapes are JSON's here
  if (token.startsWith(':') && token.length > 1) return { keyword: token.slice(1) };
  if (token === 'nil') return null;
  if (token === 'true' || token === 'false') return token === 'true';
  if (/^-?\d+$/.test(token)) return Number(token);
  throw new Error(`unsupported EDN token: ${token}`);
}

function ednKeyword(map: Map<string, EdnScalar>, key: string, where: string): string {
  const value = map.get(key);
  if (typeof value !== 'object' || value === null) {
    throw new Error(`${where}: :${key} is not a keyword`);
  }
  return value.keyword;
}

function ednString(map: Map<string, EdnScalar>, key: string, where: string): string {
  const value = map.get(key);
  if (typeof value !== 'string') throw new Error(`${where}: :${key} is not a string`);
  return value;
}

/**
 * Parses Porcupine's kv logs: one EDN map per line with :process, :type (:invoke, :ok, also
 * :fail = no effect, dropped, and :info = unknown), :f (:get, :put, :append), :key, :value.
 */
export function parseKvEdnLog(text: string): KvOperation[] {
  const operations: KvOperation[] = [];
  const pending = new Map<number, PendingCall<KvInput>>();
  const lines = text.split('\n');
  let time = 0;
  for (let lineIndex = 0; lineIndex < lines.length; lineIndex++) {
    const line = (lines[lineIndex] ?? '').trim();
    if (line === '') continue;
    const where = `line ${lineIndex + 1}`;
    const map = parseEdnMap(line);
    const clientId = map.get('process');
    if (typeof clientId !== 'number') throw new Error(`${where}: :process is not an integer`);
    const type = ednKeyword(map, 'type', where);
    time += 1;
    if (type === 'invoke') {
      if (pending.has(clientId)) throw new Error(`${where}: process ${clientId} invoked twice`);
      pending.set(clientId, { clientId, input: parseKvInput(map, where), callTime: time });
      continue;
    }
    const call = pending.get(clientId);
    if (call === undefined) throw new Error(`${where}: completion without a call`);
    pending.delete(clientId);
    if (type === 'fail') continue; // definitely no effect: as if never called
    if (type === 'info') {
      operations.push({ ...call, output: { type: 'unknown' }, returnTime: OPEN });
    } else if (type === 'ok') {
      const output: KvOutput = call.input.f === 'get'
        ? { type: 'get', value: ednString(map, 'value', where) }
        : { type: 'ok' };
      operations.push({ ...call, output, returnTime: time });
    } else {
      throw new Error(`${where}: unknown :type :${type}`);
    }
  }
  for (const call of pending.values()) {
    operations.push({ ...call, output: { type: 'unknown' }, returnTime: OPEN });
  }
  return operations;
}

function parseKvInput(map: Map<string, EdnScalar>, where: string): KvInput {
  const f = ednKeyword(map, 'f', where);
  const key = ednString(map, 'key', where);
  if (f === 'get') return { f, key };
  if (f === 'put' || f === 'append') return { f, key, value: ednString(map, 'value', where) };
  throw new Error(`${where}: unknown :f :${f}`);
}

/** Reads a vector file (path relative to the vectors directory) as text. */
export function readVectorFile(vectorsDirectory: string, file: string): string {
  return readFileSync(path.join(vectorsDirectory, file), 'utf8');
}
