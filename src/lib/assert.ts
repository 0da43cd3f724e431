/**
 * Programmer errors. An assertion failure means the code is wrong, not the input: it is never
 * caught and turned into an HTTP 500 (TigerBeetle: "the only correct way to handle corrupt code
 * is to crash").
 */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

/** Throws an AssertionError naming `why` when `condition` is false. */
export function assert(condition: boolean, why?: string): asserts condition {
  if (!condition) throw new AssertionError(why ?? 'assertion failed');
}

/**
 * Throws an AssertionError with `message`: for checks on a hot path, which build their message
 * only when they fail (`if (!ok) refuse(`${what}: ...`)`) rather than on every call, as
 * `assert(ok, `${what}: ...`)` does.
 */
export function refuse(message: string): never {
  throw new AssertionError(message);
}

/** Ends a `switch` over a union: the compiler proves it unreachable, the runtime checks it. */
export function assertNever(value: never, what = 'value'): never {
  throw new AssertionError(`unexpected ${what}: ${JSON.stringify(value)}`);
}
