import { Prng } from './prng.js';

/**
 * Named crash points for fault-injection tests (RELIABILITY.md B1, after etcd's gofail):
 * `CONCLAVE_FAILPOINTS=raft.beforePersist=crash@0.02,raft.afterPersist=crash@0.01` makes the
 * process exit abruptly (as kill -9 would leave it) with that probability each time the point
 * is passed. Off unless the variable is set; checking a point then costs one Map lookup.
 */
export type FailpointName =
  | 'raft.beforePersist'
  | 'raft.afterPersist'
  | 'raft.beforeApply'
  | 'raft.afterApply'
  | 'raft.beforeSnapshot'
  | 'raft.afterSnapshot';

interface Failpoint {
  readonly action: 'crash';
  readonly probability: number;
}

const points = parseFailpoints(process.env.CONCLAVE_FAILPOINTS ?? '');
const prng = new Prng(BigInt(process.env.CONCLAVE_FAILPOINT_SEED ?? Date.now()));

/** Parses `name=crash@p,...`; unknown names and bad probabilities are refused loudly. */
export function parseFailpoints(spec: string): Map<string, Failpoint> {
  const result = new Map<string, Failpoint>();
  for (const part of spec.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const match = /^([a-zA-Z.]+)=crash(?:@([0-9.]+))?$/.exec(part);
    if (match === null) throw new Error(`CONCLAVE_FAILPOINTS: cannot parse "${part}" (expected name=crash@probability)`);
    const probability = match[2] === undefined ? 1 : Number(match[2]);
    if (!(probability >= 0 && probability <= 1)) throw new Error(`CONCLAVE_FAILPOINTS: probability of ${match[1]} must be in [0, 1]`);
    result.set(match[1] as string, { action: 'crash', probability });
  }
  return result;
}

/** Passes the named point: may end the process at once when a test armed it. */
export function failpoint(name: FailpointName): void {
  if (points.size === 0) return;
  const point = points.get(name);
  if (point === undefined || !prng.chance(point.probability)) return;
  process.stderr.write(`failpoint ${name}: crashing\n`);
  process.kill(process.pid, 'SIGKILL');
}

/**
 * Deliberate bugs for positive controls (RELIABILITY.md B1): a checker that does not catch its
 * planted bug is broken. Never set outside tests.
 */
export type TestBug = 'ack-before-fsync' | 'read-without-leader-check' | 'vote-not-persisted' | 'no-lockdelay';

const bugs = new Set((process.env.CONCLAVE_TEST_BUG ?? '').split(',').filter((s) => s.length > 0));

/** True when the named planted bug is switched on. */
export function testBug(name: TestBug): boolean {
  return bugs.size > 0 && bugs.has(name);
}
