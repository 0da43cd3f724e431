/**
 * The value of `--name` in `argv` (the next argument), or undefined when the option is absent.
 * Throws when the option has no value; a value that starts with `--` counts as missing unless
 * `dashedValue` (Node options such as `--single-threaded-gc` passed through).
 */
export function optionValue(argv: readonly string[], name: string, dashedValue = false): string | undefined {
  const at = argv.indexOf(`--${name}`);
  if (at === -1) return undefined;
  const next = argv[at + 1];
  if (next === undefined || (next.startsWith('--') && !dashedValue)) throw new Error(`--${name} needs a value`);
  return next;
}
