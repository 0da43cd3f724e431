import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/**
 * Clock faults for Tier 3 (RELIABILITY.md "Clock"): libfaketime per server, never the host clock.
 * Every server of a `clock` run starts preloaded with libfaketime and reads its fake time from
 * its own file (/var/tmp/kvt/nI.ft) on every clock call; the nemesis writes into that file.
 *
 * What libfaketime 0.9.10 (Debian 12) does to Node 20, checked here with child node processes
 * against the parent's clocks (test/net/faketime.test.ts keeps checking it):
 * - It fakes CLOCK_REALTIME (`Date.now()`) AND CLOCK_MONOTONIC (`process.hrtime`,
 *   `performance.now()`, and libuv's loop time, which is what drives `setTimeout` and
 *   `setInterval`), and divides `epoll_wait` timeouts by the rate. So "Date and timers follow"
 *   (RELIABILITY.md) holds, and so does the monotonic clock: an offset or a rate moves every
 *   clock Node has. The Raft ticker, election timeouts, the lease, the session TTL timers and the
 *   lock-delay stamps all see the same fake time.
 * - A step forward (`+2`) fires every timer due within 2 s at once. A step back (`-2`, or `+0`
 *   after `+2`) freezes every timer armed before it for the length of the step, while sockets are
 *   still served: a server whose clock stopped (a real monotonic clock never goes back, but one
 *   that ran at rate 0 for 2 s looks the same to the process) — Consul's clock caveat at its
 *   sharpest: a leader whose timers are frozen still believes its lease.
 * - A step back to before the process started aborts Node: `Assertion failed: (now) >=
 *   (timer_base())` in Environment::GetNowUint64(). The nemesis never steps a server back
 *   further than its uptime.
 * - A rate `xR` applies from the process's start, not from when it is written: fake =
 *   start + offset + (now − start) × R. Writing `+0 x1.5` 60 s after start jumps the clock 30 s
 *   ahead (and a slower rate jumps it back, freezing the timers: a child printing every 250 ms
 *   went silent for good after `+0 x0.5`). So a rate starting now carries the offset that keeps
 *   the clock continuous, −(now − start) × (R − 1) (clockValue()); the runner knows each
 *   server's start to a few ms, so the step at the switch is (R − 1) × that error.
 * - A value without `x` keeps the last rate (`+0` after `x1.5` still runs ×1.5), so every value
 *   written names its rate, and the true time is `+0 x1`.
 * - FAKETIME_XRESET (a rate applies from when it is written) is not used: it restarts the fake
 *   clock from its cache of the last readings and ignores the offset of any value with an `x`,
 *   and in children driven by stdin the first `+0 x4` put the clock 3 × (now − 1970) ahead, 170
 *   years (`+0 xR`: (R − 1) × now), though not in a child driven by a timer.
 * - FAKETIME_DONT_FAKE_MONOTONIC=1 keeps `performance.now()`, `process.hrtime` and so the timers
 *   on the true clock, and only `Date.now()` moves: with offsets at rate 1, an NTP step of the
 *   wall clock (the runner's `clockWallOnly`). Not with another rate: `epoll_wait` timeouts are
 *   still divided by it, so timers drift from both clocks (a 250 ms interval kept ticking at half
 *   speed after `+0 x0.5`, `+0`).
 * - The file is read on a clock call: a process that reads no clock between two writes never sees
 *   the first. A server reads its clocks all the time (the Raft ticker alone, every 100 ms).
 * - Each preloaded process creates /dev/shm/faketime_shm_<pid> and sem.faketime_sem_<pid> and
 *   removes them only on a clean exit; the runner removes a killed server's by its PID.
 */

/** Debian's libfaketime (package `libfaketime`, pulled in by `faketime`). */
export const FAKETIME_LIBRARY = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

/** The true time, at rate 1 (a bare `+0` would keep an earlier rate). */
export const CLOCK_TRUE = '+0 x1';

/** Null when libfaketime is installed; otherwise why clock faults cannot run. */
export function faketimeMissing(): string | null {
  return existsSync(FAKETIME_LIBRARY) ? null : `libfaketime not installed (${FAKETIME_LIBRARY}; apt-get install -y faketime)`;
}

/** The environment that makes a process read its time from `timestampFile`. */
export function faketimeEnv(timestampFile: string, options: { wallClockOnly?: boolean } = {}): Record<string, string> {
  return {
    ...(options.wallClockOnly === true ? { FAKETIME_DONT_FAKE_MONOTONIC: '1' } : {}),
    LD_PRELOAD: FAKETIME_LIBRARY,
    FAKETIME_TIMESTAMP_FILE: timestampFile,
    // Read the file on every clock call, not every 10 s: the nemesis's changes land at once.
    FAKETIME_NO_CACHE: '1',
  };
}

/**
 * The value that makes a process's clocks read `offsetS` ahead of the true time from now on, and
 * run at `rate` from now on. `startedAtWallMs`: when the process started (libfaketime measures
 * a rate from there); only needed for a rate other than 1.
 */
export function clockValue(offsetS: number, rate = 1, startedAtWallMs = 0, nowWallMs = Date.now()): string {
  const drift = rate === 1 ? 0 : ((nowWallMs - startedAtWallMs) / 1000) * (rate - 1);
  const totalS = offsetS - drift;
  return `${totalS < 0 ? '-' : '+'}${Math.abs(totalS).toFixed(3)} x${rate}`;
}

/**
 * Writes a fake time; the process reads it on its next clock call. Through a rename, so the
 * process never reads a half-written file (libfaketime exits on a value it cannot parse).
 */
export function setClock(timestampFile: string, value: string): void {
  const next = `${timestampFile}.next`;
  writeFileSync(next, `${value}\n`);
  renameSync(next, timestampFile);
}

/** Removes what a preloaded process that did not exit cleanly left in /dev/shm. */
export function removeFaketimeShm(pid: number): void {
  for (const name of [`faketime_shm_${pid}`, `sem.faketime_sem_${pid}`]) rmSync(`/dev/shm/${name}`, { force: true });
}
