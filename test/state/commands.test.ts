import t from 'tap';
import { AssertionError } from '../../src/lib/assert.js';
import { Prng } from '../../src/lib/prng.js';
import { COMMAND_TYPES, decodeCommand, encodeCommand, parseCommand, readCommandFieldByField } from '../../src/state/commands.js';
import type { Command, NodeRegisterCommand } from '../../src/state/commands.js';
import { expectObject, statePackr, stateUnpackr } from '../../src/state/wire.js';
import { acquire, bytes, createSessionCommand, del, put, putCas, registerNode, txn } from './helpers.js';
import type { Unstamped } from './helpers.js';

const SEMAPHORE_FLAG = 16210313421097356768n;
const WEB = {
  serviceId: 'web-1', service: 'web', tags: ['v1'], address: '', meta: { a: 'b' }, port: 80, weights: { passing: 1, warning: 1 }, enableTagOverride: false,
};
const stamp = (command: Unstamped): Command => ({ ...command, nowMs: 1_700_000_000_123 }) as Command;

t.test('every command type round-trips', async (t) => {
  const commands: Command[] = [
    stamp(put('a', 'x', 3304740253564472344n)),
    stamp(putCas('a', 'x', 18446744073709551615n)),
    stamp(acquire('a', 's1')),
    stamp(del('a', { cas: 5n })),
    stamp(del('', { recurse: true })),
    stamp(txn([{ verb: 'set', key: 'k', value: bytes('v'), flags: SEMAPHORE_FLAG }, { verb: 'bogus', key: 'x' }])),
    stamp(createSessionCommand('s1', 'n1', { ttl: '1m30s', ttlNs: 90_000_000_000 })),
    stamp({ type: 'session-destroy', id: 's1' }),
    stamp(registerNode('n1')),
    stamp({ type: 'node-deregister', node: 'n1' }),
    stamp({ type: 'check-update', node: 'n1', checkId: 'serfHealth', status: 'critical', output: 'down' }),
    stamp({ type: 'check-deregister', node: 'n1', checkId: 'serfHealth' }),
    stamp({ type: 'tombstone-reap', reapIndex: 10 }),
    stamp({ ...(registerNode('n1') as Omit<NodeRegisterCommand, 'nowMs'>), service: WEB }),
    stamp({ type: 'service-deregister', node: 'n1', serviceId: 'web-1' }),
    stamp({ type: 'node-sync', node: 'n1', services: [WEB], checks: [] }),
    stamp({ type: 'restore-begin', restoreId: 'r', totalBytes: 3, sha256: 'a'.repeat(64) }),
    stamp({ type: 'restore-chunk', restoreId: 'r', offset: 0, data: new Uint8Array([1, 2, 3]) }),
    stamp({ type: 'restore-commit', restoreId: 'r' }),
  ];
  t.same(new Set(commands.map((c) => c.type)), new Set(COMMAND_TYPES), 'the list covers every type');
  for (const command of commands) t.same(decodeCommand(encodeCommand(command)), command, command.type);
});

t.test('uint64 flags and cas indexes are lossless', async (t) => {
  for (const flags of [0n, 1n, 3304740253564472344n, SEMAPHORE_FLAG, 18446744073709551615n]) {
    const decoded = decodeCommand(encodeCommand(stamp(put('k', 'v', flags))));
    t.equal(decoded.type === 'kv-set' && decoded.flags, flags, `flags ${flags}`);
    t.equal(typeof (decoded.type === 'kv-set' && decoded.flags), 'bigint');
  }
  t.throws(() => encodeCommand(stamp(put('k', 'v', 1n << 64n))), AssertionError, 'beyond uint64');
  t.throws(() => encodeCommand(stamp(put('k', 'v', -1n))), AssertionError, 'negative');
});

t.test('values: bytes become plain Uint8Arrays, empty becomes null', async (t) => {
  const decoded = decodeCommand(encodeCommand(stamp({ ...put('k'), value: Buffer.from('abc') } as Unstamped)));
  t.ok(decoded.type === 'kv-set' && Object.getPrototypeOf(decoded.value) === Uint8Array.prototype);
  const empty = decodeCommand(encodeCommand(stamp({ ...put('k'), value: new Uint8Array(0) } as Unstamped)));
  t.equal(empty.type === 'kv-set' && empty.value, null);
});

