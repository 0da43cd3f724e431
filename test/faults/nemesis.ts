import { Prng } from '../../src/lib/prng.js';
import type { FaultCluster } from './fault-cluster.js';
import type { History } from './history.js';
import { delay } from './http-ops.js';

/**
 * Tier 2 faults (RELIABILITY.md): kill -9 and restart (leader, follower, all), SIGSTOP/SIGCONT of
 * the leader, Jepsen's partition shapes through the fault proxy (isolated leader, random
 * majority/minority, bridge, majorities ring, one-way), delay with jitter, and — through the
 * servers' CONCLAVE_FAILPOINTS — crashes at named points, which the supervisor restarts.
 * Every fault and heal goes into the history.
 */
export type FaultKind =
  | 'kill-leader' | 'kill-follower' | 'kill-all'
  | 'pause-leader'
  | 'partition-leader' | 'partition-halves' | 'partition-bridge' | 'partition-ring' | 'partition-one-way'
  | 'delay';

export const ALL_FAULTS: readonly FaultKind[] = [
  'kill-leader', 'kill-follower', 'kill-all', 'pause-leader',
  'partition-leader', 'partition-halves', 'partition-bridge', 'partition-ring', 'partition-one-way', 'delay',
];

export interface NemesisOptions {
  readonly kinds: readonly FaultKind[];
  /** Quiet time between faults, ms [min, max]. */
  readonly intervalMs: readonly [number, number];
  /** How long a fault is held, ms [min, max]. */
  readonly holdMs: readonly [number, number];
  readonly seed: number;
}

/** Runs faults until `stop.done`, then heals everything. Counts faults by kind. */
export class Nemesis {
  readonly counts: Record<string, number> = {};
  /** Servers the nemesis took down on purpose (the supervisor leaves them alone). */
  readonly down = new Set<string>();
  readonly paused = new Set<string>();
  crashes = 0;
  /** Faults left in the current shuffled round: every kind comes once per round. */
  #deck: FaultKind[] = [];
  #supervisor: NodeJS.Timeout | null = null;
  readonly #prng: Prng;

  constructor(readonly fc: FaultCluster, readonly history: History, readonly options: NemesisOptions) {
    this.#prng = new Prng(options.seed);
  }

