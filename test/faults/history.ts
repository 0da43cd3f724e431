import { createWriteStream, mkdirSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { join } from 'node:path';

/**
 * The run's history (RELIABILITY.md "History"): `results/<run>/history.jsonl`, one line per
 * invocation or completion, `{t, proc, type: invoke|ok|fail|info, f, key, value, node, mode,
 * index}` (a watch's completion adds the `entries` it showed), nemesis events in the same file
 * (proc "nemesis"). `t` is milliseconds since the run began (performance.now, monotonic); lock
 * operations also carry `wall` (Date.now), because lock-delay and TTLs are measured by the
 * servers' wall clocks.
 *
 * - `ok`: the reply says what happened (a PUT's true/false, a GET's value or 404);
 * - `fail`: definitely not applied (X-Conclave-Outcome: not-applied, a 4xx, a refused connection);
 * - `info`: unknown (timeout, reset, a 5xx that may have been proposed).
 */
export type CompletionType = 'ok' | 'fail' | 'info';

/** What a client asked for. */
export type OpFunction =
  | 'read' | 'write' | 'cas' | 'delete' | 'add'
  | 'session-create' | 'session-renew' | 'session-destroy' | 'acquire' | 'release' | 'lock-read' | 'fence'
  | 'watch';

/** Read modes of Consul's GET: default (leader lease), `?consistent`, `?stale`. */
export type ReadMode = 'default' | 'consistent' | 'stale';

/** One KV entry a watch response showed: its key, value (text) and ModifyIndex. */
export interface SeenEntry {
  readonly key: string;
  readonly value: string;
  readonly modifyIndex: number;
}

/** One operation, invocation and completion together (the in-memory view the checks use). */
export interface OpRecord {
  readonly id: number;
  readonly proc: string;
  readonly f: OpFunction;
  readonly key: string;
  /** A write's value, or an acquire's session. */
  readonly value: string | null;
  readonly node: string;
  readonly mode: ReadMode | null;
  /** `?cas=` of a cas/delete. */
  readonly cas: number | null;
  readonly invokeT: number;
  readonly invokeWall: number;
  completeT: number | null;
  completeWall: number | null;
  type: CompletionType | null;
  status: number | null;
  /** The reply body (trimmed to 2 KB) or the error text. */
  body: string | null;
  outcome: string | null;
  /** ModifyIndex a read saw, X-Consul-Index otherwise. */
  index: number | null;
  /** Lock workload details (LockIndex, Session, fencing token...). */
  data: Readonly<Record<string, string | number | boolean | null>> | null;
  /** A watch response's entries (a 404 shows none); null for other operations. */
  entries: readonly SeenEntry[] | null;
}

/** A nemesis event in the history. */
export interface NemesisEvent {
  readonly t: number;
  readonly f: string;
  readonly value: unknown;
}

/** Appends operations and events to history.jsonl and keeps them for the checks. */
export class History {
  readonly ops: OpRecord[] = [];
  readonly nemesis: NemesisEvent[] = [];
  readonly dir: string;
  readonly #t0: number;
  readonly #out: WriteStream;
  #nextId = 1;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
    this.#t0 = performance.now();
    this.#out = createWriteStream(join(dir, 'history.jsonl'));
  }

  /** Milliseconds since the run began. */
  now(): number {
    return performance.now() - this.#t0;
  }

  invoke(proc: string, f: OpFunction, key: string, value: string | null, node: string, mode: ReadMode | null = null, cas: number | null = null): OpRecord {
    const op: OpRecord = {
      id: this.#nextId++, proc, f, key, value, node, mode, cas,
      invokeT: this.now(), invokeWall: Date.now(),
      completeT: null, completeWall: null, type: null, status: null, body: null, outcome: null, index: null, data: null, entries: null,
    };
    this.ops.push(op);
    this.#write({ t: round(op.invokeT), proc, type: 'invoke', f, key, value, node, mode, ...(cas === null ? {} : { cas }), ...(isLock(f) ? { wall: op.invokeWall } : {}) });
    return op;
  }

  complete(op: OpRecord, type: CompletionType, details: { status?: number | null; body?: string | null; outcome?: string | null; index?: number | null; value?: string | null; data?: Readonly<Record<string, string | number | boolean | null>>; entries?: readonly SeenEntry[] } = {}): void {
    op.completeT = this.now();
    op.completeWall = Date.now();
    op.type = type;
    op.status = details.status ?? null;
    op.body = details.body === undefined || details.body === null ? null : details.body.slice(0, 2048);
    op.outcome = details.outcome ?? null;
    op.index = details.index ?? null;
    op.data = details.data ?? null;
    op.entries = details.entries ?? null;
    this.#write({
      t: round(op.completeT), proc: op.proc, type, f: op.f, key: op.key, value: details.value ?? op.value, node: op.node, mode: op.mode,
      index: op.index, status: op.status, ...(op.outcome === null ? {} : { outcome: op.outcome }),
      ...(type === 'ok' ? ((isLock(op.f) || op.f === 'cas') && op.body !== null ? { body: op.body.slice(0, 100) } : {}) : { error: op.body }), ...(isLock(op.f) ? { wall: op.completeWall } : {}), ...(op.data === null ? {} : { data: op.data }),
      ...(op.entries === null ? {} : { entries: op.entries }),
    });
  }

  /** A nemesis event (fault start/stop, kill, restart...). */
  event(f: string, value: unknown): void {
    const event = { t: this.now(), f, value };
    this.nemesis.push(event);
    this.#write({ t: round(event.t), proc: 'nemesis', type: 'info', f, value });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#out.end(() => resolve()));
  }

  #write(line: Record<string, unknown>): void {
    this.#out.write(`${JSON.stringify(line)}\n`);
  }
}

function isLock(f: OpFunction): boolean {
  return f.startsWith('session') || f === 'acquire' || f === 'release' || f === 'lock-read' || f === 'fence';
}

function round(t: number): number {
  return Math.round(t * 1000) / 1000;
}
