/**
 * Reading Consul's JSON in the browser without losing digits. `Flags` is a uint64: the lock
 * flag 3304740253564472344 and the semaphore flag 16210313421097356768 are above 2^53, and
 * `JSON.parse` would round them (consul-api.md §1). A UI that shows or writes back a rounded
 * flag breaks every Go `consul/api` lock on that key, so integer tokens that are not safe
 * integers are turned into strings before parsing. Also: the lossless pretty-printer for values.
 */

/** Longest JSON text the UI parses: a bound against a runaway response (KV values are ≤ 512 KiB). */
export const JSON_TEXT_CHARS_MAX = 64 * 1024 * 1024;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** True for the characters a JSON number token is made of. */
function isNumberChar(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || code === 0x2d || code === 0x2b || code === 0x2e || code === 0x65 || code === 0x45;
}

/**
 * `text` with every integer token outside strings that is not a safe integer wrapped in quotes
 * (`{"Flags":3304740253564472344}` → `{"Flags":"3304740253564472344"}`); everything else,
 * strings included, is copied as is.
 */
export function quoteUnsafeIntegers(text: string): string {
  let output = '';
  let copiedUpTo = 0;
  let position = 0;
  while (position < text.length) {
    const code = text.charCodeAt(position);
    if (code === QUOTE) {
      position = endOfString(text, position);
      continue;
    }
    if ((code >= 0x30 && code <= 0x39) || code === 0x2d) {
      let end = position + 1;
      while (end < text.length && isNumberChar(text.charCodeAt(end))) end++;
      const token = text.slice(position, end);
      if (/^-?\d+$/.test(token) && !Number.isSafeInteger(Number(token))) {
        output += `${text.slice(copiedUpTo, position)}"${token}"`;
        copiedUpTo = end;
      }
      position = end;
      continue;
    }
    position++;
  }
  return copiedUpTo === 0 ? text : output + text.slice(copiedUpTo);
}

/** The index just past the string literal that starts at `start` (a `"`). */
function endOfString(text: string, start: number): number {
  let position = start + 1;
  while (position < text.length) {
    const code = text.charCodeAt(position);
    if (code === BACKSLASH) position += 2;
    else if (code === QUOTE) return position + 1;
    else position++;
  }
  return position;
}

/** `JSON.parse` keeping large integers as digit strings (see the file comment). */
export function parseConsulJson(text: string): unknown {
  if (text.length > JSON_TEXT_CHARS_MAX) throw new RangeError(`JSON text of ${text.length} characters is over the limit`);
  return JSON.parse(quoteUnsafeIntegers(text));
}

/**
 * A uint64 field as exact decimal digits: accepts a number (safe) or the digit string
 * parseConsulJson made of a large one; anything else is "0" (Consul omits nothing it sends).
 */
export function u64Text(value: unknown): string {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
  if (typeof value === 'string' && /^\d{1,20}$/.test(value)) return value.replace(/^0+(?=\d)/, '');
  return '0';
}

/** A Raft index field as a number (indexes stay far below 2^53); 0 when absent. */
export function indexOf(value: unknown): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === 'string' && /^\d{1,15}$/.test(value)) return Number(value);
  return 0;
}

/**
 * `text` re-indented by `indent` spaces per level if it is valid JSON, else null. Works on the
 * tokens, not on parsed values, so numbers keep every digit and strings every escape: what is
 * shown is what is stored, only the whitespace changes.
 */
export function prettyJson(text: string, indent = 2): string | null {
  try {
    JSON.parse(text); // validation only: the output is built from the original tokens
  } catch {
    return null;
  }
  const pad = (depth: number): string => `\n${' '.repeat(depth * indent)}`;
  let output = '';
  let depth = 0;
  let position = 0;
  while (position < text.length) {
    const char = text.charAt(position);
    const code = text.charCodeAt(position);
    if (code === QUOTE) {
      const end = endOfString(text, position);
      output += text.slice(position, end);
      position = end;
      continue;
    }
    position++;
    if (char === ' ' || char === '\n' || char === '\r' || char === '\t') continue;
    if (char === '{' || char === '[') {
      const close = char === '{' ? '}' : ']';
      const next = nextNonSpace(text, position);
      if (text.charAt(next) === close) { // `{}` and `[]` stay on one line
        output += char + close;
        position = next + 1;
        continue;
      }
      depth++;
      output += char + pad(depth);
    } else if (char === '}' || char === ']') {
      depth--;
      output += pad(depth) + char;
    } else if (char === ',') {
      output += `,${pad(depth)}`;
    } else if (char === ':') {
      output += ': ';
    } else {
      output += char;
    }
  }
  return output;
}

function nextNonSpace(text: string, from: number): number {
  let position = from;
  while (position < text.length && /\s/.test(text.charAt(position))) position++;
  return position;
}
