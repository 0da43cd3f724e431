import t from 'tap';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CLOCK_TRUE, clockValue, faketimeEnv, faketimeMissing, removeFaketimeShm, setClock } from './clock-faults.js';

/**
 * What the Tier 3 `clock` nemesis relies on (test/net/clock-faults.ts): under libfaketime a Node
 * process's wall clock, monotonic clock and timers all follow the timestamp file — offsets at
 * once, a rate from the moment it is written when clockValue() carries the right offset — a step
 * back freezes its timers, and a value names its rate or keeps the last one. Compared with this
 * process's own, unfaked clocks. The bounds are loose on purpose (2 cores, background load): each
 * one separates "followed" from "did not" by a wide margin.
 */

const CHILD = `
const out = (value) => process.stdout.write(JSON.stringify(value) + '\\n');
const lines = require('node:readline').createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line === 'clocks') out({ kind: 'clocks', dateMs: Date.now(), monotonicMs: Number(process.hrtime.bigint() / 1000000n), performanceMs: performance.now() });
  else if (line.startsWith('timer ')) { const ms = Number(line.slice(6)); setTimeout(() => out({ kind: 'timer', ms }), ms); }
});
lines.on('close', () => process.exit(0));
`;

interface Reading {
  readonly kind: string;
  readonly dateMs: number;
  readonly monotonicMs: number;
  readonly performanceMs: number;
}

