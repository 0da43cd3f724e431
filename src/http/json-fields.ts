/**
 * Reading request bodies into typed fields the way Go's encoding/json fills a struct, which is
 * what clients rely on: member names match a field exactly or case-insensitively (python-consul
 * sends `{"name","lockdelay","behavior","ttl"}`), the last matching member wins, unknown members
 * are ignored, `null` leaves a scalar at its default and empties a slice, and a member of the
 * wrong type fails with Go's `json: cannot unmarshal <json> into Go struct field <S.F> of type <t>`.
 */
import { UINT64_MAX } from '../state/limits.js';
import { JsonNumber, JsonObject } from './json-reader.js';
import type { JsonValue } from './json-reader.js';

/** A member of the wrong type; `message` is Go's text. */
export class JsonTypeError extends Error {
  override name = 'JsonTypeError';
}

/** The members of `object` that fill the fields `names`, by field name (Go's matching rules). */
export function matchFields<N extends string>(object: JsonObject, names: readonly N[]): Map<N, JsonValue> {
  const folded = new Map<string, N>(names.map((name) => [name.toLowerCase(), name]));
  const exact = new Set<string>(names);
  const matched = new Map<N, JsonValue>();
  for (const [key, value] of object.entries) {
    const name = exact.has(key) ? (key as N) : folded.get(key.toLowerCase());
    if (name !== undefined) matched.set(name, value);
  }
  return matched;
}

/** The JSON kind Go names in its type errors. */
function kindOf(value: JsonValue): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'string') return 'string';
  if (value instanceof JsonNumber) return 'number';
  if (value instanceof JsonObject) return 'object';
  return 'array';
}

function typeError(jsonKind: string, field: string, goType: string): JsonTypeError {
  return new JsonTypeError(`json: cannot unmarshal ${jsonKind} into Go struct field ${field} of type ${goType}`);
}

/** True for an object (a JSON `{…}`). */
export function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return value instanceof JsonObject;
}

/** An object member `field` (e.g. `Session.TTL`) of Go type `goType`; undefined when absent or null. */
export function objectField(value: JsonValue | undefined, field: string, goType: string): JsonObject | undefined {
  if (value === undefined || value === null) return undefined;
  if (!(value instanceof JsonObject)) throw typeError(kindOf(value), field, goType);
  return value;
}

/** A string member; undefined when absent or null (Go leaves the default). */
export function stringField(value: JsonValue | undefined, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw typeError(kindOf(value), field, 'string');
  return value;
}

/** A uint64 member, exact (bigint); undefined when absent or null. */
export function uint64Field(value: JsonValue | undefined, field: string): bigint | undefined {
  if (value === undefined || value === null) return undefined;
  if (!(value instanceof JsonNumber)) throw typeError(kindOf(value), field, 'uint64');
  const parsed = /^\d+$/.test(value.text) ? BigInt(value.text) : -1n;
  if (parsed < 0n || parsed > UINT64_MAX) throw typeError(`number ${value.text}`, field, 'uint64');
  return parsed;
}

/**
 * A []string member: undefined when absent, [] for null (Go sets a nil slice, which Consul's
 * session code treats as empty).
 */
export function stringArrayField(value: JsonValue | undefined, field: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (value === null) return [];
  if (!Array.isArray(value)) throw typeError(kindOf(value), field, '[]string');
  return (value as readonly JsonValue[]).map((item) => {
    if (typeof item !== 'string') throw typeError(kindOf(item), field, 'string');
    return item;
  });
}

/** An array member (`[]T`): undefined when absent, [] for null. */
export function arrayField(value: JsonValue | undefined, field: string, goType: string): readonly JsonValue[] | undefined {
  if (value === undefined) return undefined;
  if (value === null) return [];
  if (!Array.isArray(value)) throw typeError(kindOf(value), field, goType);
  return value as readonly JsonValue[];
}

/** A number member as a float64 (Go's `interface{}` decoding); undefined when absent or null. */
export function numberValue(value: JsonValue): number | null {
  return value instanceof JsonNumber ? Number(value.text) : null;
}

/** Go's type error for a member that is neither of the accepted kinds. */
export function unexpectedType(value: JsonValue, field: string, goType: string): JsonTypeError {
  return typeError(kindOf(value), field, goType);
}

/** A bool member; undefined when absent or null. */
export function boolField(value: JsonValue | undefined, field: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw typeError(kindOf(value), field, 'bool');
  return value;
}

/** A `map[string]string` member: {} when absent or null; a non-string value is Go's type error. */
export function stringMapField(value: JsonValue | undefined, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!(value instanceof JsonObject)) throw typeError(kindOf(value), field, 'map[string]string');
  const map: Record<string, string> = {};
  for (const [key, member] of value.entries) {
    if (typeof member !== 'string') throw typeError(kindOf(member), field, 'string');
    // Own data properties only: a key like `__proto__` must stay a plain key.
    Object.defineProperty(map, key, { value: member, enumerable: true, writable: true, configurable: true });
  }
  return map;
}

/** Go's type error for a whole body of the wrong kind (`[]` for a struct). */
export function unexpectedValueType(value: JsonValue, goType: string): JsonTypeError {
  return new JsonTypeError(`json: cannot unmarshal ${kindOf(value)} into Go value of type ${goType}`);
}
