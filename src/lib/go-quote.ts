/**
 * Go's `%q` / `%#v` formatting of a string (`strconv.Quote`), which Consul uses in error texts
 * such as `invalid session "<sid>"` and `key "k" doesn't exist`. Clients match these texts, so a
 * key with a quote or a newline must be escaped exactly as Go does.
 */

/** Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space. */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

const NAMED_ESCAPES: Readonly<Record<string, string>> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
  '"': '\\"',
  '\\': '\\\\',
};

/** Quotes `text` as Go's `strconv.Quote` does (the input is well-formed UTF-16). */
export function goQuote(text: string): string {
  let quoted = '"';
  for (const char of text) quoted += quoteRune(char);
  return quoted + '"';
}

function quoteRune(char: string): string {
  const named = NAMED_ESCAPES[char];
  if (named !== undefined) return named;
  if (PRINTABLE.test(char)) return char;
  const codePoint = char.codePointAt(0) ?? 0;
  if (codePoint < 0x20 || codePoint === 0x7f) return `\\x${hex(codePoint, 2)}`;
  if (codePoint < 0x10000) return `\\u${hex(codePoint, 4)}`;
  return `\\U${hex(codePoint, 8)}`;
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}