class FakedChild {
  readonly #child: ChildProcessWithoutNullStreams;
  /** When it was spawned: libfaketime measures a rate from the process's start. */
  readonly startedAtWallMs: number;
  readonly #waiting: { kind: string; resolve: (value: Reading) => void }[] = [];
  constructor(timestampFile: string) {
    setClock(timestampFile, CLOCK_TRUE);
    this.startedAtWallMs = Date.now();
    this.#child = spawn(process.execPath, ['-e', CHILD], { env: { ...process.env, ...faketimeEnv(timestampFile) } });
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const value = JSON.parse(line) as Reading;
      const index = this.#waiting.findIndex((w) => w.kind === value.kind);
      if (index >= 0) this.#waiting.splice(index, 1)[0]?.resolve(value);
    });
  }
  #next(kind: string): Promise<Reading> {
    return new Promise((resolve) => this.#waiting.push({ kind, resolve }));
  }
  /** The child's clocks, and ours around the question. */
  async clocks(): Promise<{ child: Reading; dateMs: number; monotonicMs: number }> {
    const reply = this.#next('clocks');
    this.#child.stdin.write('clocks\n');
    const child = await reply;
    return { child, dateMs: Date.now(), monotonicMs: performance.now() };
  }
  /** Resolves when a `setTimeout(ms)` armed in the child now fires. */
  timer(ms: number): Promise<Reading> {
    const fired = this.#next('timer');
    this.#child.stdin.write(`timer ${ms}\n`);
    return fired;
  }
  /** Arms a timer, expecting the child to die doing so: how it ended and what it said. */
  async timerExit(ms: number): Promise<{ signal: NodeJS.Signals | null; stderr: string }> {
    let stderr = '';
    this.#child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => this.#child.once('exit', (_code, signal) => resolve(signal)));
    this.#child.stdin.write(`timer ${ms}\n`);
    const signal = await exited;
    if (this.#child.pid !== undefined) removeFaketimeShm(this.#child.pid);
    return { signal, stderr };
  }
  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin.end();
    await exited;
    if (this.#child.pid !== undefined) removeFaketimeShm(this.#child.pid);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** Resolves 'late' after `ms`, without keeping the process alive once the race is decided. */
const within = (ms: number): Promise<'late'> => new Promise((resolve) => setTimeout(() => resolve('late'), ms).unref());

type ClockReadings = Awaited<ReturnType<FakedChild['clocks']>>;
/** How far the child's wall clock is ahead of ours. */
const offsetMs = (readings: ClockReadings): number => readings.child.dateMs - readings.dateMs;
async function rateOver(child: FakedChild, ms: number): Promise<number> {
  const before = await child.clocks();
  await sleep(ms);
  const after = await child.clocks();
  return (after.child.dateMs - before.child.dateMs) / (after.dateMs - before.dateMs);
}

const missing = faketimeMissing();
t.test('libfaketime moves every clock of a Node process', { skip: missing ?? false }, async (t) => {
  const file = join(t.testdir(), 'n.ft');

  await t.test('an offset moves Date.now, process.hrtime and performance.now at once', async (t) => {
    const child = new FakedChild(file);
    const before = await child.clocks();
    setClock(file, clockValue(100));
    const after = await child.clocks();
    const realDateMs = after.dateMs - before.dateMs;
    const realMonotonicMs = after.monotonicMs - before.monotonicMs;
    for (const [clock, gainedMs] of [
      ['Date.now', after.child.dateMs - before.child.dateMs - realDateMs],
      ['process.hrtime', after.child.monotonicMs - before.child.monotonicMs - realMonotonicMs],
      ['performance.now', after.child.performanceMs - before.child.performanceMs - realMonotonicMs],
    ] as const) {
      t.ok(gainedMs > 90_000 && gainedMs < 110_000, `${clock} gained ${Math.round(gainedMs)} ms over ours (+100 s written)`);
    }
    setClock(file, CLOCK_TRUE);
    await child.close();
  });

  await t.test('a step back freezes timers until the clock catches up', async (t) => {
    const child = new FakedChild(file);
    await sleep(4000); // a step back past the process's start aborts Node (next test)
    // Only timers armed before the step are held back: their expiry is in the old time.
    const fired = child.timer(1000);
    await child.clocks(); // the child has armed it
    setClock(file, clockValue(-2));
    t.equal(await Promise.race([fired, within(1800)]), 'late', 'a 1 s timer, then a 2 s step back: not fired 1.8 s later');
    setClock(file, CLOCK_TRUE);
    t.not(await Promise.race([fired, within(30_000)]), 'late', 'it fires once the clock is true again');
    await child.close();
  });

  await t.test('a step back past the process start aborts Node', async (t) => {
    // node's Environment::GetNowUint64() asserts `now >= timer_base()`: the monotonic clock went
    // below its value at start-up. A real CLOCK_MONOTONIC cannot; the nemesis never steps a
    // server back further than its uptime.
    const child = new FakedChild(file);
    await child.clocks();
    setClock(file, clockValue(-600));
    const exit = await child.timerExit(500);
    t.equal(exit.signal, 'SIGABRT', 'the child aborted');
    t.match(exit.stderr, /now\) >= \(timer_base\(\)\)/, 'on node\'s timer_base assertion');
    setClock(file, CLOCK_TRUE);
  });

  await t.test('a rate from now on (clockValue) speeds clocks and timers up, without a jump', async (t) => {
    const child = new FakedChild(file);
    await sleep(3000);
    const before = await child.clocks();
    setClock(file, clockValue(0, 20, child.startedAtWallMs));
    const switched = await child.clocks();
    // Without the offset clockValue() adds, the clock would jump 19 × (3 s or more) = 57 s. With
    // it, the jump is 19 × the error in the child's start time (spawn to libfaketime's start).
    t.ok(Math.abs(offsetMs(switched)) < 20_000, `no jump at the switch: ${offsetMs(switched)} ms off`);
    // 60 s of fake time: 3 s of ours at rate 20, a minute without it.
    const fired = child.timer(60_000);
    t.not(await Promise.race([fired, within(40_000)]), 'late', 'a 60 s timer fired within 40 s');
    const after = await child.clocks();
    const realMs = after.monotonicMs - before.monotonicMs;
    const dateRate = (after.child.dateMs - before.child.dateMs) / realMs;
    const monotonicRate = (after.child.monotonicMs - before.child.monotonicMs) / realMs;
    t.ok(dateRate > 5 && dateRate < 25, `Date.now ran ${dateRate.toFixed(1)}× (rate 20 written)`);
    t.ok(monotonicRate > 5 && monotonicRate < 25, `process.hrtime ran ${monotonicRate.toFixed(1)}×`);
    setClock(file, CLOCK_TRUE);
    await child.close();
  });

  await t.test('a value without x keeps the last rate; +0 x1 is the true time', async (t) => {
    const child = new FakedChild(file);
    await sleep(1000);
    setClock(file, clockValue(0, 4, child.startedAtWallMs));
    await child.clocks();
    await sleep(500);
    setClock(file, '+0');
    const stillFast = await rateOver(child, 1000);
    t.ok(stillFast > 2, `after a rate of 4, a bare +0 leaves it on: ${stillFast.toFixed(1)}×`);
    setClock(file, CLOCK_TRUE);
    const trueAgain = offsetMs(await child.clocks());
    const normal = await rateOver(child, 1000);
    t.ok(Math.abs(trueAgain) < 500, `${CLOCK_TRUE} is the true time: ${trueAgain} ms off`);
    t.ok(normal > 0.7 && normal < 1.5, `at rate 1: ${normal.toFixed(2)}×`);
    await child.close();
  });
});
if (missing !== null) t.comment(`skipped: ${missing}`);
