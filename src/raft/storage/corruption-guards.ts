import { access, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptionError } from '../../lib/errors.js';
import { syncDirectory } from './snapshot-store.js';

/**
 * Guards against corruption that LevelDB hides from us (classic-level opens it with
 * paranoid_checks and verify_checksums off): a sticky refusal marker and a "log written"
 * sentinel, both plain files in `<dataDir>/raft` next to the database.
 */

const SENTINEL_FILE = 'LOG-WRITTEN';

/**
 * A file that exists once the log holds data, outside LevelDB. If LevelDB then returns no
 * metadata record at all, it lost data it had (checked here: a flipped bit in a table file's
 * index block made LevelDB return an empty database, without any error), or `raft/log` was
 * deleted. Either way a server that starts empty could vote again in terms it voted in
 * (hashicorp/raft #661), so load() refuses. The file is written after the first batch, never
 * before: a crash between the two leaves data without the file, which is merely unguarded.
 */
export class LogWrittenSentinel {
  readonly #raftDirectory: string;
  #known = false;

  /** `raftDirectory`: `<dataDir>/raft`. */
  constructor(raftDirectory: string) {
    this.#raftDirectory = raftDirectory;
  }

  /** The sentinel's path. */
  get path(): string {
    return join(this.#raftDirectory, SENTINEL_FILE);
  }

  /**
   * At load: rejects with CorruptionError if the sentinel exists but the log has no metadata;
   * writes the sentinel if the log has metadata but the sentinel is missing.
   */
  async check(logHasMeta: boolean, logDirectory: string): Promise<void> {
    const exists = await fileExists(this.path);
    if (exists && !logHasMeta) {
      throw new CorruptionError(
        `raft log: ${logDirectory} returned no metadata record, but ${this.path} says the log was written: ` +
          'LevelDB lost its data (or the directory was replaced)',
      );
    }
    if (!exists && logHasMeta) await this.markWritten();
    this.#known = exists || logHasMeta;
  }

  /** After a batch that stored the metadata record: creates the sentinel durably, once. */
  async markWritten(): Promise<void> {
    if (this.#known) return;
    await writeDurably(this.path, `the raft log in ${this.#raftDirectory}/log holds data\n`, this.#raftDirectory);
    this.#known = true;
  }
}

/** Lines of LevelDB's info log that mean it skipped data while recovering. */
const DROPPED_DATA_LINE = /dropping \d+ bytes|Corruption/;
/** A corrupt database writes a handful of lines; more is noise in the error message. */
const REPORTED_LINES_MAX = 10;
const MARKER_FILE = 'CORRUPTION';

/**
 * The sticky refusal marker of one data dir's Raft storage.
 *
 * With paranoid_checks off, when a record of LevelDB's write-ahead log fails its checksum during
 * recovery, LevelDB drops it (and the rest of its block) and only writes "(ignoring error) …: dropping N bytes; Corruption: checksum mismatch" to its info log
 * (`LOG`, rotated at every open). Checked here: a flipped bit in the last synced batch made one
 * acknowledged entry vanish, LevelDB then deleted the old write-ahead log, and the next open
 * looked perfectly healthy. A server that silently lost acknowledged entries can help elect a
 * stale leader (PAR/CTRL, FAST'18), so we refuse to start instead.
 *
 * Because LevelDB has already rewritten its files by the time we can look, the refusal is made
 * sticky with a marker file: load() refuses while `<dataDir>/raft/CORRUPTION` exists. An operator
 * either wipes the data dir and re-adds the server, or removes the marker after deciding the
 * data is good (a never-acknowledged batch torn by a power loss reads the same way if it left
 * garbage behind rather than a short file).
 */
export class CorruptionMarker {
  readonly #raftDirectory: string;

  /** `raftDirectory`: `<dataDir>/raft`. */
  constructor(raftDirectory: string) {
    this.#raftDirectory = raftDirectory;
  }

  /** The marker's path. */
  get path(): string {
    return join(this.#raftDirectory, MARKER_FILE);
  }

  /** Rejects with CorruptionError while the marker exists. */
  async refuseIfMarked(): Promise<void> {
    let content: string;
    try {
      content = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    throw new CorruptionError(`raft storage: ${this.path} exists, recorded at an earlier start: ${content.trim()}`);
  }

  /**
   * After LevelDB opened `logDirectory`: if its info log shows dropped data, writes the marker
   * (fsynced) and rejects with CorruptionError naming the lines.
   */
  async checkLevelDbRecovery(logDirectory: string): Promise<void> {
    const infoLogPath = join(logDirectory, 'LOG');
    let infoLog: string;
    try {
      infoLog = await readFile(infoLogPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    const lines = infoLog.split('\n').filter((line) => DROPPED_DATA_LINE.test(line)).slice(0, REPORTED_LINES_MAX);
    if (lines.length === 0) return;
    const message =
      `LevelDB dropped data while recovering ${logDirectory} (acknowledged entries may be lost); ` +
      `its ${infoLogPath} says: ${lines.join(' | ')}`;
    await writeDurably(this.path, `${message}\n`, this.#raftDirectory);
    throw new CorruptionError(`raft log: ${message}; recorded in ${this.path}`);
  }
}

async function fileExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Writes a small file and fsyncs it and its directory. */
async function writeDurably(path: string, content: string, directory: string): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await syncDirectory(directory);
}

/** LevelDB's open error for a manifest file that CURRENT names and that does not exist. */
const MISSING_MANIFEST = /\/MANIFEST-\d+: No such file or directory/;

/**
 * LevelDB's own corruption reports (code LEVEL_CORRUPTION), and a manifest that CURRENT names but
 * that is missing, as CorruptionError; others unchanged.
 */
export function asCorruptionError(error: unknown, logDirectory: string): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  const causeCode = (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  const causeMessage = String((error as { cause?: { message?: unknown } } | null)?.cause?.message ?? '');
  if (causeCode === 'LEVEL_IO_ERROR' && MISSING_MANIFEST.test(causeMessage)) {
    // CURRENT names the manifest to read; a manifest that is not there is a damaged CURRENT (a
    // flipped bit in its digits: test/faults/bitflip.test.ts) or a lost file, never a passing
    // I/O condition, so it is refused as corruption (exit status 2), not retried.
    return new CorruptionError(`raft log: LevelDB's CURRENT in ${logDirectory} names a manifest that does not exist: ${causeMessage}`, { cause: error });
  }
  if (code !== 'LEVEL_CORRUPTION' && causeCode !== 'LEVEL_CORRUPTION') return error;
  const detail = code === 'LEVEL_CORRUPTION' ? (error as Error).message : String((error as { cause: Error }).cause.message);
  return new CorruptionError(`raft log: LevelDB reports corruption in ${logDirectory}: ${detail}`, { cause: error });
}
