/**
 * Command-line flags as Go's `flag` package parses them, which is what Consul's commands use:
 * `-name=value`, `-name value` (not for booleans), `--name` as `-name`, booleans as `-name` or
 * `-name=false` (Go ParseBool), parsing stops at the first argument that is not a flag (so
 * `kv get foo -recurse` has two arguments), and `--` ends the flags. Errors use Go's texts:
 * `flag provided but not defined: -x`, `flag needs an argument: -x`,
 * `invalid value "v" for flag -x: parse error`, `invalid boolean value "v" for -x: parse error`.
 *
 * `-h`, `-help` or `--help` anywhere before `--` asks for the command's help (mitchellh/cli,
 * which Consul's CLI runs on, checks for it before the command parses anything).
 */
import { assert } from '../lib/assert.js';
import { UINT64_MAX } from '../state/limits.js';
import type { CliIo } from './cli-io.js';

/** The kinds of flag: a bool, a string, a uint64 (exact), or a repeatable string. */
export type FlagKind = 'bool' | 'string' | 'uint64' | 'list';

/** One flag's declaration. */
export interface FlagSpec {
  readonly kind: FlagKind;
  readonly usage: string;
  /** The string default (string flags only); "" otherwise. */
  readonly default?: string;
}

/** A command's flags, by name (without the dash). */
export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

type ValueOf<K extends FlagKind> = K extends 'bool' ? boolean : K extends 'uint64' ? bigint : K extends 'list' ? string[] : string;

/** The parsed values, typed by the declarations. */
export type FlagValues<S extends FlagSpecs> = { readonly [N in keyof S]: ValueOf<S[N]['kind']> };

/** What parsing gave. */
export type FlagParse<S extends FlagSpecs> =
  | { readonly kind: 'ok'; readonly values: FlagValues<S>; readonly args: readonly string[]; readonly given: ReadonlySet<string> }
  | { readonly kind: 'help' }
  | { readonly kind: 'error'; readonly message: string };

/** Go's `strconv.ParseBool`. */
function parseBool(text: string): boolean | null {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return null;
}

/** Go's `strconv.ParseUint(text, 0, 64)` as the flag package calls it: the value, or the error kind. */
function parseUint64(text: string): bigint | 'parse error' | 'value out of range' {
  let value: bigint;
  if (/^[1-9][0-9]*$/.test(text)) value = BigInt(text);
  else if (/^0[xX][0-9a-fA-F]+$/.test(text)) value = BigInt(`0x${text.slice(2)}`);
  else if (/^0[bB][01]+$/.test(text)) value = BigInt(`0b${text.slice(2)}`);
  else if (/^0[oO][0-7]+$/.test(text)) value = BigInt(`0o${text.slice(2)}`);
  else if (/^0[0-7]*$/.test(text)) value = BigInt(`0o${text.slice(1) || '0'}`);
  else return 'parse error';
  return value > UINT64_MAX ? 'value out of range' : value;
}

function initialValues(specs: FlagSpecs): Record<string, boolean | bigint | string | string[]> {
  const values: Record<string, boolean | bigint | string | string[]> = {};
  for (const [name, spec] of Object.entries(specs)) {
    values[name] = spec.kind === 'bool' ? false : spec.kind === 'uint64' ? 0n : spec.kind === 'list' ? [] : (spec.default ?? '');
  }
  return values;
}

/** True when the arguments ask for help before any `--`. */
export function asksForHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg === '-h' || arg === '-help' || arg === '--help') return true;
  }
  return false;
}

/** Sets one flag from its text; an error message, or null. */
function setFlag(values: Record<string, unknown>, name: string, spec: FlagSpec, text: string): string | null {
  switch (spec.kind) {
    case 'string':
      values[name] = text;
      return null;
    case 'list':
      (values[name] as string[]).push(text);
      return null;
    case 'uint64': {
      const parsed = parseUint64(text);
      if (typeof parsed === 'string') return `invalid value ${JSON.stringify(text)} for flag -${name}: ${parsed}`;
      values[name] = parsed;
      return null;
    }
    case 'bool': {
      const parsed = parseBool(text);
      if (parsed === null) return `invalid boolean value ${JSON.stringify(text)} for -${name}: parse error`;
      values[name] = parsed;
      return null;
    }
  }
}

/** Parses `argv` against `specs` (Go's FlagSet.Parse). */
export function parseFlags<S extends FlagSpecs>(argv: readonly string[], specs: S): FlagParse<S> {
  if (asksForHelp(argv)) return { kind: 'help' };
  const values = initialValues(specs);
  const given = new Set<string>();
  let at = 0;
  while (at < argv.length) {
    const arg = argv[at] as string;
    if (arg.length < 2 || !arg.startsWith('-')) break;
    at++;
    if (arg === '--') break;
    let name = arg.slice(arg.startsWith('--') ? 2 : 1);
    if (name === '' || name.startsWith('-') || name.startsWith('=')) return { kind: 'error', message: `bad flag syntax: ${arg}` };
    let value: string | null = null;
    const equals = name.indexOf('=', 1);
    if (equals > 0) {
      value = name.slice(equals + 1);
      name = name.slice(0, equals);
    }
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (spec === undefined) return { kind: 'error', message: `flag provided but not defined: -${name}` };
    if (value === null && spec.kind === 'bool') value = 'true';
    if (value === null) {
      if (at >= argv.length) return { kind: 'error', message: `flag needs an argument: -${name}` };
      value = argv[at] as string;
      at++;
    }
    const error = setFlag(values, name, spec, value);
    if (error !== null) return { kind: 'error', message: error };
    given.add(name);
  }
  assert(at <= argv.length, 'parsing never passes the end');
  return { kind: 'ok', values: values as FlagValues<S>, args: argv.slice(at), given };
}

/** The `Usage:` text of a command: its help, then each flag with its usage (Consul's flags.Usage). */
export function usageText(help: string, specs: FlagSpecs): string {
  const lines = [help.trim(), ''];
  const names = Object.keys(specs).sort();
  if (names.length > 0) lines.push('Options:', '');
  for (const name of names) {
    const spec = specs[name] as FlagSpec;
    const placeholder = spec.kind === 'bool' ? '' : spec.kind === 'uint64' ? '=<uint>' : '=<string>';
    const fallback = spec.kind === 'string' && spec.default !== undefined && spec.default !== '' ? ` The default is "${spec.default}".` : '';
    lines.push(`  -${name}${placeholder}`, `     ${spec.usage}${fallback}`, '');
  }
  return lines.join('\n').trimEnd();
}

/**
 * Parses a command's flags, answering `-help` (help on stdout, 0) and flag errors (the error and
 * the usage on stderr, 1, as Go's flag package prints them). Returns the parse, or the exit code.
 */
export function parseCommandFlags<S extends FlagSpecs>(argv: readonly string[], specs: S, help: string, io: CliIo):
  Extract<FlagParse<S>, { kind: 'ok' }> | number {
  const parsed = parseFlags(argv, specs);
  if (parsed.kind === 'ok') return parsed;
  if (parsed.kind === 'help') {
    io.out(usageText(help, specs));
    return 0;
  }
  io.err(parsed.message);
  io.err(usageText(help, specs));
  return 1;
}
