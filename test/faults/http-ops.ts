import { Agent, request } from 'undici';
import type { CompletionType, History, OpRecord } from './history.js';

/**
 * One HTTP exchange for the workloads, and how its result is classified for the history
 * (history.ts): a reply, or an error that says whether the request could have reached the agent.
 */
export type HttpResult =
  | { readonly kind: 'reply'; readonly status: number; readonly body: string; readonly outcome: string | null; readonly index: number | null }
  | { readonly kind: 'error'; readonly refused: boolean; readonly message: string };

/** Keep-alive connections for all workload clients; closed at the end of a run. */
export function makeDispatcher(): Agent {
  return new Agent({ keepAliveTimeout: 10_000, connections: 64, connect: { timeout: 2000 } });
}

/** Sends one request; never throws (errors are results). `signal` cancels it (a blocking GET at the end of a run). */
export async function httpCall(dispatcher: Agent, url: string, method: 'GET' | 'PUT' | 'DELETE', body: string | null, timeoutMs: number, signal?: AbortSignal): Promise<HttpResult> {
  try {
    const response = await request(url, { method, body, dispatcher, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, ...(signal === undefined ? {} : { signal }) });
    const text = await response.body.text();
    const outcome = response.headers['x-conclave-outcome'];
    const index = response.headers['x-consul-index'];
    return {
      kind: 'reply',
      status: response.statusCode,
      body: text,
      outcome: typeof outcome === 'string' ? outcome : null,
      index: typeof index === 'string' && /^\d+$/.test(index) ? Number(index) : null,
    };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const message = error instanceof Error ? `${String(code ?? '')} ${error.message}` : String(error);
    // Refused: nothing listens, so nothing was sent (a killed agent). Anything else may have
    // reached it (a timeout on a paused agent, a reset mid-request).
    return { kind: 'error', refused: code === 'ECONNREFUSED', message };
  }
}

/**
 * The history outcome of a write: 200 is `ok`; `not-applied` (header), a 4xx or a refused
 * connection is `fail`; `unknown` (header), another 5xx, or no reply is `info`.
 */
export function writeCompletion(result: HttpResult): CompletionType {
  if (result.kind === 'error') return result.refused ? 'fail' : 'info';
  if (result.status === 200) return 'ok';
  if (result.outcome === 'not-applied') return 'fail';
  if (result.outcome === 'unknown') return 'info';
  if (result.status >= 400 && result.status < 500) return 'fail';
  return 'info';
}

/** How a workload classifies a result for the history. */
export interface Classified {
  readonly type: CompletionType;
  readonly index?: number | null;
  readonly value?: string | null;
  readonly data?: Readonly<Record<string, string | number | boolean | null>>;
}

/** Records one HTTP operation: invoke, send, complete. Returns the result for the caller. */
export async function recordedCall(
  history: History,
  op: OpRecord,
  dispatcher: Agent,
  url: string,
  method: 'GET' | 'PUT' | 'DELETE',
  body: string | null,
  timeoutMs: number,
  classify: (result: HttpResult) => Classified,
): Promise<HttpResult> {
  const result = await httpCall(dispatcher, url, method, body, timeoutMs);
  const { type, index, value, data } = classify(result);
  const extra = data === undefined ? {} : { data };
  history.complete(op, type, result.kind === 'reply'
    ? { status: result.status, body: result.body, outcome: result.outcome, index: index === undefined ? result.index : index, value: value ?? null, ...extra }
    : { body: result.message, index: index ?? null, value: value ?? null, ...extra });
  return result;
}

/** A KV entry as Consul returns it. */
export interface KvEntry {
  readonly Key: string;
  readonly Value: string | null;
  readonly ModifyIndex: number;
  readonly CreateIndex: number;
  readonly LockIndex: number;
  readonly Session?: string;
}

/** Parses a 200 GET body; null when it is not an array of entries. */
export function parseEntries(body: string): KvEntry[] | null {
  try {
    const parsed: unknown = JSON.parse(body);
    return Array.isArray(parsed) ? (parsed as KvEntry[]) : null;
  } catch {
    return null;
  }
}

/** A base64 KV value as text ("" for null). */
export function decodeValue(value: string | null): string {
  return value === null ? '' : Buffer.from(value, 'base64').toString('utf8');
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