  /** Restarts servers that died on their own (failpoint crashes), after a short pause. */
  startSupervisor(): void {
    const dead = new Map<string, number>();
    this.#supervisor = setInterval(() => {
      for (const name of this.fc.names) {
        if (this.fc.running(name) || this.down.has(name)) {
          dead.delete(name);
          continue;
        }
        const since = dead.get(name);
        if (since === undefined) {
          dead.set(name, Date.now());
          this.crashes++;
          const tail = this.fc.cluster.agent(name).output.slice(-300);
          this.history.event('crash', { node: name, failpoint: /failpoint (\S+)/.exec(tail)?.[1] ?? null });
          continue;
        }
        if (Date.now() - since >= 500) {
          dead.delete(name);
          this.history.event('restart', { node: name });
          this.fc.cluster.start(name);
        }
      }
    }, 200);
  }

  stopSupervisor(): void {
    if (this.#supervisor !== null) clearInterval(this.#supervisor);
    this.#supervisor = null;
  }

  async run(stop: { done: boolean }): Promise<void> {
    const [minGap, maxGap] = this.options.intervalMs;
    const [minHold, maxHold] = this.options.holdMs;
    if (this.options.kinds.length === 0) return;
    while (!stop.done) {
      await sleepUnless(stop, this.#prng.between(minGap, maxGap));
      if (stop.done) break;
      if (this.#deck.length === 0) this.#deck = this.#prng.shuffle([...this.options.kinds]);
      const kind = this.#deck.pop() as FaultKind;
      const applied = await this.inject(kind);
      if (!applied) continue;
      this.counts[kind] = (this.counts[kind] ?? 0) + 1;
      await sleepUnless(stop, this.#prng.between(minHold, maxHold));
      await this.heal();
    }
    await this.heal();
  }

  /** Applies one fault; false when it does not apply now (no leader known, too few servers). */
  async inject(kind: FaultKind): Promise<boolean> {
    const fc = this.fc;
    const names = fc.names;
    const leader = await fc.leader();
    const others = names.filter((n) => n !== leader);
    switch (kind) {
      case 'kill-leader':
        if (leader === null) return false;
        return this.#kill([leader], kind);
      case 'kill-follower':
        return this.#kill([this.#prng.pick(others)], kind);
      case 'kill-all':
        return this.#kill(names, kind);
      case 'pause-leader': {
        if (leader === null) return false;
        this.history.event('pause', { node: leader });
        await fc.cluster.kill(leader, 'SIGSTOP');
        this.paused.add(leader);
        return true;
      }
      case 'partition-leader': {
        if (leader === null) return false;
        fc.proxy.partition([[leader], others]);
        this.history.event('partition', { shape: 'isolated-leader', groups: [[leader], others] });
        return true;
      }
      case 'partition-halves': {
        const shuffled = this.#prng.shuffle([...names]);
        const minority = shuffled.slice(0, Math.floor(names.length / 2));
        const majority = shuffled.slice(minority.length);
        fc.proxy.partition([minority, majority]);
        this.history.event('partition', { shape: 'majority-minority', groups: [minority, majority] });
        return true;
      }
      case 'partition-bridge': {
        if (names.length < 5) return this.inject('partition-halves');
        const shuffled = this.#prng.shuffle([...names]);
        const [a, b, bridge, d, e] = shuffled as [string, string, string, string, string];
        // a,b see each other and the bridge; d,e too; the bridge sees everyone.
        fc.proxy.cutPairs([[a, d], [a, e], [b, d], [b, e]]);
        this.history.event('partition', { shape: 'bridge', bridge, sides: [[a, b], [d, e]] });
        return true;
      }
      case 'partition-ring': {
        if (names.length < 5) return this.inject('partition-halves');
        const ring = this.#prng.shuffle([...names]);
        const cut: [string, string][] = [];
        // Each node keeps its two ring neighbours: a majority of 3 each, all different.
        for (let i = 0; i < ring.length; i++) {
          for (let j = i + 1; j < ring.length; j++) {
            const distance = Math.min(j - i, ring.length - (j - i));
            if (distance > 1) cut.push([ring[i] as string, ring[j] as string]);
          }
        }
        fc.proxy.cutPairs(cut);
        this.history.event('partition', { shape: 'majorities-ring', ring });
        return true;
      }
      case 'partition-one-way': {
        // The leader's messages still go out, but nothing reaches it: it must step down
        // (check-quorum) and the rest must elect someone and go on.
        if (leader === null) return false;
        fc.proxy.heal();
        for (const other of others) fc.proxy.setLink(other, leader, { kind: 'blackhole' });
        this.history.event('partition', { shape: 'one-way-into-leader', leader });
        return true;
      }
      case 'delay': {
        const ms = this.#prng.between(20, 150);
        for (const a of names) for (const b of names) if (a !== b) fc.proxy.setLink(a, b, { kind: 'delay', ms, jitterMs: ms });
        this.history.event('delay', { ms, jitterMs: ms });
        return true;
      }
      default:
        return false;
    }
  }

  /** Undoes every fault: heals the proxy, resumes paused servers, restarts killed ones. */
  async heal(): Promise<void> {
    const faults = this.fc.proxy.describe();
    if (faults.length > 0) {
      this.fc.proxy.heal();
      this.history.event('heal', { links: faults.length });
    }
    for (const name of [...this.paused]) {
      await this.fc.cluster.kill(name, 'SIGCONT');
      this.paused.delete(name);
      this.history.event('resume', { node: name });
    }
    for (const name of [...this.down]) {
      if (!this.fc.running(name)) this.fc.cluster.start(name);
      this.down.delete(name);
      this.history.event('restart', { node: name });
    }
  }

  async #kill(names: readonly string[], kind: string): Promise<boolean> {
    for (const name of names) this.down.add(name);
    this.history.event('kill', { nodes: names, kind });
    await Promise.all(names.map((name) => this.fc.cluster.kill(name, 'SIGKILL')));
    return true;
  }
}

async function sleepUnless(stop: { done: boolean }, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!stop.done && Date.now() < deadline) await delay(Math.min(100, deadline - Date.now()));
}