t.test('decoding asserts on malformed commands', async (t) => {
  const raw = (value: unknown): Uint8Array => statePackr.pack(value);
  t.throws(() => decodeCommand(new Uint8Array(0)), AssertionError);
  t.throws(() => decodeCommand(raw([1, 2])), AssertionError, 'not an object');
  t.throws(() => decodeCommand(raw({ type: 'nope', nowMs: 1 })), AssertionError, 'unknown type');
  t.throws(() => decodeCommand(raw({ ...stamp(put('k')), flags: 5 })), AssertionError, 'flags as a number');
  t.throws(() => decodeCommand(raw({ ...stamp(put('k')), nowMs: -1 })), AssertionError, 'negative clock');
  t.throws(() => decodeCommand(raw({ ...stamp(put('k')), key: '' })), AssertionError, 'empty key');
  t.throws(() => encodeCommand(stamp(put('a\ud800'))), AssertionError, 'lone surrogate (msgpack would turn it into U+FFFD)');
  t.throws(() => decodeCommand(raw({ ...stamp(del('k')), recurse: true, casIndex: 1n })), AssertionError, 'recurse + cas');
  t.throws(() => encodeCommand(stamp({ type: 'txn', ops: [] })), AssertionError, 'empty txn');
  t.throws(() => encodeCommand(stamp({ ...put('k'), value: new Uint8Array(512 * 1024 + 1) } as Unstamped)), AssertionError, 'value too large');
  t.throws(() => encodeCommand(stamp({ ...createSessionCommand('s', 'n'), behavior: 'x' } as unknown as Unstamped)), AssertionError);
});

t.test('decoding drops unknown fields', async (t) => {
  const decoded = decodeCommand(statePackr.pack({ ...stamp(put('k')), extra: 1 }));
  t.notOk('extra' in decoded);
});

/** What the general path (msgpackr, then parseCommand) makes of `bytes`, or 'throws'. */
function generalDecode(bytes: Uint8Array): Command | 'throws' {
  try {
    return parseCommand(expectObject(stateUnpackr.unpack(bytes), 'command'));
  } catch {
    return 'throws';
  }
}

function fastDecode(bytes: Uint8Array): Command | 'throws' {
  try {
    return decodeCommand(bytes);
  } catch {
    return 'throws';
  }
}

/** True when readCommandFieldByField decodes `bytes` itself (it asserts on a bad field, declines other shapes). */
function takesFieldPath(bytes: Uint8Array): boolean {
  try {
    return readCommandFieldByField(bytes) !== null;
  } catch {
    return false;
  }
}

function randomTxnOp(prng: Prng): Record<string, unknown> {
  return {
    verb: prng.pick(['set', 'cas', 'get', 'delete-tree', 'lock', 'bogus']),
    key: prng.pick(['', 'k', 'bench/key/000123', 'a/\u00e9/\u{1f600}', 'x'.repeat(300)]),
    value: prng.chance(0.2) ? null : new Uint8Array(prng.pick([0, 1, 100, 5000])).fill(prng.nextInt(256)),
    flags: prng.pick([0n, 1n, 2n ** 53n + 1n, SEMAPHORE_FLAG, 2n ** 64n - 1n]),
    index: prng.pick([0n, 7n, 2n ** 63n]),
    session: prng.chance(0.5) ? '' : 'a1b2c3d4-0000-4000-8000-000000000000',
  };
}

/** One way to spoil a txn on the wire, or none. */
function perturbed(prng: Prng, command: Record<string, unknown>): Record<string, unknown> {
  const ops = command['ops'] as Record<string, unknown>[];
  const op = ops[0] as Record<string, unknown>;
  switch (prng.nextInt(12)) {
    case 0: return { ...command, ops: [{ ...op, flags: 5 }, ...ops.slice(1)] };
    case 1: return { ...command, ops: [{ ...op, key: 5 }, ...ops.slice(1)] };
    case 2: return { ...command, ops: [{ ...op, value: 'text' }, ...ops.slice(1)] };
    case 3: { const { session: _, ...rest } = op; return { ...command, ops: [rest, ...ops.slice(1)] }; }
    case 4: return { ...command, ops: [{ ...op, extra: 1 }, ...ops.slice(1)] };
    case 5: return { ...command, extra: 'x' };
    case 6: return { nowMs: command['nowMs'], type: 'txn', ops }; // type not first
    case 7: return { ...command, ops: [] };
    case 8: return { ...command, ops: Array.from({ length: 129 }, () => op) };
    case 9: return { ...command, nowMs: -1 };
    case 10: return { ...command, ops: [{ session: op['session'], verb: op['verb'], key: op['key'], value: op['value'], flags: op['flags'], index: op['index'] }] };
    default: return command;
  }
}

/**
 * Packs `count` wire objects from `next` and decodes each both ways: how many took the
 * field-by-field path, and how many decoded differently from the general path (or refused where
 * it did not).
 */
function compareWithGeneralPath(count: number, next: () => Record<string, unknown>): { fast: number; mismatches: number } {
  let fast = 0;
  let mismatches = 0;
  for (let i = 0; i < count; i++) {
    const bytes = Uint8Array.from(statePackr.pack(next()));
    if (takesFieldPath(bytes)) fast++;
    if (JSON.stringify(fastDecode(bytes), bigintJson) !== JSON.stringify(generalDecode(bytes), bigintJson)) mismatches++;
  }
  return { fast, mismatches };
}

