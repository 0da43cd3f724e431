/**
 * Test harness for the state machine: applies commands at increasing Raft indexes through the
 * real encode → apply path, with a hand-driven leader clock, plus command builders.
 */
import { encodeCommand } from '../../src/state/commands.js';
import type { CheckDefinition, Command, HealthStatus, SessionBehavior, TxnKvOp } from '../../src/state/commands.js';
import { StateMachine } from '../../src/state/fsm.js';
import type { ApplyResult, StateMachineOptions } from '../../src/state/fsm.js';

/** A command without its clock: the harness stamps `nowMs`. */
export type Unstamped = Command extends infer C ? (C extends Command ? Omit<C, 'nowMs'> : never) : never;

/** The harness's starting leader clock. */
export const START_MS = 1_700_000_000_000;

/** Drives one StateMachine. */
export class Harness {
  readonly fsm: StateMachine;
  /** The Raft index of the last applied command. */
  index = 0;
  /** The leader clock stamped on the next command. */
  nowMs = START_MS;

  constructor(options: StateMachineOptions = {}) {
    this.fsm = new StateMachine(options);
  }

  /** Encodes and applies at the next index. */
  apply(command: Unstamped, gap = 1): ApplyResult {
    this.index += gap;
    return this.fsm.apply(this.index, encodeCommand({ ...command, nowMs: this.nowMs } as Command));
  }

  /** Applies and expects a boolean result. */
  bool(command: Unstamped): boolean {
    const result = this.apply(command);
    if (result.kind !== 'bool') throw new Error(`expected bool, got ${JSON.stringify(result)}`);
    return result.value;
  }

  /** Applies and expects `done`. */
  done(command: Unstamped): void {
    const result = this.apply(command);
    if (result.kind !== 'done') throw new Error(`expected done, got ${JSON.stringify(result)}`);
  }

  /** The entry under `key`, or throws. */
  entry(key: string) {
    const entry = this.fsm.getKey(key);
    if (entry === undefined) throw new Error(`no key ${key}`);
    return entry;
  }

  /** Registers a node with a serfHealth check in `status`, then creates a session on it. */
  nodeAndSession(node: string, session: string, options: SessionOptions = {}): void {
    this.done(registerNode(node, 'passing'));
    const result = this.apply(createSessionCommand(session, node, options));
    if (result.kind !== 'session') throw new Error(`session create failed: ${JSON.stringify(result)}`);
  }
}

/** UTF-8 bytes of a string; undefined/null → null. */
export function bytes(text: string | null | undefined): Uint8Array | null {
  return text === null || text === undefined ? null : new TextEncoder().encode(text);
}

/** The string of stored bytes (null → null). */
export function text(value: Uint8Array | null): string | null {
  return value === null ? null : new TextDecoder().decode(value);
}

/** Plain PUT. */
export function put(key: string, value: string | null = 'v', flags = 0n): Unstamped {
  return { type: 'kv-set', key, value: bytes(value), flags, verb: { kind: 'set' } };
}

/** PUT ?cas=. */
export function putCas(key: string, value: string | null, index: bigint, flags = 0n): Unstamped {
  return { type: 'kv-set', key, value: bytes(value), flags, verb: { kind: 'cas', index } };
}

/** PUT ?acquire=. */
export function acquire(key: string, session: string, value: string | null = 'locked', flags = 0n): Unstamped {
  return { type: 'kv-set', key, value: bytes(value), flags, verb: { kind: 'acquire', session } };
}

/** PUT ?release=. */
export function release(key: string, session: string, value: string | null = 'released', flags = 0n): Unstamped {
  return { type: 'kv-set', key, value: bytes(value), flags, verb: { kind: 'release', session } };
}

/** DELETE (plain, ?cas=, ?recurse). */
export function del(key: string, options: { cas?: bigint; recurse?: boolean } = {}): Unstamped {
  return { type: 'kv-delete', key, casIndex: options.cas ?? null, recurse: options.recurse ?? false };
}

/** A txn from partial ops. */
export function txn(ops: (Partial<TxnKvOp> & { verb: string })[]): Unstamped {
  return { type: 'txn', ops: ops.map(txnOp) };
}

/** A full txn op from a partial one. */
export function txnOp(op: Partial<TxnKvOp> & { verb: string }): TxnKvOp {
  return { key: '', value: null, flags: 0n, index: 0n, session: '', ...op };
}

/** A node-level check definition. */
export function check(checkId: string, status: HealthStatus, output = ''): CheckDefinition {
  return {
    checkId, name: checkId === 'serfHealth' ? 'Serf Health Status' : checkId, status, notes: '', output,
    serviceId: '', serviceName: '', serviceTags: [], type: '', interval: '', timeout: '',
  };
}

/** node-register with a serfHealth check (and any extra checks). */
export function registerNode(node: string, serfStatus: HealthStatus = 'passing', extra: CheckDefinition[] = []): Unstamped {
  return {
    type: 'node-register', node, id: `id-${node}`, address: '10.0.0.1', datacenter: 'dc1',
    taggedAddresses: { lan: '10.0.0.1' }, meta: {}, checks: [check('serfHealth', serfStatus), ...extra],
  };
}

/** Session options for createSessionCommand. */
export interface SessionOptions {
  lockDelayNs?: number;
  behavior?: SessionBehavior;
  ttl?: string;
  ttlNs?: number;
  nodeChecks?: string[];
  name?: string;
}

/** session-create with Consul's defaults (15 s lock-delay, release, serfHealth). */
export function createSessionCommand(id: string, node: string, options: SessionOptions = {}): Unstamped {
  return {
    type: 'session-create', id, name: options.name ?? '', node,
    lockDelayNs: options.lockDelayNs ?? 15_000_000_000, behavior: options.behavior ?? 'release',
    ttl: options.ttl ?? '', ttlNs: options.ttlNs ?? 0, nodeChecks: options.nodeChecks ?? ['serfHealth'], serviceChecks: [],
  };
}
