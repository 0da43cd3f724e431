/**
 * Why bytes on the server port were refused or could not be sent:
 * - ERR_FRAME_TOO_LARGE: a length prefix (or an outgoing body) over the frame limit;
 * - ERR_FRAME_TRUNCATED: the stream ended inside a frame;
 * - ERR_FRAME_GARBAGE: a body that is not MessagePack;
 * - ERR_FRAME_INVALID: MessagePack that is not a valid envelope or Raft message;
 * - ERR_PROTOCOL: a valid frame at the wrong time (a Raft message before the handshake, ...).
 */
export type WireErrorCode =
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_FRAME_TRUNCATED'
  | 'ERR_FRAME_GARBAGE'
  | 'ERR_FRAME_INVALID'
  | 'ERR_PROTOCOL';

/**
 * A peer broke the wire protocol, or we could not encode a frame. Received ones close only the
 * connection they arrived on (RELIABILITY P8); they are operating errors, never assertions.
 */
export class WireError extends Error {
  override name = 'WireError';
  readonly code: WireErrorCode;

  constructor(code: WireErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** Throws an ERR_FRAME_INVALID naming the field that failed: validators stay one-liners. */
export function invalid(path: string, expected: string): never {
  throw new WireError('ERR_FRAME_INVALID', `${path}: expected ${expected}`);
}
