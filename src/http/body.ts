/**
 * Request bodies, read by the handlers themselves. Fastify hands every body over unread (one
 * catch-all content-type parser, see app.ts), because Consul's rules need the handler first:
 * a KV PUT checks its key and flags before its size, any Content-Type (or none) is a raw value,
 * an empty body with `Content-Type: application/json` is fine where the body is optional, and a
 * 413 is decided on Content-Length before a byte is read.
 */
import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { TooLargeError } from '../lib/errors.js';

const EMPTY = new Uint8Array(0);

/** Builds the 413 for a body over the limit; `declaredBytes` is Content-Length, null if unknown. */
export type TooLarge = (declaredBytes: number | null) => TooLargeError;

/** The request's declared Content-Length, or null (absent, chunked, or not a number). */
export function declaredLength(request: FastifyRequest): number | null {
  const header = request.headers['content-length'];
  if (header === undefined) return null;
  const length = Number(header);
  return Number.isSafeInteger(length) && length >= 0 ? length : null;
}

/**
 * Reads the whole body into a fresh, exactly-sized Uint8Array (never a view into a shared pool, so
 * a stored value holds only its own bytes). Refuses on Content-Length before reading, and stops
 * reading once the limit is passed on a body without one.
 */
export async function readBody(request: FastifyRequest, bytesMax: number, tooLarge: TooLarge): Promise<Uint8Array> {
  const declared = declaredLength(request);
  if (declared !== null && declared > bytesMax) throw tooLarge(declared);
  const stream = request.body as Readable | undefined | null;
  if (stream === undefined || stream === null) return EMPTY;
  const chunks = await collect(stream, bytesMax, tooLarge);
  return concat(chunks);
}

/**
 * The chunks of `stream`, refusing past `bytesMax`. Listeners rather than `for await`: leaving a
 * `for await` early destroys the request, and with it the socket the 413 must go out on.
 */
function collect(stream: Readable, bytesMax: number, tooLarge: TooLarge): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const finish = (error: Error | null): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', finish);
      stream.off('close', onClose);
      if (error === null) resolve(chunks);
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.byteLength;
      if (total <= bytesMax) {
        chunks.push(chunk);
        return;
      }
      stream.pause();
      finish(tooLarge(null));
    };
    const onEnd = (): void => finish(null);
    const onClose = (): void => finish(new Error('request body aborted by the client'));
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', finish);
    stream.once('close', onClose);
  });
}

function concat(chunks: readonly Buffer[]): Uint8Array {
  let total = 0;
  for (const chunk of chunks) total += chunk.byteLength;
  if (total === 0) return EMPTY;
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/** Decodes a JSON body's bytes as Go does: invalid UTF-8 becomes U+FFFD. */
export function bodyText(body: Uint8Array): string {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
}
