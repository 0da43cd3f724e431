import { execFileSync } from 'node:child_process';
import t from 'tap';

// Entries written by PUTs must share one hidden class. Built with `{ ...candidate, … }`, V8's
// optimized object spread gave every KvEntry a Map of its own (with its DescriptorArray and
// PropertyArray): ~290 bytes more per key, 1.4 GiB instead of ~1 GiB RSS per server at 1M keys
// (scripts/bench/scale.ts), and GC pauses long enough for elections during a bulk load.
// %HaveSameMap needs --allow-natives-syntax, so the check runs in a child process.

const FSM_URL = new URL('../../src/state/fsm.js', import.meta.url).href;
const HELPERS_URL = new URL('./helpers.js', import.meta.url).href;
/** Enough writes for the apply path to be optimized (the spread kept its map until then). */
const WRITES = 20_000;

t.test('entries written by PUTs share one hidden class', async (t) => {
  const script = `
    const { Harness, put } = await import(${JSON.stringify(HELPERS_URL)});
    await import(${JSON.stringify(FSM_URL)});
    const h = new Harness();
    for (let i = 0; i < ${WRITES}; i++) h.bool(put('key/' + i, 'value ' + i, BigInt(i % 3)));
    const first = h.entry('key/0');
    let shared = 0;
    for (let i = ${WRITES} - 1000; i < ${WRITES}; i++) if (%HaveSameMap(first, h.entry('key/' + i))) shared++;
    process.stdout.write(JSON.stringify({ shared, fast: %HasFastProperties(h.entry('key/${WRITES - 1}')) }));
  `;
  const output = execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.same(JSON.parse(output), { shared: 1000, fast: true }, 'the last 1,000 entries have the first one\'s map');
});
