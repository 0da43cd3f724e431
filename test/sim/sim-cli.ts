import { runSeed, seedsFor } from './run-seed.js';

/**
 * `npm run sim -- --seeds N --steps M --nodes K` runs a soak; `--seed 0x… --trace` replays one
 * seed and prints its event trace.
 */
function parseArgs(argv: readonly string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k] as string;
    if (!arg.startsWith('--')) continue;
    const next = argv[k + 1];
    if (next === undefined || next.startsWith('--')) args.set(arg.slice(2), 'true');
    else {
      args.set(arg.slice(2), next);
      k++;
    }
  }
  return args;
}

function main(): number {
  const args = parseArgs(process.argv.slice(2));
  const steps = Number(args.get('steps') ?? 2000);
  const nodesList = (args.get('nodes') ?? '3,5').split(',').map(Number);
  const trace = args.get('trace') === 'true';
  const single = args.get('seed');
  if (single !== undefined) {
    let failed = 0;
    for (const nodes of nodesList) {
      const result = runSeed(BigInt(single), nodes, steps, trace);
      if (trace) for (const line of result.trace) console.log(line);
      console.log(JSON.stringify({ seed: single, nodes, ok: result.ok, traceHash: result.traceHash, stats: result.stats }));
      if (!result.ok) {
        console.log(result.error);
        failed++;
      }
    }
    return failed === 0 ? 0 : 1;
  }
  const count = Number(args.get('seeds') ?? 500);
  const suite = args.get('suite') ?? 'soak';
  let passed = 0;
  let failed = 0;
  const started = Date.now();
  for (const nodes of nodesList) {
    for (const seed of seedsFor(suite, nodes, count)) {
      const result = runSeed(seed, nodes, steps);
      if (result.ok) passed++;
      else {
        failed++;
        console.log(`FAIL nodes=${nodes}: ${result.error?.split('\n')[0] ?? ''}`);
        console.log(`  replay: npm run sim -- --seed 0x${seed.toString(16)} --steps ${steps} --nodes ${nodes} --trace`);
      }
    }
  }
  console.log(`${passed} passed, ${failed} failed (${steps} steps each, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = main();
