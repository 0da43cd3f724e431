import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Prng } from '../../../src/lib/prng.js';
import { LevelStorage } from '../../../src/raft/storage/level-storage.js';

/**
 * Crash durability with a real process and a real kill -9: a child persists with sync:true and
 * prints "acked N" after each persist; we SIGKILL it at a random moment (often mid-persist or
 * mid-snapshot), reopen the data dir and check that every acked entry is there, contiguous,
 * under a valid hard state. Several rounds run on the same data dir, each child resuming from
 * what the previous one left. (A process kill keeps the page cache; power loss is Tier 3's.)
 */

const CHILD = fileURLToPath(new URL('./crash-child.js', import.meta.url));
const ROUNDS = 5;
/** Upper bound of one child's run, so a hung child fails the test instead of stalling it. */
const CHILD_RUN_MS_MAX = 20_000;

interface ChildRun {
  readonly loadedIndex: number;
  readonly ackedIndex: number;
  readonly signal: NodeJS.Signals | null;
}

/** Runs the child until `killAfterMs` past its first ack, then SIGKILLs it. */
function runAndKill(dataDir: string, killAfterMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let loadedIndex = -1;
    let ackedIndex = -1;
    let pending = '';
    let killTimer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => child.kill('SIGKILL'), CHILD_RUN_MS_MAX);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const [word, number] = line.split(' ');
        if (word === 'loaded') loadedIndex = Number(number);
        if (word === 'acked') ackedIndex = Math.max(ackedIndex, Number(number));
        if (word === 'acked' && killTimer === undefined) killTimer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      clearTimeout(guard);
      clearTimeout(killTimer);
      resolve({ loadedIndex, ackedIndex, signal });
    });
  });
}

t.test('every entry acked before a kill -9 survives, contiguous, with a valid hard state', async (t) => {
  const dataDir = t.testdir();
  const prng = new Prng(Number(process.env['SEED'] ?? 20261127));
  let ackedBefore = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const run = await runAndKill(dataDir, prng.between(50, 400));
    t.equal(run.signal, 'SIGKILL', `round ${round}: killed by SIGKILL`);
    t.ok(run.loadedIndex >= ackedBefore, `round ${round}: the child loaded ${run.loadedIndex} >= ${ackedBefore} acked before`);
    t.ok(run.ackedIndex > run.loadedIndex, `round ${round}: the child acked ${run.ackedIndex} before the kill`);
    const storage = new LevelStorage({ dataDir });
    const state = await storage.load();
    await storage.close();
    const snapshotIndex = state.snapshot?.meta.index ?? 0;
    const lastIndex = state.entries.at(-1)?.index ?? snapshotIndex;
    t.ok(lastIndex >= run.ackedIndex, `round ${round}: loaded through ${lastIndex}, acked through ${run.ackedIndex}`);
    const decoder = new TextDecoder();
    let contiguous = true;
    let dataMatches = true;
    state.entries.forEach((entry, i) => {
      if (entry.index !== snapshotIndex + 1 + i) contiguous = false;
      if (decoder.decode(entry.data) !== `command ${entry.index}@${entry.term}`) dataMatches = false;
    });
    t.ok(contiguous, `round ${round}: entries run contiguously from the snapshot (${snapshotIndex})`);
    t.ok(dataMatches, `round ${round}: every entry holds what was written for it`);
    t.equal(state.hardState.vote, 's1');
    t.ok(state.hardState.term >= (state.entries.at(-1)?.term ?? 0), `round ${round}: hard state term covers the log`);
    t.ok(state.hardState.commit <= lastIndex, `round ${round}: commit within the log`);
    ackedBefore = run.ackedIndex;
  }
});
