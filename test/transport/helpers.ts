import type { Logger } from '../../src/lib/logger.js';
import { Prng } from '../../src/lib/prng.js';
import type { AppendEntries, Heartbeat, InstallSnapshot, Message } from '../../src/raft/core/messages.js';
import type { Entry } from '../../src/raft/core/types.js';
import type { TcpTransportOptions } from '../../src/transport/tcp-transport.js';
import { TcpTransport } from '../../src/transport/tcp-transport.js';

/** One recorded log line. */
export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** A Logger that keeps every line and lets a test wait for one: events, not sleeps. */
export class RecordingLogger implements Logger {
  readonly lines: LogLine[] = [];
  readonly #waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];

  debug(fields: object, message: string): void {
    this.#record('debug', fields, message);
  }
  info(fields: object, message: string): void {
    this.#record('info', fields, message);
  }
  warn(fields: object, message: string): void {
    this.#record('warn', fields, message);
  }
  error(fields: object, message: string): void {
    this.#record('error', fields, message);
  }

  /** Resolves with the first line (already logged or to come) that matches. */
  waitFor(match: (line: LogLine) => boolean, what: string, timeoutMs = 10_000): Promise<LogLine> {
    const found = this.lines.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return withDeadline(new Promise<LogLine>((resolve) => this.#waiters.push({ match, resolve })), `log line: ${what}`, timeoutMs);
  }

  #record(level: LogLine['level'], fields: object, message: string): void {
    const line: LogLine = { level, fields: fields as Record<string, unknown>, message };
    this.lines.push(line);
    for (const waiter of [...this.#waiters]) {
      if (!waiter.match(line)) continue;
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  }
}

/**
 * Rejects if `promise` does not settle within `timeoutMs`: a safety net so a broken test fails
 * with a name instead of hanging, never a timing assertion (the deadline is generous).
 */
export async function withDeadline<T>(promise: Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `condition()` holds, checking every few ms (for state with no event to await). */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`gave up waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A queue of received Raft messages with a wait for the n-th. */
export class Inbox {
  readonly messages: Message[] = [];
  #wake: (() => void) | null = null;

  readonly receive = (message: Message): void => {
    this.messages.push(message);
    this.#wake?.();
  };

  /** Resolves once at least `count` messages arrived. */
  async waitForCount(count: number, what = `${count} messages`): Promise<Message[]> {
    await withDeadline(
      (async () => {
        while (this.messages.length < count) await new Promise<void>((resolve) => (this.#wake = resolve));
      })(),
      what,
    );
    return this.messages;
  }
}

/** A TcpTransport for a server listening on 127.0.0.1 with a free port. */
export async function startServer(
  serverId: string,
  options: Partial<TcpTransportOptions> = {},
): Promise<{ transport: TcpTransport; address: string; logger: RecordingLogger }> {
  const logger = new RecordingLogger();
  const prng = new Prng(0x5eed);
  const transport = new TcpTransport({
    role: 'server',
    serverId,
    datacenter: 'dc1',
    logger,
    random: () => prng.nextFloat(),
    backoffMsMin: 10,
    backoffMsMax: 50,
    ...options,
  });
  const address = await transport.listen('127.0.0.1', 0);
  return { transport, address, logger };
}

/** A heartbeat from `from` to `to`; `commit` tells messages apart. */
export function heartbeat(from: string, to: string, commit: number, term = 3): Heartbeat {
  return { type: 'Heartbeat', from, to, term, commit, readContext: 0 };
}

/** An AppendEntries carrying `count` entries of random bytes after `prevLogIndex`. */
export function appendEntries(from: string, to: string, prevLogIndex: number, count: number, prng: Prng): AppendEntries {
  const entries: Entry[] = [];
  for (let position = 0; position < count; position++) {
    const data = new Uint8Array(prng.nextInt(64));
    for (let byte = 0; byte < data.length; byte++) data[byte] = prng.nextInt(256);
    const type = position === 0 ? 'noop' : prng.pick(['normal', 'config'] as const);
    entries.push({ index: prevLogIndex + 1 + position, term: 3, type, data: type === 'noop' ? new Uint8Array(0) : data });
  }
  return { type: 'AppendEntries', from, to, term: 3, prevLogIndex, prevLogTerm: 2, entries, commit: prevLogIndex };
}

/** An InstallSnapshot chunk of `bytes` bytes. */
export function installSnapshot(from: string, to: string, bytes: number): InstallSnapshot {
  const chunk = new Uint8Array(bytes).map((_, position) => position % 251);
  return {
    type: 'InstallSnapshot',
    from,
    to,
    term: 3,
    meta: { index: 100, term: 2, configuration: { servers: [{ id: from, address: '127.0.0.1:8300', voter: true }] } },
    offset: 0,
    totalBytes: bytes,
    chunk,
    done: true,
  };
}

/** Compares messages with bytes as hex (Buffer and Uint8Array differ for t.same, and hex is fast). */
export function normalize(value: unknown): unknown {
  if (value instanceof Uint8Array) return { hex: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex') };
  if (Array.isArray(value)) return value.map(normalize);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, normalize(inner)]));
  }
  return value;
}
