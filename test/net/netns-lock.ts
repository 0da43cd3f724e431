import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

/**
 * The kvt-* network namespaces (test/net/net.sh) are global: two test files that use them must
 * not run at once (tap runs files in parallel), or one's `net.sh down` tears down the other's
 * hosts. Each takes this lock before `net.sh up` and releases it after its last `net.sh down`
 * (unlockNetns, in its exit handler). A lock left by a process that is gone is taken over.
 */
const LOCK_DIR = '/run/conclave-kvt-netns.lock';

function ownerAlive(): boolean {
  try {
    const pid = Number(readFileSync(`${LOCK_DIR}/pid`, 'utf8'));
    if (!Number.isInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive but not ours to signal; anything else (ENOENT, ESRCH): gone or half-written.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let held = false;

/** Releases the lock if this process holds it; call after the last `net.sh down`. */
export function unlockNetns(): void {
  if (!held) return;
  held = false;
  rmSync(LOCK_DIR, { recursive: true, force: true });
}

/** Blocks (synchronously: it runs before the tests are declared) until the lock is ours. */
export function lockNetns(maxWaitMs: number): void {
  const deadline = Date.now() + maxWaitMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      writeFileSync(`${LOCK_DIR}/pid`, String(process.pid));
      held = true;
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    // A lock dir without a live owner (or still without its pid file after a moment) is stale.
    if (!ownerAlive()) {
      Atomics.wait(pause, 0, 0, 200);
      if (!ownerAlive()) rmSync(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`the kvt namespaces stayed busy for ${maxWaitMs} ms (${LOCK_DIR})`);
    Atomics.wait(pause, 0, 0, 500);
  }
}

/** How long to wait for another suite using the kvt namespaces (Tier 3 takes ~5 min). */
const NETNS_WAIT_MS = 600_000;

/**
 * Takes the lock and runs `net.sh up 3`; on success arranges `net.sh down` and the release at
 * process exit. Returns why the namespaces are unavailable, or null. Returns `down` too, for
 * a suite's teardown.
 */
export function namespacesUp(netSh: string): { readonly why: string | null; readonly down: () => void } {
  const down = (): void => {
    try {
      execFileSync('bash', [netSh, 'down'], { stdio: 'ignore' });
    } catch {
      // nothing to remove
    }
  };
  process.on('exit', () => {
    down();
    unlockNetns();
  });
  try {
    lockNetns(NETNS_WAIT_MS);
    execFileSync('bash', [netSh, 'up', '3'], { stdio: 'pipe' });
  } catch (error) {
    return { why: `net.sh up failed: ${String((error as { stderr?: Buffer }).stderr ?? error)}`, down };
  }
  return { why: null, down };
}
