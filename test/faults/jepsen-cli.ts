import { ALL_FAULTS } from './nemesis.js';
import type { FaultKind } from './nemesis.js';
import { runJepsen } from './jepsen.js';

/**
 * A long Tier 2 mixed-fault run (issue 8): `npm run jepsen -- --time 600 --faults all`.
 *
 *   --time S          seconds of faults (default 600)
 *   --faults LIST     `all` or a comma list of nemesis kinds (test/faults/nemesis.ts)
 *   --servers N       3 or 5 (default 3)
 *   --seed N          nemesis and workload seed (default: from the clock, printed)
 *   --failpoints SPEC CONCLAVE_FAILPOINTS for every server (e.g. raft.beforePersist=crash@0.002);
 *                     crashed servers are restarted by a supervisor
 *   --name NAME       results/<NAME>-<time>/ (default jepsen-<servers>)
 *
 * Prints summary.json's figures; exits 1 when any must-be-0 figure is not 0.
 */
function parse(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k] as string;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const eq = arg.indexOf('=');
    if (eq > 0) flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    else {
      const value = argv[k + 1];
      if (value === undefined) throw new Error(`${arg} needs a value`);
      flags.set(arg.slice(2), value);
      k++;
    }
  }
  const known = new Set(['time', 'faults', 'servers', 'seed', 'failpoints', 'name']);
  for (const name of flags.keys()) if (!known.has(name)) throw new Error(`unknown flag --${name}`);
  return flags;
}

function faultList(spec: string): FaultKind[] {
  if (spec === 'all') return [...ALL_FAULTS];
  const kinds = spec.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const kind of kinds) if (!(ALL_FAULTS as readonly string[]).includes(kind)) throw new Error(`unknown fault ${kind}; known: ${ALL_FAULTS.join(', ')}`);
  return kinds as FaultKind[];
}

async function main(): Promise<number> {
  const flags = parse(process.argv.slice(2));
  const timeS = Number(flags.get('time') ?? 600);
  const servers = Number(flags.get('servers') ?? 3);
  const seed = Number(flags.get('seed') ?? Date.now() % 100_000);
  if (!(timeS > 0) || !Number.isInteger(seed) || (servers !== 3 && servers !== 5)) throw new Error('--time must be > 0, --seed an integer, --servers 3 or 5');
  const failpoints = flags.get('failpoints');
  const name = flags.get('name') ?? `jepsen-${servers}`;
  process.stdout.write(`${name}: ${servers} servers, ${timeS} s, seed ${seed}\n`);
  const result = await runJepsen({
    name, servers, timeS, seed, faults: faultList(flags.get('faults') ?? 'all'),
    defaultReadsMayBeStale: false,
    ...(failpoints === undefined ? {} : { env: { CONCLAVE_FAILPOINTS: failpoints, CONCLAVE_FAILPOINT_SEED: String(seed) }, supervise: true }),
  });
  process.stdout.write(`${JSON.stringify(result.summary, null, 2)}\n`);
  process.stdout.write(`results: ${result.dir}\n`);
  if (result.problems.length > 0) {
    process.stdout.write(`FAILED:\n${result.problems.join('\n')}\n`);
    return 1;
  }
  process.stdout.write('every must-be-0 figure is 0\n');
  return 0;
}

main().then((code) => process.exit(code), (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(2);
});
