/**
 * Go's time.ParseDuration, which Consul uses for every duration in configs, query parameters
 * and bodies: `300ms`, `1.5h`, `1m30s`, `-1h`; units ns us µs ms s m h; a bare `0` is allowed.
 * Returns nanoseconds as a number (exact up to 2^53 ns ≈ 104 days, far beyond any setting), or
 * null when the text is not a duration.
 */
const UNIT_NS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3,
  'μs': 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** The longest duration text we parse; anything longer is not a duration a person wrote. */
const DURATION_TEXT_LENGTH_MAX = 64;

export function parseGoDuration(text: string): number | null {
  if (text.length === 0 || text.length > DURATION_TEXT_LENGTH_MAX) return null;
  let rest = text;
  let sign = 1;
  if (rest[0] === '-' || rest[0] === '+') {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest.length === 0) return null;
  let total = 0;
  const pattern = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;
  while (rest.length > 0) {
    const match = pattern.exec(rest);
    if (match === null) return null;
    const whole = match[1] ?? '';
    const fraction = match[2] ?? '';
    if (whole.length === 0 && fraction.length === 0) return null;
    const unit = UNIT_NS[match[3] as string] as number;
    total += Number(whole.length > 0 ? whole : '0') * unit;
    if (fraction.length > 0) total += Math.round(Number(`0.${fraction}`) * unit);
    rest = rest.slice(match[0].length);
  }
  if (!Number.isFinite(total)) return null;
  return sign * total;
}

/** Milliseconds from a Go duration text, or null. */
export function parseGoDurationMs(text: string): number | null {
  const ns = parseGoDuration(text);
  return ns === null ? null : ns / 1e6;
}

/** Formats nanoseconds the way Go's Duration.String does (`1m30s`, `15ms`, `0s`). */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return '0s';
  const negative = ns < 0;
  let rest = Math.abs(ns);
  let text: string;
  if (rest < 1e3) text = `${rest}ns`;
  else if (rest < 1e6) text = `${trim(rest / 1e3)}µs`;
  else if (rest < 1e9) text = `${trim(rest / 1e6)}ms`;
  else {
    const hours = Math.floor(rest / 3600e9);
    rest -= hours * 3600e9;
    const minutes = Math.floor(rest / 60e9);
    rest -= minutes * 60e9;
    const seconds = trim(rest / 1e9);
    text = hours > 0 ? `${hours}h${minutes}m${seconds}s` : minutes > 0 ? `${minutes}m${seconds}s` : `${seconds}s`;
  }
  return negative ? `-${text}` : text;
}

function trim(value: number): string {
  return Number(value.toFixed(9)).toString();
}
