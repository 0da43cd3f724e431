import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** What `t.assertTotals` gives (tap's Counts), the only part used here. */
interface Totals {
  readonly assertTotals: { readonly pass: number; readonly fail: number };
}

/**
 * Every suite ends with the plain line `N passed, N failed` (RELIABILITY.md "Figures"), printed
 * when the process exits, from tap's assertion totals, and writes `results/<suite>/summary.json`
 * with those counts and whatever figures the suite collected in `figures`.
 */
export function reportSuiteTotals(t: Totals, suite: string, figures: Record<string, unknown> = {}): void {
  process.on('exit', () => {
    const { pass, fail } = t.assertTotals;
    process.stdout.write(`\n${pass} passed, ${fail} failed\n`);
    try {
      const dir = join(resolve('results'), suite);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'summary.json'), `${JSON.stringify({ suite, passed: pass, failed: fail, ...figures }, null, 2)}\n`);
    } catch {
      // a results directory we cannot write must not change the verdict
    }
  });
}
