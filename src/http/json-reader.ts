/**
 * A JSON reader for request bodies that keeps what `JSON.parse` loses: numbers stay as their
 * text (a txn `Flags` of 16210313421097356768 must reach the state machine exactly), and object
 * members stay in order with duplicates (Go assigns them in order, the last one winning, and
 * matches names case-insensitively: `json-fields.ts` does that part).
 *
 * It follows Go's `json.Decoder.Decode`: one value is read and anything after it is ignored; an
 * empty body is `EOF`; errors use Go's texts (`invalid character 'x' looking for beginning of
 * value`, `unexpected EOF`), which Consul returns after `Failed to parse body: ` or
 * `Request decode failed: `. Lone UTF-16 surrogates in `\u` escapes become U+FFFD, as in Go, so
 * every string read is well-formed.
 */
import { goQuote } from '../state/go-quote.js';
import { JSON_NESTING_DEPTH_MAX } from './limits.js';

/** A JSON number, as written (`-1`, `2.5e3`, `18446744073709551615`). */
export class JsonNumber {
  /** `text` matches JSON's number grammar. */
  constructor(readonly text: string) {}
}

/** A JSON object: its members in order, duplicates kept. */
export class JsonObject {
  /** Members as read. */
  constructor(readonly entries: readonly (readonly [string, JsonValue])[]) {}
}

/** Any JSON value. */
export type JsonValue = null | boolean | string | JsonNumber | JsonObject | readonly JsonValue[];

/** A body that is not JSON; `message` is Go's text. */
export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
const ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const CONTROL = /[\u0000-\u001f]/;

/** Go's quoteChar for error texts: `'x'`, `'\n'`, `'"'`. */
function quoteChar(char: string): string {
  if (char === "'") return "'\\''";
  if (char === '"') return "'\"'";
  return `'${goQuote(char).slice(1, -1)}'`;
}

/** Reads the first JSON value of `text`; throws JsonSyntaxError. */
export function readJson(text: string): JsonValue {
  return new Reader(text).readTop();
}

class Reader {
  readonly #text: string;
  #at = 0;

  constructor(text: string) {
    this.#text = text;
  }

  readTop(): JsonValue {
    this.#skipSpace();
    if (this.#at >= this.#text.length) throw new JsonSyntaxError('EOF');
    return this.#value(0);
  }

  #skipSpace(): void {
    while (this.#at < this.#text.length && WHITESPACE.has(this.#text[this.#at] as string)) this.#at++;
  }

  /** The next non-space char, or throws `unexpected EOF`. */
  #peek(): string {
    this.#skipSpace();
    const char = this.#text[this.#at];
    if (char === undefined) throw new JsonSyntaxError('unexpected EOF');
    return char;
  }

