import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Level } from 'level';
import { loadClusterId, saveClusterId } from '../../src/agent/identity.js';
import { messageWithCauses } from '../../src/cli/agent-command.js';
import { CorruptionError } from '../../src/lib/errors.js';
import { runConclave } from '../cli/helpers.js';

/**
 * Damage in a data dir that once let a server start wrongly, or stop without saying why (both
 * found by test/faults/bitflip.test.ts): a flipped bit in `cluster-id` that left a well-formed
 * id (the server came up and every peer refused it as another cluster's, for ever), and one in
 * LevelDB's CURRENT (the server stopped with "Database failed to open" and nothing else).
 */

function agentArgs(dataDir: string): string[] {
  return ['agent', '-server', '-bootstrap', '-node=refusals', `-data-dir=${dataDir}`, '-bind=127.0.0.1', '-client=127.0.0.1', '-dns-port=0', '-http-port=0', '-server-port=0'];
}

t.test('cluster-id: written with a checksum, read back; a legacy file without one still reads', async (t) => {
  const dir = t.testdir();
  const clusterId = '5e3ff62eb49dbc70e2db6b857ecf6ddf';
  saveClusterId(dir, clusterId);
  t.match(readFileSync(join(dir, 'cluster-id'), 'utf8'), /^5e3ff62eb49dbc70e2db6b857ecf6ddf\ncrc32 [0-9a-f]{8}\n$/);
  t.equal(loadClusterId(dir), clusterId);
  writeFileSync(join(dir, 'cluster-id'), `${clusterId}\n`);
  t.equal(loadClusterId(dir), clusterId, 'one line, as written before the checksum');
  t.equal(loadClusterId(t.testdir()), null, 'no file: no cluster yet');
});

t.test('cluster-id: a flipped bit is refused, also one that leaves a well-formed id', async (t) => {
  const dir = t.testdir();
  saveClusterId(dir, '5e3ff62eb49dbc70e2db6b857ecf6ddf');
  const good = readFileSync(join(dir, 'cluster-id'));
  // 'e' (0x65) ^ 0x01 = 'd': still 32 hex digits, so only the checksum can tell.
  for (const [offset, bit, what] of [[1, 0, 'hex to hex'], [4, 3, 'hex to non-hex'], [32, 1, 'the line break'], [40, 0, 'the checksum']] as const) {
    const damaged = Buffer.from(good);
    damaged[offset] = (damaged[offset] as number) ^ (1 << bit);
    writeFileSync(join(dir, 'cluster-id'), damaged);
    t.throws(() => loadClusterId(dir), CorruptionError, what);
  }
});

t.test('a start-up error line carries the causes (LevelDB names the file only there)', async (t) => {
  const cause = new Error('IO error: /data/raft/log/MANIFEST-000102: No such file or directory');
  t.equal(messageWithCauses(new Error('Database failed to open', { cause })), 'Database failed to open: IO error: /data/raft/log/MANIFEST-000102: No such file or directory');
  t.equal(messageWithCauses(new Error('same', { cause: new Error('same') })), 'same', 'a repeated message once');
  t.equal(messageWithCauses('plain'), 'plain');
});

t.test('an agent whose cluster-id has a flipped bit refuses to start and names the file', async (t) => {
  const dataDir = t.testdir();
  saveClusterId(dataDir, '5e3ff62eb49dbc70e2db6b857ecf6ddf');
  const damaged = readFileSync(join(dataDir, 'cluster-id'));
  damaged[1] = (damaged[1] as number) ^ 0x01;
  writeFileSync(join(dataDir, 'cluster-id'), damaged);
  const run = await runConclave(agentArgs(dataDir));
  t.equal(run.code, 2, 'the corruption exit status');
  t.match(run.stderr, /refusing to start: .*cluster-id: not a cluster id with its checksum/);
});

t.test("an agent whose LevelDB CURRENT names a missing manifest says which file is missing", async (t) => {
  const dataDir = t.testdir();
  const logDirectory = join(dataDir, 'raft', 'log');
  mkdirSync(logDirectory, { recursive: true });
  const db = new Level(logDirectory);
  await db.open();
  await db.close();
  const current = readFileSync(join(logDirectory, 'CURRENT'), 'utf8');
  t.match(current, /^MANIFEST-\d{6}\n$/);
  writeFileSync(join(logDirectory, 'CURRENT'), current.replace(/\d\n$/, (digit) => `${(Number(digit[0]) + 5) % 10}\n`));
  const run = await runConclave(agentArgs(dataDir));
  t.equal(run.code, 2, 'the corruption exit status');
  t.match(run.stderr, /==> Error: refusing to start: raft log: LevelDB's CURRENT in .* names a manifest that does not exist: .*raft\/log\/MANIFEST-\d{6}: No such file or directory/);
});
