/**
 * Percent-decoding and -encoding as Go's net/url does it, because Consul's routing, keys and
 * error texts come out of Go's URL handling: `%2F` in a path is a `/` of the key, `+` is a space
 * only in a query, `Conflicting flags:` re-encodes the query with `Values.Encode()`, and a
 * redirect's Location is `url.URL{Path}.String()`.
 *
 * Request targets arrive from Node's HTTP parser as latin1 text (one char per byte), so a char
 * ≤ 0xFF is a byte; a wider char (only possible through `inject()`) is taken as UTF-8.
 */

const HEX = '0123456789ABCDEF';
const utf8Fatal = new TextDecoder('utf-8', { fatal: true });
const utf8Lenient = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 65 && code <= 70) return code - 55;
  if (code >= 97 && code <= 102) return code - 87;
  return -1;
}

/** The first invalid `%` escape in `text`, as Go's `EscapeError` names it (`"%zz"`), or null. */
export function invalidEscape(text: string): string | null {
  for (let i = text.indexOf('%'); i >= 0; i = text.indexOf('%', i + 1)) {
    if (hexValue(text.charCodeAt(i + 1)) < 0 || hexValue(text.charCodeAt(i + 2)) < 0) return text.slice(i, i + 3);
  }
  return null;
}

/**
 * The bytes `text` percent-encodes (`plusIsSpace` for query components), or null on a bad escape.
 */
export function percentDecodeBytes(text: string, plusIsSpace: boolean): Uint8Array | null {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 37 /* % */) {
      const high = hexValue(text.charCodeAt(i + 1));
      const low = hexValue(text.charCodeAt(i + 2));
      if (high < 0 || low < 0) return null;
      bytes.push(high * 16 + low);
      i += 2;
    } else if (code === 43 /* + */ && plusIsSpace) {
      bytes.push(32);
    } else if (code <= 0xff) {
      bytes.push(code);
    } else {
      const codePoint = text.codePointAt(i) ?? code;
      for (const byte of utf8Encoder.encode(String.fromCodePoint(codePoint))) bytes.push(byte);
      if (codePoint > 0xffff) i++;
    }
  }
  return Uint8Array.from(bytes);
}

/** True when `text` is plain ASCII with nothing to decode (the common case, decoded for free). */
function isPlainAscii(text: string, plusIsSpace: boolean): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80 || code === 37 || (plusIsSpace && code === 43)) return false;
  }
  return true;
}

/**
 * A percent-decoded path or query component. `strict`: invalid UTF-8 gives null (a key must be
 * text); otherwise it becomes U+FFFD. A bad escape gives null either way.
 */
export function percentDecode(text: string, plusIsSpace: boolean, strict: boolean): string | null {
  if (isPlainAscii(text, plusIsSpace)) return text;
  const bytes = percentDecodeBytes(text, plusIsSpace);
  if (bytes === null) return null;
  if (!strict) return utf8Lenient.decode(bytes);
  try {
    return utf8Fatal.decode(bytes);
  } catch {
    return null;
  }
}

function escapeWith(text: string, keep: (code: number) => boolean, spaceAsPlus: boolean): string {
  let out = '';
  for (const byte of utf8Encoder.encode(text)) {
    if (keep(byte)) out += String.fromCharCode(byte);
    else if (byte === 32 && spaceAsPlus) out += '+';
    else out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}

function isUnreserved(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122)
    || code === 45 || code === 46 || code === 95 || code === 126; // - . _ ~
}

/** Go's `url.QueryEscape`: unreserved bytes kept, space → `+`, everything else `%XX`. */
export function goQueryEscape(text: string): string {
  return escapeWith(text, isUnreserved, true);
}

/** `$&+,/:;=@` stay unescaped in a Go path (RFC 3986 §3.3); `?` does not. */
const PATH_RESERVED_KEPT = new Set([36, 38, 43, 44, 47, 58, 59, 61, 64]);

/** Go's path escaping (`url.URL{Path: p}.EscapedPath()`), for a redirect's Location. */
export function goPathEscape(path: string): string {
  return escapeWith(path, (code) => isUnreserved(code) || PATH_RESERVED_KEPT.has(code), false);
}
