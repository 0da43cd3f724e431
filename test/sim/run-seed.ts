import { Simulator } from './simulator.js';
import type { SimulationOptions } from './simulator.js';

/** The outcome of one simulated run. */
export interface SeedResult {
  readonly seed: bigint;
  readonly nodes: number;
  readonly ok: boolean;
  readonly error: string | null;
  readonly traceHash: number;
  readonly stats: Simulator['stats'];
}

/** Time allowed for convergence after healing: ~40 election timeouts of simulated time. */
export const CONVERGENCE_TIME = 40 * 10 * 100 * 2;

/** Runs one seed: `steps` events with faults, then heal and wait for convergence. */
export function runSeed(seed: bigint, nodes: number, steps: number, trace = false, extra: Pick<SimulationOptions, 'bug' | 'faults' | 'electionTimeouts'> = {}): SeedResult & { trace: readonly string[] } {
  const sim = new Simulator({ seed, nodes, trace, ...extra });
  let error: string | null = null;
  try {
    sim.runSteps(steps);
    sim.heal();
    error = sim.runUntilConverged(CONVERGENCE_TIME);
  } catch (caught) {
    error = caught instanceof Error ? `${caught.name}: ${caught.message}\n${caught.stack ?? ''}` : String(caught);
  }
  return { seed, nodes, ok: error === null, error, traceHash: sim.traceHash, stats: sim.stats, trace: sim.traceLines };
}

/** Seeds for a named suite: deterministic, distinct per suite and cluster size. */
export function seedsFor(suite: string, nodes: number, count: number): bigint[] {
  let base = 0xcbf29ce484222325n;
  for (const ch of `${suite}/${nodes}`) base = BigInt.asUintN(64, (base ^ BigInt(ch.charCodeAt(0))) * 0x100000001b3n);
  return Array.from({ length: count }, (_, k) => BigInt.asUintN(64, base + BigInt(k) * 0x9e3779b97f4a7c15n));
}
