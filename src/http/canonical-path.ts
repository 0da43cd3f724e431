/**
 * The path rules Consul inherits from Go's HTTP stack (consul-api.md §1), applied to every
 * request before routing decisions are acted on:
 * 1. a bad `%` escape is refused by Go's server (400);
 * 2. go-cleanhttp's PrintablePathCheckHandler refuses a decoded path with a character that is
 *    not `unicode.IsPrint` (400, empty body); invalid UTF-8 is refused the same way here, since a
 *    key must be text;
 * 3. Go's ServeMux redirects a non-canonical path (`//`, `/./`, `/../`) to its cleaned form (301),
 *    with the query kept, so keys with empty or dot segments are unreachable.
 * The decoded path (`%2F` included) is what handlers take their key or id from.
 */
import { URL_BYTES_MAX } from './limits.js';
import { goPathEscape, invalidEscape, percentDecode } from './url-codec.js';

/** What to do with a request's path. */
export type PathCheck =
  | { readonly kind: 'ok'; readonly path: string }
  | { readonly kind: 'redirect'; readonly location: string }
  | { readonly kind: 'bad-escape'; readonly escape: string }
  | { readonly kind: 'unprintable' }
  | { readonly kind: 'too-long' };

/** Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space. */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]*$/u;

function isPrintable(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code < 0x20 || code > 0x7e) return PRINTABLE.test(path);
  }
  return true;
}

/** True when Go's cleanPath would change nothing (no empty or dot segment). */
function looksClean(path: string): boolean {
  return !path.includes('//') && !path.includes('/./') && !path.includes('/../')
    && !path.endsWith('/.') && !path.endsWith('/..');
}

/** Go's `cleanPath` (net/http): `path.Clean`, keeping a trailing slash. */
export function cleanPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const cleaned = `/${segments.join('/')}`;
  return path.endsWith('/') && cleaned !== '/' ? `${cleaned}/` : cleaned;
}

/** Checks the request target `url` (path and query, as received). */
export function checkPath(url: string): PathCheck {
  if (url.length > URL_BYTES_MAX) return { kind: 'too-long' };
  const queryAt = url.indexOf('?');
  const rawPath = queryAt < 0 ? url : url.slice(0, queryAt);
  const decoded = percentDecode(rawPath, false, true);
  if (decoded === null) {
    const escape = invalidEscape(rawPath);
    return escape === null ? { kind: 'unprintable' } : { kind: 'bad-escape', escape };
  }
  if (!isPrintable(decoded)) return { kind: 'unprintable' };
  if (looksClean(decoded)) return { kind: 'ok', path: decoded };
  const cleaned = cleanPath(decoded);
  if (cleaned === decoded) return { kind: 'ok', path: decoded };
  const query = queryAt < 0 || queryAt === url.length - 1 ? '' : url.slice(queryAt);
  return { kind: 'redirect', location: `${goPathEscape(cleaned)}${query}` };
}
