/**
 * How the UI shows and takes a KV value. Consul stores bytes and sends them as padded standard
 * base64 (`Value`, null for an empty body). A person wants text, JSON pretty-printed, and
 * binary only as base64: this module decides which of those a value can be shown as, and turns
 * what a person types back into the exact bytes to PUT.
 */
import { prettyJson } from './consul-json.js';

/** The ways a value can be shown. */
export type ValueFormat = 'text' | 'json' | 'base64';

/** What a stored value is, decoded once. */
export interface DecodedValue {
  /** The stored bytes (empty for a null Value). */
  readonly bytes: Uint8Array;
  /** Padded standard base64 of the bytes, as Consul sent it ("" for none). */
  readonly base64: string;
  /** The bytes as text when they are valid UTF-8 without control characters, else null. */
  readonly text: string | null;
  /** The text re-indented, when it is a JSON object or array; else null. */
  readonly prettyJson: string | null;
  /** True when Consul sent `"Value": null` (a PUT with an empty body). */
  readonly isNull: boolean;
}

/** Base64 decode of Consul's Value; null when `base64` is not padded standard base64. */
export function decodeBase64(base64: string): Uint8Array | null {
  const compact = base64.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return null;
  const binary = atob(compact);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}

/** Padded standard base64 of `bytes`. */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = '';
  const chunkBytes = 0x8000; // String.fromCharCode takes arguments: bounded chunks, no stack overflow
  for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
    binary += String.fromCharCode(...bytes.subarray(offset, offset + chunkBytes));
  }
  return btoa(binary);
}

/**
 * The bytes as text if a person can read them: valid UTF-8 and no control characters other
 * than tab, newline and carriage return (a NUL or an escape byte means binary).
 */
export function readableText(bytes: Uint8Array): string | null {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
  // Control characters are exactly what is looked for (a NUL, an escape: binary).
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text) ? null : text;
}

/** Decodes Consul's `Value` field (base64 or null). A malformed Value is shown as empty binary. */
export function decodeValue(value: string | null): DecodedValue {
  if (value === null) return { bytes: new Uint8Array(0), base64: '', text: '', prettyJson: null, isNull: true };
  const bytes = decodeBase64(value) ?? new Uint8Array(0);
  const text = readableText(bytes);
  const trimmed = text?.trim() ?? '';
  const looksStructured = trimmed.startsWith('{') || trimmed.startsWith('[');
  return {
    bytes,
    base64: encodeBase64(bytes),
    text,
    prettyJson: text !== null && looksStructured ? prettyJson(text) : null,
    isNull: false,
  };
}

/** The formats `value` can be shown in, best first (what the view offers, and its default). */
export function formatsOf(value: DecodedValue): ValueFormat[] {
  const formats: ValueFormat[] = [];
  if (value.prettyJson !== null) formats.push('json');
  if (value.text !== null) formats.push('text');
  formats.push('base64');
  return formats;
}

/** `value` shown in `format` (falls back to base64 when the format does not apply). */
export function renderValue(value: DecodedValue, format: ValueFormat): string {
  if (format === 'json' && value.prettyJson !== null) return value.prettyJson;
  if (format === 'text' && value.text !== null) return value.text;
  return value.base64;
}

/** How an edit form holds a value: readable text, or base64 for binary. */
export type DraftEncoding = 'text' | 'base64';

/** The encoding and text an edit form starts with for `value`. */
export function draftOf(value: DecodedValue): { encoding: DraftEncoding; text: string } {
  return value.text !== null ? { encoding: 'text', text: value.text } : { encoding: 'base64', text: value.base64 };
}

/** The bytes to PUT for what the form holds, or an error message for invalid base64. */
export function bytesOfDraft(text: string, encoding: DraftEncoding): { ok: true; bytes: Uint8Array } | { ok: false; error: string } {
  if (encoding === 'text') return { ok: true, bytes: new TextEncoder().encode(text) };
  const bytes = decodeBase64(text);
  if (bytes === null) return { ok: false, error: 'The value is not valid base64 (A–Z, a–z, 0–9, +, / and = padding).' };
  return { ok: true, bytes };
}

/** A byte count for people: "0 bytes", "1 byte", "2.0 KiB". */
export function formatBytes(count: number): string {
  if (count === 1) return '1 byte';
  if (count < 1024) return `${count} bytes`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
  return `${(count / (1024 * 1024)).toFixed(1)} MiB`;
}