  #fail(char: string, context: string): never {
    throw new JsonSyntaxError(`invalid character ${quoteChar(char)} ${context}`);
  }

  #value(depth: number): JsonValue {
    if (depth > JSON_NESTING_DEPTH_MAX) throw new JsonSyntaxError('exceeded max depth');
    const char = this.#peek();
    if (char === '{') return this.#object(depth);
    if (char === '[') return this.#array(depth);
    if (char === '"') return this.#string();
    if (char === '-' || (char >= '0' && char <= '9')) return this.#number();
    if (char === 't') return this.#literal('true', true);
    if (char === 'f') return this.#literal('false', false);
    if (char === 'n') return this.#literal('null', null);
    return this.#fail(char, 'looking for beginning of value');
  }

  #literal<T extends JsonValue>(word: string, value: T): T {
    for (let i = 0; i < word.length; i++) {
      const char = this.#text[this.#at + i];
      if (char === undefined) throw new JsonSyntaxError('unexpected EOF');
      if (char !== word[i]) this.#fail(char, `in literal ${word} (expecting ${quoteChar(word[i] as string)})`);
    }
    this.#at += word.length;
    return value;
  }

  #object(depth: number): JsonObject {
    this.#at++; // {
    const entries: (readonly [string, JsonValue])[] = [];
    if (this.#peek() === '}') {
      this.#at++;
      return new JsonObject(entries);
    }
    for (;;) {
      const keyStart = this.#peek();
      if (keyStart !== '"') this.#fail(keyStart, 'looking for beginning of object key string');
      const key = this.#string();
      const colon = this.#peek();
      if (colon !== ':') this.#fail(colon, 'after object key');
      this.#at++;
      entries.push([key, this.#value(depth + 1)]);
      const next = this.#peek();
      this.#at++;
      if (next === '}') return new JsonObject(entries);
      if (next !== ',') this.#fail(next, 'after object key:value pair');
    }
  }

  #array(depth: number): JsonValue[] {
    this.#at++; // [
    const items: JsonValue[] = [];
    if (this.#peek() === ']') {
      this.#at++;
      return items;
    }
    for (;;) {
      items.push(this.#value(depth + 1));
      const next = this.#peek();
      this.#at++;
      if (next === ']') return items;
      if (next !== ',') this.#fail(next, 'after array element');
    }
  }

  #string(): string {
    const text = this.#text;
    let out = '';
    let start = ++this.#at; // past the opening quote
    for (;;) {
      let end = start;
      while (end < text.length && text[end] !== '"' && text[end] !== '\\') end++;
      const chunk = text.slice(start, end);
      const control = CONTROL.exec(chunk);
      if (control !== null) this.#fail(control[0], 'in string literal');
      out += chunk;
      if (end >= text.length) throw new JsonSyntaxError('unexpected EOF');
      if (text[end] === '"') {
        this.#at = end + 1;
        return out;
      }
      const [decoded, next] = this.#escape(end + 1);
      out += decoded;
      start = next;
    }
  }

  /** Decodes the escape whose letter is at `at`; returns the text and the index after it. */
  #escape(at: number): [string, number] {
    const text = this.#text;
    const letter = text[at];
    if (letter === undefined) throw new JsonSyntaxError('unexpected EOF');
    const simple = ESCAPES[letter];
    if (simple !== undefined) return [simple, at + 1];
    if (letter !== 'u') this.#fail(letter, 'in string escape code');
    const unit = this.#hex4(at + 1);
    if (unit < 0xd800 || unit > 0xdfff) return [String.fromCharCode(unit), at + 5];
    // A high surrogate followed by an escaped low surrogate is one code point; anything else is
    // U+FFFD, as Go's decoder does.
    if (unit <= 0xdbff && text[at + 5] === '\\' && text[at + 6] === 'u') {
      const low = this.#hex4(at + 7);
      if (low >= 0xdc00 && low <= 0xdfff) return [String.fromCharCode(unit, low), at + 11];
    }
    return ['\ufffd', at + 5];
  }

  #hex4(at: number): number {
    let value = 0;
    for (let i = 0; i < 4; i++) {
      const char = this.#text[at + i];
      if (char === undefined) throw new JsonSyntaxError('unexpected EOF');
      const digit = Number.parseInt(char, 16);
      if (Number.isNaN(digit)) this.#fail(char, 'in \\u hexadecimal character escape');
      value = value * 16 + digit;
    }
    return value;
  }

  #number(): JsonNumber {
    const text = this.#text;
    const start = this.#at;
    let at = start;
    const digits = (context: string): void => {
      const char = text[at];
      if (char === undefined) throw new JsonSyntaxError('unexpected EOF');
      if (char < '0' || char > '9') this.#fail(char, context);
      while (text[at] !== undefined && (text[at] as string) >= '0' && (text[at] as string) <= '9') at++;
    };
    if (text[at] === '-') at++;
    if (text[at] === '0') at++;
    else digits('in numeric literal');
    if (text[at] === '.') {
      at++;
      digits('after decimal point in numeric literal');
    }
    if (text[at] === 'e' || text[at] === 'E') {
      at++;
      if (text[at] === '+' || text[at] === '-') at++;
      digits('in exponent of numeric literal');
    }
    this.#at = at;
    return new JsonNumber(text.slice(start, at));
  }
}
