import { Prng } from '../../../src/lib/prng.js';
import { makeRaftConfig } from '../../../src/raft/core/config.js';
import type { RaftConfig } from '../../../src/raft/core/config.js';
import type { Message } from '../../../src/raft/core/messages.js';
import { RaftCore } from '../../../src/raft/core/raft.js';
import type { Entry, InitialState, ReadFailure, ReadState, Snapshot } from '../../../src/raft/core/types.js';

/**
 * A hand-driven cluster for rule-by-rule tests (etcd-io/raft's interaction tests, in code):
 * storage is instant, messages move only when told to, and links can be cut. Every Ready is
 * processed exactly as a driver would: persist, send, apply, advance.
 */
export class TestCluster {
  readonly cores = new Map<string, RaftCore>();
  readonly applied = new Map<string, Entry[]>();
  readonly readStates = new Map<string, ReadState[]>();
  readonly readFailures = new Map<string, ReadFailure[]>();
  readonly snapshotsInstalled = new Map<string, Snapshot[]>();
  /** Every message that was sent (delivered or not), for assertions. */
  readonly sent: Message[] = [];
  #inFlight: Message[] = [];
  readonly #cut = new Set<string>();
  readonly #prng: Prng;

  constructor(ids: readonly string[], options: Partial<Omit<RaftConfig, 'id'>> = {}, seed = 1n) {
    this.#prng = new Prng(seed);
    const bootstrap = RaftCore.bootstrapState({ servers: ids.map((id) => ({ id, address: `${id}:8300`, voter: true })) });
    for (const id of ids) this.add(id, bootstrap, options);
  }

  add(id: string, initial: InitialState, options: Partial<Omit<RaftConfig, 'id'>> = {}): RaftCore {
    const core = new RaftCore(makeRaftConfig({ id, ...options }), initial, this.#prng.fork());
    this.cores.set(id, core);
    this.applied.set(id, []);
    this.readStates.set(id, []);
    this.readFailures.set(id, []);
    this.snapshotsInstalled.set(id, []);
    return core;
  }

  core(id: string): RaftCore {
    const core = this.cores.get(id);
    if (core === undefined) throw new Error(`no core ${id}`);
    return core;
  }

  /** Processes every pending Ready of every core; queues their messages. */
  processReady(): void {
    let progress = true;
    while (progress) {
      progress = false;
      for (const [id, core] of this.cores) {
        while (core.hasReady()) {
          progress = true;
          const ready = core.ready();
          if (ready.snapshot !== null) this.snapshotsInstalled.get(id)?.push(ready.snapshot);
          for (const message of ready.messages) {
            this.sent.push(message);
            this.#inFlight.push(message);
          }
          this.applied.get(id)?.push(...ready.committedEntries);
          this.readStates.get(id)?.push(...ready.readStates);
          this.readFailures.get(id)?.push(...ready.readFailures);
          core.advance(ready);
        }
      }
    }
  }

  /** Delivers queued messages (dropping those on cut links) until the cluster is quiet. */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      this.processReady();
      if (this.#inFlight.length === 0) return;
      const batch = this.#inFlight;
      this.#inFlight = [];
      for (const message of batch) this.deliver(message);
    }
    throw new Error('cluster did not stabilize');
  }

  deliver(message: Message): void {
    if (this.#cut.has(`${message.from}>${message.to}`)) return;
    this.cores.get(message.to)?.step(message);
  }

  /** Messages queued and not yet delivered. */
  takeInFlight(): Message[] {
    this.processReady();
    const batch = this.#inFlight;
    this.#inFlight = [];
    return batch;
  }

  /** Cuts every link to and from `id`. */
  isolate(id: string): void {
    for (const other of this.cores.keys()) {
      if (other === id) continue;
      this.#cut.add(`${id}>${other}`);
      this.#cut.add(`${other}>${id}`);
    }
  }

  cutOneWay(from: string, to: string): void {
    this.#cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.#cut.clear();
  }

  /** Ticks every core `count` times, stabilizing after each tick. */
  tickAll(count: number): void {
    for (let k = 0; k < count; k++) {
      for (const core of this.cores.values()) core.tick();
      this.stabilize();
    }
  }

  /** Ticks only `id`. */
  tick(id: string, count: number): void {
    for (let k = 0; k < count; k++) {
      this.core(id).tick();
      this.stabilize();
    }
  }

  /** Makes `id` campaign and win (stabilizing). */
  elect(id: string): RaftCore {
    const core = this.core(id);
    core.campaign();
    this.stabilize();
    if (core.role !== 'leader') throw new Error(`${id} did not win: ${core.role}`);
    return core;
  }

  leaders(): string[] {
    return [...this.cores].filter(([, core]) => core.role === 'leader').map(([id]) => id);
  }

  propose(id: string, text: string): ReturnType<RaftCore['propose']> {
    return this.core(id).propose(new TextEncoder().encode(text));
  }

  appliedTexts(id: string): string[] {
    return (this.applied.get(id) ?? []).filter((entry) => entry.type === 'normal').map((entry) => new TextDecoder().decode(entry.data));
  }
}
