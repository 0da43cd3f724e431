import t from 'tap';
import type { Test } from 'tap';
import { runSeed, seedsFor } from './run-seed.js';
import type { SimulationOptions } from './simulator.js';

/**
 * Positive controls of Tier 1 (RELIABILITY.md B1): a planted bug must make the simulation's
 * invariants fail, or the invariants are not checking what they claim. Deterministic, unlike a
 * staged real-process scenario, so it proves the control on every run. Each control also runs
 * its seeds without the bug, which must all pass (the control is the bug, not the seeds).
 */

interface Control {
  readonly suite: string;
  readonly seeds: number;
  readonly steps: number;
  readonly bug: NonNullable<SimulationOptions['bug']>;
  readonly options: Pick<SimulationOptions, 'faults' | 'electionTimeouts'>;
}

/** How many seeds the bug fails (and the first error), and how many fail without it. */
function runControl(control: Control): { caught: number; first: string; failedWithoutBug: number } {
  let caught = 0;
  let first = '';
  let failedWithoutBug = 0;
  for (const seed of seedsFor(control.suite, 3, control.seeds)) {
    const result = runSeed(seed, 3, control.steps, false, { ...control.options, bug: control.bug });
    if (!result.ok) {
      caught++;
      if (first === '') first = result.error?.split('\n')[0] ?? '';
    }
    if (!runSeed(seed, 3, control.steps, false, control.options).ok) failedWithoutBug++;
  }
  return { caught, first, failedWithoutBug };
}

function checkControl(t: Test, control: Control, expected: RegExp, as: string): void {
  const { caught, first, failedWithoutBug } = runControl(control);
  t.ok(caught > 0, `the invariants caught the bug in ${caught} of ${control.seeds} seeds (first: ${first})`);
  t.match(first, expected, as);
  t.equal(failedWithoutBug, 0, 'the same seeds without the bug pass');
}

t.test('vote-not-persisted: a server that forgets its vote across a crash votes twice in a term (caught)', async (t) => {
  checkControl(t, { suite: 'control-vote', seeds: 200, steps: 5000, bug: 'vote-not-persisted', options: { faults: { crashes: true, partitions: true } } },
    /voted twice|two leaders/, 'as a double vote or two leaders in a term');
});

t.test('pause-not-counted: a leader whose lease outlives a long pause of its process serves stale reads (caught)', async (t) => {
  // The real driver counts a pause (owed ticks past half an election timeout) for the lease only
  // (RaftCore.skipTicks). Planted: the pause is not counted at all. Long pauses, so that the
  // others elect a leader and acknowledge writes before the paused one resumes.
  const faults = { pauses: true, pauseMsMax: 8000, leaseReads: true, clockSkew: false, partitions: true, crashes: false };
  checkControl(t, { suite: 'control-pause', seeds: 300, steps: 5000, bug: 'pause-not-counted', options: { faults } },
    /stale read .*lease=true/, 'as a stale lease read');
});

t.test('guards-ignored: a leader given a longer election timeout than its voters leases past their guards and serves stale reads (caught)', async (t) => {
  // n1's election timeout is 4× the others' (transfers hand it leadership). Planted: the leader
  // takes each voter's guard to be its own timeout, as the lease did before voters reported
  // theirs (HeartbeatResponse.guardMs). Cut off, it then serves lease reads after n2 and n3
  // elected a successor that acknowledged writes; clients that gave up on it see them.
  const faults = { leaseReads: true, clockSkew: false, partitions: true, transfers: true, crashes: false, pauses: false, membership: false };
  checkControl(t, { suite: 'control-guards', seeds: 100, steps: 20_000, bug: 'guards-ignored', options: { faults, electionTimeouts: [40, 10, 10] } },
    /stale read .*lease=true/, 'as a stale lease read');
});
