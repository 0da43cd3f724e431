import { LevelStorage } from '../../../src/raft/storage/level-storage.js';
import { entries, hardState, snapshot } from './storage-helpers.js';

/**
 * The child process of level-storage-crash.test.ts: appends to the log at `<dataDir>` forever,
 * with sync:true, and prints "acked N" after each persist() resolves (N = last index). The
 * parent kills it with SIGKILL at a random moment and checks that every acked entry survived.
 * Every 40 rounds it also saves a snapshot and compacts, so kills land in those paths too.
 * stdout is a pipe, which Node writes synchronously on Linux: a printed ack was really acked.
 */

const ROUNDS_PER_TERM = 25;
const ROUNDS_PER_SNAPSHOT = 40;
const ENTRIES_PER_ROUND_MAX = 8;

async function main(dataDir: string): Promise<void> {
  const storage = new LevelStorage({ dataDir });
  const state = await storage.load();
  let lastIndex = state.entries.at(-1)?.index ?? state.snapshot?.meta.index ?? 0;
  let term = state.hardState.term;
  process.stdout.write(`loaded ${lastIndex}\n`);
  for (let round = 0; ; round++) {
    if (round % ROUNDS_PER_TERM === 0) term++;
    const appended = entries(lastIndex + 1, lastIndex + 1 + (round % ENTRIES_PER_ROUND_MAX), term);
    await storage.persist({ hardState: hardState(term, 's1', lastIndex), entries: appended, snapshot: null, sync: true });
    lastIndex += appended.length;
    process.stdout.write(`acked ${lastIndex}\n`);
    if (round % ROUNDS_PER_SNAPSHOT === ROUNDS_PER_SNAPSHOT - 1) {
      await storage.saveSnapshot(snapshot(lastIndex, term), lastIndex - 5);
    }
  }
}

const dataDir = process.argv[2];
if (dataDir === undefined) {
  process.stderr.write('usage: crash-child.js <dataDir>\n');
  process.exitCode = 2;
} else {
  await main(dataDir);
}
