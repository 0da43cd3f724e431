import { IDENTIFIER_LENGTH_MAX } from './limits.js';
import { invalid } from './wire-error.js';

/**
 * Typed reads of decoded MessagePack fields. Each throws an ERR_FRAME_INVALID naming the path,
 * so a peer's mistake shows up in our log as "AppendEntries.entries[3].data: expected bytes".
 */
export type Fields = Readonly<Record<string, unknown>>;

/** True for `{}`-style objects only: not arrays, bytes, dates, maps or class instances. */
export function isPlainObject(value: unknown): value is Fields {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** A map decoded as a plain object. */
export function readObject(value: unknown, path: string): Fields {
  if (!isPlainObject(value)) return invalid(path, 'a map');
  return value;
}

/** A string of at most `lengthMax` characters. */
export function readString(fields: Fields, key: string, path: string, lengthMax = IDENTIFIER_LENGTH_MAX): string {
  const value = fields[key];
  if (typeof value !== 'string') return invalid(`${path}.${key}`, 'a string');
  if (value.length > lengthMax) return invalid(`${path}.${key}`, `at most ${lengthMax} characters`);
  return value;
}

/** A non-empty identifier (server id, datacenter, cluster id). */
export function readIdentifier(fields: Fields, key: string, path: string): string {
  const value = readString(fields, key, path);
  if (value.length === 0) return invalid(`${path}.${key}`, 'a non-empty string');
  return value;
}

/** A non-empty identifier or null. */
export function readNullableIdentifier(fields: Fields, key: string, path: string): string | null {
  if (fields[key] === null) return null;
  return readIdentifier(fields, key, path);
}

/**
 * A safe non-negative integer. Decoding uses int64AsType 'number', so a uint64 above 2^53 arrives
 * rounded to a value >= 2^53, which is never a safe integer: it is refused here, not truncated.
 */
export function readUint(fields: Fields, key: string, path: string): number {
  const value = fields[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    return invalid(`${path}.${key}`, 'a safe non-negative integer');
  }
  return value;
}

/** A boolean (MessagePack true/false, not 0/1). */
export function readBoolean(fields: Fields, key: string, path: string): boolean {
  const value = fields[key];
  if (typeof value !== 'boolean') return invalid(`${path}.${key}`, 'a boolean');
  return value;
}

/** MessagePack bin, decoded as a Uint8Array that owns its bytes (copyBuffers). */
export function readBytes(fields: Fields, key: string, path: string): Uint8Array {
  const value = fields[key];
  if (!(value instanceof Uint8Array)) return invalid(`${path}.${key}`, 'bytes');
  return value;
}

/** An array of at most `countMax` items. */
export function readArray(fields: Fields, key: string, path: string, countMax: number): readonly unknown[] {
  const value = fields[key];
  if (!Array.isArray(value)) return invalid(`${path}.${key}`, 'an array');
  if (value.length > countMax) return invalid(`${path}.${key}`, `at most ${countMax} items`);
  return value as readonly unknown[];
}
