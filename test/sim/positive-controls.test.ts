import t from 'tap';
import { runSeed, seedsFor } from './run-seed.js';

/**
 * Positive controls of Tier 1 (RELIABILITY.md B1): a planted bug must make the simulation's
 * invariants fail, or the invariants are not checking what they claim. Deterministic, unlike a
 * staged real-process scenario, so it proves the control on every run.
 */
t.test('vote-not-persisted: a server that forgets its vote across a crash votes twice in a term (caught)', async (t) => {
  let caught = 0;
  let first = '';
  for (const seed of seedsFor('control-vote', 3, 200)) {
    const result = runSeed(seed, 3, 5000, false, { bug: 'vote-not-persisted', faults: { crashes: true, partitions: true } });
    if (!result.ok) {
      caught++;
      if (first === '') first = result.error?.split('\n')[0] ?? '';
    }
  }
  t.ok(caught > 0, `the invariants caught the bug in ${caught} of 200 seeds (first: ${first})`);
  t.match(first, /voted twice|two leaders/, 'as a double vote or two leaders in a term');
});

t.test('the same seeds without the bug pass (the control is the bug, not the seeds)', async (t) => {
  let failed = 0;
  for (const seed of seedsFor('control-vote', 3, 200)) {
    if (!runSeed(seed, 3, 5000, false, { faults: { crashes: true, partitions: true } }).ok) failed++;
  }
  t.equal(failed, 0);
});

t.test('pause-not-counted: a leader whose lease outlives a long pause of its process serves stale reads (caught)', async (t) => {
  // The real driver counts a pause (owed ticks past half an election timeout) for the lease only
  // (RaftCore.skipTicks). Planted: the pause is not counted at all. Long pauses, so that the
  // others elect a leader and acknowledge writes before the paused one resumes.
  const faults = { pauses: true, pauseMsMax: 8000, leaseReads: true, clockSkew: false, partitions: true, crashes: false };
  let caught = 0;
  let first = '';
  for (const seed of seedsFor('control-pause', 3, 300)) {
    const result = runSeed(seed, 3, 5000, false, { bug: 'pause-not-counted', faults });
    if (!result.ok) {
      caught++;
      if (first === '') first = result.error?.split('\n')[0] ?? '';
    }
  }
  t.ok(caught > 0, `the invariants caught the bug in ${caught} of 300 seeds (first: ${first})`);
  t.match(first, /stale read .*lease=true/, 'as a stale lease read');
  let failed = 0;
  for (const seed of seedsFor('control-pause', 3, 300)) if (!runSeed(seed, 3, 5000, false, { faults }).ok) failed++;
  t.equal(failed, 0, 'the same seeds without the bug pass');
});

t.test('guards-ignored: a leader given a longer election timeout than its voters leases past their guards and serves stale reads (caught)', async (t) => {
  // n1's election timeout is 4× the others' (transfers hand it leadership). Planted: the leader
  // takes each voter's guard to be its own timeout, as the lease did before voters reported
  // theirs (HeartbeatResponse.guardMs). Cut off, it then serves lease reads after n2 and n3
  // elected a successor that acknowledged writes; clients that gave up on it see them.
  const faults = { leaseReads: true, clockSkew: false, partitions: true, transfers: true, crashes: false, pauses: false, membership: false };
  const electionTimeouts = [40, 10, 10];
  let caught = 0;
  let first = '';
  for (const seed of seedsFor('control-guards', 3, 100)) {
    const result = runSeed(seed, 3, 20_000, false, { bug: 'guards-ignored', faults, electionTimeouts });
    if (!result.ok) {
      caught++;
      if (first === '') first = result.error?.split('\n')[0] ?? '';
    }
  }
  t.ok(caught > 0, `the invariants caught the bug in ${caught} of 100 seeds (first: ${first})`);
  t.match(first, /stale read .*lease=true/, 'as a stale lease read');
  let failed = 0;
  for (const seed of seedsFor('control-guards', 3, 100)) if (!runSeed(seed, 3, 20_000, false, { faults, electionTimeouts }).ok) failed++;
  t.equal(failed, 0, 'the same seeds without the bug pass');
});
