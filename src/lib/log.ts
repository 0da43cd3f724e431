import { pino } from 'pino';
import type { Logger } from './logger.js';

/**
 * The process logger: pino (what Fastify uses), JSON lines with `-log-json`, otherwise one
 * readable line per record: `2026-11-27T10:00:00.000Z [INFO]  raft: became leader term=3`.
 * `x-consul-token` and `?token=` are redacted (STYLE §8).
 */
export type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const OMITTED = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'component']);

export function createLogger(options: { level: LogLevelName; json: boolean; destination?: NodeJS.WritableStream }): Logger & pino.Logger {
  const out = options.destination ?? process.stderr;
  const stream = options.json ? out : { write: (line: string) => out.write(formatLine(line)) };
  return pino(
    {
      level: options.level,
      base: null,
      redact: { paths: ['req.headers["x-consul-token"]', 'req.headers.authorization'], censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    stream as pino.DestinationStream,
  );
}

function formatLine(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = new Date(typeof record.time === 'number' ? record.time : Date.now()).toISOString();
  const level = (LEVEL_NAMES[record.level as number] ?? 'INFO').padEnd(5);
  const component = typeof record.component === 'string' ? `${record.component}: ` : '';
  const fields = Object.entries(record)
    .filter(([key]) => !OMITTED.has(key))
    .map(([key, value]) => `${key}=${formatValue(value)}`)
    .join(' ');
  return `${time} [${level}] ${component}${String(record.msg ?? '')}${fields.length > 0 ? ` ${fields}` : ''}\n`;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /\s/.test(value) ? JSON.stringify(value) : value;
  if (value !== null && typeof value === 'object' && 'message' in value) return JSON.stringify((value as { message: unknown }).message);
  return JSON.stringify(value);
}
