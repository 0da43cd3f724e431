/**
 * Where a CLI command writes and reads, as Consul's `cli.BasicUi` does it: `out` (Info/Output)
 * goes to stdout and `err` (Error) to stderr, each message followed by a newline. Commands get
 * it as a parameter, so they never touch `process` themselves.
 */
import { readFile } from 'node:fs/promises';

/** A command's standard streams and environment. */
export interface CliIo {
  /** Writes a message and a newline to stdout (Consul's `UI.Output`/`UI.Info`). */
  out(message: string | Uint8Array): void;
  /** Writes a message and a newline to stderr (Consul's `UI.Error`). */
  err(message: string): void;
  /** Reads all of stdin (`kv put key -`, `kv import -`). */
  readStdin(): Promise<Buffer>;
  /** Reads a file (`@path` arguments). */
  readFile(path: string): Promise<Buffer>;
  /** The environment (`CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN`, `CONSUL_HTTP_SSL`). */
  readonly env: Readonly<Record<string, string | undefined>>;
}

const NEWLINE = Buffer.from('\n');

/** Reads a whole stream. */
async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/** The process's own streams and environment. */
export const processIo: CliIo = {
  out: (message) => {
    process.stdout.write(typeof message === 'string' ? `${message}\n` : Buffer.concat([message, NEWLINE]));
  },
  err: (message) => {
    process.stderr.write(`${message}\n`);
  },
  readStdin: () => readAll(process.stdin),
  readFile: (path) => readFile(path),
  env: process.env,
};
