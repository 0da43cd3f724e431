/**
 * Go's `time.ParseDuration` and `Duration.String`, with Go's exact error texts: Consul parses
 * every duration a client sends with them (`?wait=15000ms`, `?max_stale=`, a session's TTL and
 * LockDelay) and quotes their errors back (`Session TTL 'x' invalid: time: invalid duration "x"`).
 * Values are nanoseconds as bigint, like Go's int64, so nothing rounds on the way.
 */
import { goQuote } from './go-quote.js';

/** A duration text longer than this is not a duration (Go would overflow anyway). */
export const DURATION_TEXT_LENGTH_MAX = 64;

/** A parsed duration, or Go's error text. */
export type DurationResult = { readonly ok: true; readonly ns: bigint } | { readonly ok: false; readonly error: string };

const UNIT_NS: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['\u00b5s', 1_000n], // U+00B5 micro sign
  ['\u03bcs', 1_000n], // U+03BC Greek mu
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);

const INT64_LIMIT = 1n << 63n;

function isDigit(char: string | undefined): boolean {
  return char !== undefined && char >= '0' && char <= '9';
}

/** Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or a bare `0`. */
export function parseGoDuration(text: string): DurationResult {
  const invalid: DurationResult = { ok: false, error: `time: invalid duration ${goQuote(text)}` };
  if (text.length > DURATION_TEXT_LENGTH_MAX) return invalid;
  let rest = text;
  let negative = false;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    negative = rest.startsWith('-');
    rest = rest.slice(1);
  }
  if (rest === '0') return { ok: true, ns: 0n };
  if (rest === '') return invalid;
  let total = 0n;
  while (rest !== '') {
    const term = parseTerm(rest, text);
    if (!term.ok) return term.error === '' ? invalid : { ok: false, error: term.error };
    total += term.ns;
    if (total > INT64_LIMIT) return invalid;
    rest = term.rest;
  }
  if (negative) return { ok: true, ns: -total };
  if (total > INT64_LIMIT - 1n) return invalid;
  return { ok: true, ns: total };
}

type Term = { readonly ok: true; readonly ns: bigint; readonly rest: string } | { readonly ok: false; readonly error: string };

/** One `<number><unit>` term; an empty error means Go's generic "invalid duration". */
function parseTerm(text: string, original: string): Term {
  if (!(text[0] === '.' || isDigit(text[0]))) return { ok: false, error: '' };
  let i = 0;
  let whole = 0n;
  while (isDigit(text[i])) {
    whole = whole * 10n + BigInt(text.charCodeAt(i) - 48);
    if (whole > INT64_LIMIT) return { ok: false, error: '' };
    i++;
  }
  const hasWhole = i > 0;
  let fraction = 0n;
  let scale = 1;
  let hasFraction = false;
  if (text[i] === '.') {
    i++;
    let overflow = false;
    while (isDigit(text[i])) {
      hasFraction = true;
      const next = fraction * 10n + BigInt(text.charCodeAt(i) - 48);
      // Go stops accumulating (but keeps consuming digits) once the fraction would overflow.
      if (!overflow && next <= INT64_LIMIT) {
        fraction = next;
        scale *= 10;
      } else {
        overflow = true;
      }
      i++;
    }
  }
  if (!hasWhole && !hasFraction) return { ok: false, error: '' };
  let unitEnd = i;
  while (unitEnd < text.length && text[unitEnd] !== '.' && !isDigit(text[unitEnd])) unitEnd++;
  if (unitEnd === i) return { ok: false, error: `time: missing unit in duration ${goQuote(original)}` };
  const unitText = text.slice(i, unitEnd);
  const unit = UNIT_NS.get(unitText);
  if (unit === undefined) return { ok: false, error: `time: unknown unit ${goQuote(unitText)} in duration ${goQuote(original)}` };
  if (whole > INT64_LIMIT / unit) return { ok: false, error: '' };
  let ns = whole * unit;
  // Go computes the fraction in float64 (exact to the ns for anything up to hours); so do we.
  if (fraction > 0n) ns += BigInt(Math.trunc(Number(fraction) * (Number(unit) / scale)));
  if (ns > INT64_LIMIT) return { ok: false, error: '' };
  return { ok: true, ns, rest: text.slice(unitEnd) };
}

/** Go's `Duration.String()`: `10s`, `24h0m0s`, `1.5ms`, `0s`. */
export function formatGoDuration(ns: bigint): string {
  const negative = ns < 0n;
  let u = negative ? -ns : ns;
  let text: string;
  if (u === 0n) return '0s';
  if (u < 1_000_000_000n) {
    let unit = 'ms';
    let precision = 6;
    if (u < 1_000n) {
      unit = 'ns';
      precision = 0;
    } else if (u < 1_000_000n) {
      unit = '\u00b5s';
      precision = 3;
    }
    const [fractionText, integer] = formatFraction(u, precision);
    text = `${integer}${fractionText}${unit}`;
  } else {
    const [fractionText, seconds] = formatFraction(u, 9);
    u = seconds;
    text = `${u % 60n}${fractionText}s`;
    u /= 60n;
    if (u > 0n) {
      text = `${u % 60n}m${text}`;
      u /= 60n;
      if (u > 0n) text = `${u}h${text}`;
    }
  }
  return negative ? `-${text}` : text;
}

/** Go's fmtFrac: the fraction of v/10^precision without trailing zeros (no dot if 0), and v/10^precision. */
function formatFraction(value: bigint, precision: number): [string, bigint] {
  let digits = '';
  let printing = false;
  let rest = value;
  for (let i = 0; i < precision; i++) {
    const digit = rest % 10n;
    printing = printing || digit !== 0n;
    if (printing) digits = `${digit}${digits}`;
    rest /= 10n;
  }
  return [printing ? `.${digits}` : '', rest];
}

/** Milliseconds from nanoseconds, truncated toward zero and clamped to the safe-integer range. */
export function nsToMs(ns: bigint): number {
  const ms = ns / 1_000_000n;
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  if (ms > limit) return Number.MAX_SAFE_INTEGER;
  if (ms < -limit) return -Number.MAX_SAFE_INTEGER;
  return Number(ms);
}
