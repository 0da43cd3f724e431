/**
 * `npm test`'s runner: tap as .taprc configures it (arguments passed through), and when the run
 * fails, every failing test point again at the very end, with its file and diagnostics. A full
 * run prints ~400,000 lines; a CI log that keeps only its tail showed the totals ("fail: 1") but
 * not which of the 99 files failed.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Where tap keeps each test file's TAP output (one .tap file per test file). */
const RESULTS_DIR = '.tap/test-results';
/** Diagnostic lines printed under one failing point. */
const DIAGNOSTIC_LINES_MAX = 40;
/** Failing points printed in all (a broken build can fail thousands). */
const FAILURES_PRINTED_MAX = 50;

const NOT_OK = /^(\s*)not ok \d+ - (.*)$/;
const EXEMPT = /# (TODO|SKIP)\b/i;

function resultFiles(directory: string): string[] {
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const path = join(directory, name);
    return statSync(path).isDirectory() ? resultFiles(path) : name.endsWith('.tap') ? [path] : [];
  });
}

/** The failing points in one file's TAP output, each with the YAML block that follows it. */
function failuresIn(text: string): string[] {
  const lines = text.split('\n');
  const failures: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const match = NOT_OK.exec(lines[i] as string);
    if (match === null || EXEMPT.test(match[2] as string)) continue;
    const indent = (match[1] as string).length;
    const block = [(lines[i] as string).trimStart()];
    for (let k = i + 1; k < lines.length && block.length <= DIAGNOSTIC_LINES_MAX; k++) {
      const line = lines[k] as string;
      if (line.trim() === '') continue;
      if (line.length - line.trimStart().length <= indent) break;
      block.push(line.slice(indent));
    }
    failures.push(block.join('\n'));
  }
  return failures;
}

function printFailures(startedMs: number): void {
  // Only this run's files: tap keeps results from earlier runs of other files.
  const files = resultFiles(RESULTS_DIR).filter((path) => statSync(path).mtimeMs >= startedMs).sort();
  let printed = 0;
  const lines: string[] = [];
  for (const path of files) {
    const failures = failuresIn(readFileSync(path, 'utf8'));
    if (failures.length === 0) continue;
    lines.push(`--- ${relative(RESULTS_DIR, path)}`);
    for (const failure of failures) {
      if (printed++ >= FAILURES_PRINTED_MAX) break;
      lines.push(failure);
    }
  }
  if (lines.length === 0) lines.push('(no failing test point in this run\'s results: a file may have crashed or timed out; see above)');
  console.log(`\n# Failures of this run, again (from ${RESULTS_DIR}):\n${lines.join('\n')}`);
}

const startedMs = Date.now() - 1000;
const child = spawn('tap', process.argv.slice(2), { stdio: 'inherit' });
child.on('error', (error) => {
  console.error(`cannot run tap: ${error.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (code !== 0) printFailures(startedMs);
  process.exit(code ?? (signal === null ? 1 : 128));
});