t.test('txns read field by field decode exactly as the general path, or fail where it fails', async (t) => {
  const prng = new Prng(61n);
  const { fast, mismatches } = compareWithGeneralPath(1500, () => {
    const command: Record<string, unknown> = { type: 'txn', nowMs: prng.pick([0, 1_700_000_000_123]), ops: Array.from({ length: prng.pick([1, 2, 15, 16, 64, 128]) }, () => randomTxnOp(prng)) };
    if (prng.chance(0.3)) command['checkedIndex'] = prng.nextInt(1_000_000);
    return prng.chance(0.4) ? perturbed(prng, command) : command;
  });
  t.equal(mismatches, 0, 'the same command, or both refuse');
  t.ok(fast > 800, `${fast} of 1500 took the field-by-field path`);
  const canonical = encodeCommand(stamp(txn([{ verb: 'set', key: 'k', value: bytes('v') }])));
  t.not(readCommandFieldByField(canonical), null, 'encodeCommand\'s txns take it');
});

function randomKvSet(prng: Prng): Record<string, unknown> {
  const session = prng.chance(0.5) ? '' : 'a1b2c3d4-0000-4000-8000-000000000000';
  const verb = prng.pick([
    { kind: 'set' }, { kind: 'cas', index: prng.pick([0n, 7n, 2n ** 63n, 2n ** 64n - 1n]) }, { kind: 'acquire', session }, { kind: 'release', session },
  ]);
  const command: Record<string, unknown> = {
    type: 'kv-set',
    nowMs: prng.pick([0, 127, 128, 65_536, 1_700_000_000_123]),
    key: prng.pick(['k', 'bench/key/000123', 'a/\u00e9/\u{1f600}', 'x'.repeat(300)]),
    value: prng.chance(0.2) ? null : new Uint8Array(prng.pick([0, 1, 100, 255, 256, 70_000])).fill(prng.nextInt(256)),
    flags: prng.pick([0n, 1n, 2n ** 53n + 1n, SEMAPHORE_FLAG, 2n ** 64n - 1n]),
    verb,
  };
  if (prng.chance(0.3)) command['checkedIndex'] = prng.pick([0, 200, 2 ** 40]);
  return command;
}

/** One way to spoil a kv-set on the wire, or none. */
function perturbedKvSet(prng: Prng, command: Record<string, unknown>): Record<string, unknown> {
  const verb = command['verb'] as Record<string, unknown>;
  switch (prng.nextInt(14)) {
    case 0: return { ...command, flags: 5 };
    case 1: return { ...command, key: '' };
    case 2: return { ...command, value: 'text' };
    case 3: { const { flags: _, ...rest } = command; return rest; }
    case 4: return { ...command, verb: { ...verb, extra: 1 } };
    case 5: return { ...command, extra: 'x' };
    case 6: return { nowMs: command['nowMs'], ...command }; // nowMs first
    case 7: return { ...command, verb: { kind: 'bogus' } };
    case 8: return { ...command, verb: { kind: 'cas' } };
    case 9: return { ...command, nowMs: -1 };
    case 10: return { ...command, verb: { session: 's', kind: 'acquire' } };
    case 11: return { ...command, key: 'a\ud800' };
    case 12: return { ...command, value: new Uint8Array(512 * 1024 + 1) };
    default: return command;
  }
}

t.test('kv-sets read field by field decode exactly as the general path, or fail where it fails', async (t) => {
  const prng = new Prng(67n);
  const { fast, mismatches } = compareWithGeneralPath(2000, () => {
    const command = randomKvSet(prng);
    return prng.chance(0.5) ? perturbedKvSet(prng, command) : command;
  });
  t.equal(mismatches, 0, 'the same command, or both refuse');
  t.ok(fast > 1000, `${fast} of 2000 took the field-by-field path`);
});

t.test('kv-sets are written byte for byte as msgpackr packs the parsed command', async (t) => {
  const prng = new Prng(71n);
  let mismatches = 0;
  for (let i = 0; i < 2000; i++) {
    const command = parseCommand(randomKvSet(prng));
    const ours = encodeCommand(command);
    if (Buffer.compare(ours, statePackr.pack(command)) !== 0) mismatches++;
    if (JSON.stringify(decodeCommand(ours), bigintJson) !== JSON.stringify(command, bigintJson)) mismatches++;
    if (readCommandFieldByField(ours) === null) mismatches++;
  }
  t.equal(mismatches, 0);
  t.throws(() => encodeCommand(stamp({ ...put('k'), key: 'x'.repeat(1100 * 1024) } as Unstamped)), AssertionError, 'over COMMAND_BYTES_MAX');
});

function bigintJson(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return `bytes:${Buffer.from(value).toString('hex')}`;
  return value;
}
