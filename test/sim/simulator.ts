import { Prng } from '../../src/lib/prng.js';
import { makeRaftConfig } from '../../src/raft/core/config.js';
import type { Message } from '../../src/raft/core/messages.js';
import { mayPrecedePersist } from '../../src/raft/core/messages.js';
import { RaftCore } from '../../src/raft/core/raft.js';
import type { Configuration, Entry, HardState, Ready, Snapshot, SnapshotMeta } from '../../src/raft/core/types.js';
import { EMPTY_HARD_STATE } from '../../src/raft/core/types.js';
import { EventQueue } from './event-queue.js';
import { fnv1a, fnvMix } from './hash.js';

/**
 * Tier 1 of RELIABILITY.md: a deterministic discrete-event simulation of Raft cores. One seed
 * decides the cluster's faults (swarm testing); one event queue orders ticks, deliveries, disk
 * writes, crashes and client requests. Invariants are checked after every event; a violation
 * throws SimulationError with the seed, so the run can be replayed exactly.
 */

export class SimulationError extends Error {
  override name = 'SimulationError';
}

/** Which faults a run enables: derived from the seed, so every seed tests a different mix. */
export interface FaultProfile {
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly delayMin: number;
  readonly delayMax: number;
  readonly partitions: boolean;
  readonly crashes: boolean;
  readonly clockSkew: boolean;
  readonly compaction: boolean;
  readonly transfers: boolean;
  readonly membership: boolean;
  readonly diskLatencyMax: number;
  readonly leaseReads: boolean;
  /**
   * Whole-process pauses (a stopped VM, a long GC, a 1M-key snapshot's serialization): a paused
   * server handles nothing; on resuming it reads what arrived, then counts the ticks it owed as
   * the real driver does (node.ts #onTimer: past half an election timeout, for the lease only).
   */
  readonly pauses: boolean;
  /** The longest pause, ms (election timeouts are 1–2 s). */
  readonly pauseMsMax: number;
  /**
   * Servers given different election timeouts (1, 2 or 4 s): a leader's lease must follow the
   * guards its voters report, not its own timeout.
   */
  readonly unequalTimeouts: boolean;
}

export interface SimulationOptions {
  readonly seed: bigint;
  readonly nodes: number;
  readonly trace?: boolean;
  /** Override the seed-derived fault profile (tests of specific scenarios). */
  readonly faults?: Partial<FaultProfile>;
  /** Each server's election timeout in ticks, in id order (default: from the fault profile). */
  readonly electionTimeouts?: readonly number[];
  /** A planted bug (positive control): the invariants must catch it. */
  readonly bug?: 'vote-not-persisted' | 'pause-not-counted' | 'guards-ignored';
}

interface DiskState {
  /** The hard state as last synced (what survives a crash). */
  hardState: HardState;
  /** The hard state including unsynced commit-only updates (lost on crash). */
  volatileCommit: number;
  snapshot: Snapshot | null;
  /** Durable entries after the snapshot, contiguous. */
  entries: Entry[];
}

interface SimNode {
  readonly id: string;
  core: RaftCore | null;
  readonly disk: DiskState;
  inbox: Message[];
  /** A Ready being persisted; null when idle. */
  writing: Ready | null;
  /** Bumped on every crash so stale disk-completion events are ignored. */
  life: number;
  tickInterval: number;
  readonly electionTimeoutTicks: number;
  fsm: SimFsm;
  lastCommit: number;
  lastSoftRole: string;
  turnScheduled: boolean;
  /** While paused: when it resumes (else 0), the ticks it owes, what arrived meanwhile. */
  pausedUntil: number;
  owedTicks: number;
  pausedInbox: Message[];
}

/** The simulated state machine: a few registers, and a chain hash of everything applied. */
interface SimFsm {
  applied: number;
  values: Map<string, { value: string; index: number }>;
  chain: number;
}

interface PendingProposal {
  readonly client: number;
  readonly node: string;
  readonly index: number;
  readonly term: number;
  readonly command: string;
}

interface PendingRead {
  readonly client: number;
  readonly node: string;
  readonly key: string;
  /** Highest index acknowledged to any client when this read was invoked. */
  readonly requiredIndex: number;
  readIndex: number | null;
  readonly lease: boolean;
}

type SimEvent =
  | { kind: 'tick'; node: string }
  | { kind: 'deliver'; message: Message }
  | { kind: 'persisted'; node: string; life: number }
  | { kind: 'turn'; node: string }
  | { kind: 'crash'; node: string }
  /** The connection from `peer` to `node` closed (the driver's hint; see leaderConnectionLost). */
  | { kind: 'connection-lost'; node: string; peer: string }
  | { kind: 'restart'; node: string }
  | { kind: 'partition' }
  | { kind: 'heal' }
  | { kind: 'client'; client: number }
  /** The client's `request`-th request has waited CLIENT_TIMEOUT_MS: it gives up on it. */
  | { kind: 'client-timeout'; client: number; request: number }
  | { kind: 'transfer' }
  | { kind: 'membership' }
  | { kind: 'pause' }
  | { kind: 'resume'; node: string; life: number };

const TICK = 100;
const KEYS = ['a', 'b', 'c'];
const SNAPSHOT_EVERY = 40;
const CLIENTS = 5;
/**
 * A client gives up on a request after this long (outcome unknown) and tries another server, as
 * real clients do. Without it every client stays with a cut-off leader, and nobody is left to
 * see that leader serve a stale read after the others acknowledged a write.
 */
const CLIENT_TIMEOUT_MS = 2500;
/** Pauses come from their own stream, so seeds without pauses replay exactly as before. */
const PAUSE_STREAM = 0x9a05_e5ee_d5a1_7e00n;
/** So do unequal election timeouts. */
const TIMEOUT_STREAM = 0x71e0_07e5_0000_0001n;
const ELECTION_TIMEOUT_TICKS = 10;

export class Simulator {
  readonly seed: bigint;
  readonly faults: FaultProfile;
  readonly #prng: Prng;
  readonly #pausePrng: Prng;
  readonly #queue = new EventQueue<SimEvent>();
  readonly #nodes = new Map<string, SimNode>();
  readonly #ids: string[];
  readonly #configuration: Configuration;
  #now = 0;
  #steps = 0;
  #traceHash = 0x811c9dc5;
  readonly #trace: string[] | null;
  #faultsActive = true;
  /** Directed links that drop everything: "from>to". */
  #blocked = new Set<string>();

  // Invariant bookkeeping, global over the whole history.
  readonly #leaderOfTerm = new Map<number, string>();
  readonly #voteOf = new Map<string, string>();
  readonly #prefixHashAt = new Map<string, number>();
  readonly #appliedAt = new Map<number, number>();
  /**
   * The term of the first server to apply each index, at that moment: the entry was committed in
   * that term or an earlier one (a server learns a commit index from a leader of its own term).
   */
  readonly #appliedInTerm = new Map<number, number>();
  #maxApplied = 0;

  // Clients.
  readonly #proposals = new Map<string, PendingProposal>();
  readonly #reads = new Map<number, PendingRead>();
  #nextCommand = 1;
  #nextReadId = 1;
  readonly #clientBusy = new Set<number>();
  readonly #believedLeader = new Map<number, string>();
  /** How many requests each client has made (a timeout names the one it is for). */
  readonly #clientRequests = new Map<number, number>();
  /** Commands acknowledged to a client, by index. */
  readonly #acked = new Map<number, string>();
  /** Commands a client was told were not applied (their proposal was superseded): never applied. */
  readonly #refused = new Set<string>();
  #ackedMaxIndex = 0;
  stats = { proposals: 0, acked: 0, refused: 0, reads: 0, readsOk: 0, crashes: 0, elections: 0, snapshotsSent: 0, leaseReadsChecked: 0, pauses: 0, longPauses: 0, interimApplied: 0, interimSent: 0 };

  readonly #bug: SimulationOptions['bug'];

  constructor(options: SimulationOptions) {
    this.seed = options.seed;
    this.#bug = options.bug;
    this.#prng = new Prng(options.seed);
    this.#pausePrng = new Prng(options.seed ^ PAUSE_STREAM);
    this.#trace = options.trace === true ? [] : null;
    const timeoutPrng = new Prng(options.seed ^ TIMEOUT_STREAM);
    this.faults = { ...Simulator.profileFor(this.#prng.fork()), unequalTimeouts: timeoutPrng.chance(0.3), ...options.faults };
    this.#ids = Array.from({ length: options.nodes }, (_, k) => `n${k + 1}`);
    this.#configuration = { servers: this.#ids.map((id) => ({ id, address: `${id}:8300`, voter: true })) };
    const bootstrap = RaftCore.bootstrapState(this.#configuration);
    for (const id of this.#ids) {
      const rate = this.faults.clockSkew ? 0.5 + this.#prng.nextFloat() * 1.5 : 1;
      const node: SimNode = {
        id,
        core: null,
        disk: { hardState: bootstrap.hardState, volatileCommit: 0, snapshot: null, entries: [...bootstrap.entries] },
        inbox: [],
        writing: null,
        life: 0,
        tickInterval: Math.round(TICK * rate),
        electionTimeoutTicks: options.electionTimeouts?.[this.#nodes.size] ?? (this.faults.unequalTimeouts ? timeoutPrng.pick([1, 2, 4]) * ELECTION_TIMEOUT_TICKS : ELECTION_TIMEOUT_TICKS),
        fsm: emptyFsm(),
        lastCommit: 0,
        lastSoftRole: 'follower',
        turnScheduled: false,
        pausedUntil: 0,
        owedTicks: 0,
        pausedInbox: [],
      };
      this.#nodes.set(id, node);
      this.#recordDurableEntries(node, bootstrap.entries);
      this.#start(node);
      this.#schedule(this.#prng.between(1, node.tickInterval), { kind: 'tick', node: id });
    }
    for (let client = 0; client < CLIENTS; client++) this.#schedule(this.#prng.between(1, 500), { kind: 'client', client });
    if (this.faults.partitions) this.#schedule(this.#prng.between(500, 3000), { kind: 'partition' });
    if (this.faults.crashes) this.#schedule(this.#prng.between(500, 3000), { kind: 'crash', node: this.#prng.pick(this.#ids) });
    if (this.faults.transfers) this.#schedule(this.#prng.between(2000, 6000), { kind: 'transfer' });
    if (this.faults.membership) this.#schedule(this.#prng.between(2000, 6000), { kind: 'membership' });
    if (this.faults.pauses) this.#schedule(this.#pausePrng.between(1000, 5000), { kind: 'pause' });
  }

  /** Swarm testing: each seed turns on a random subset of faults. */
  static profileFor(prng: Prng): Omit<FaultProfile, 'unequalTimeouts'> {
    const clockSkew = prng.chance(0.2);
    return {
      dropRate: prng.chance(0.5) ? prng.nextFloat() * 0.2 : 0,
      duplicateRate: prng.chance(0.3) ? prng.nextFloat() * 0.1 : 0,
      delayMin: 1,
      delayMax: prng.chance(0.5) ? prng.between(5, 60) : prng.between(60, 300),
      partitions: prng.chance(0.6),
      crashes: prng.chance(0.6),
      clockSkew,
      compaction: prng.chance(0.5),
      transfers: prng.chance(0.3),
      membership: prng.chance(0.3),
      diskLatencyMax: prng.between(1, 30),
      // Lease reads assume bounded clock drift; under skew they are not claimed to be safe.
      leaseReads: !clockSkew,
      // Drawn last, so the fields above are what they were before pauses existed.
      pauses: prng.chance(0.4),
      pauseMsMax: 2500,
    };
  }

  get traceHash(): number {
    return this.#traceHash >>> 0;
  }

  get traceLines(): readonly string[] {
    return this.#trace ?? [];
  }

  get now(): number {
    return this.#now;
  }

  /** Runs `steps` events with faults on. */
  runSteps(steps: number): void {
    for (let k = 0; k < steps; k++) {
      if (!this.#step()) break;
    }
  }

  /** Turns every fault off, restarts crashed nodes and waits for convergence. */
  heal(): void {
    this.#faultsActive = false;
    this.#blocked.clear();
    this.#note('heal');
    for (const node of this.#nodes.values()) {
      node.tickInterval = TICK;
      if (node.core === null) this.#restart(node);
    }
  }

  /**
   * After heal(): runs until one leader, every node applied everything committed and every
   * acknowledged command, with identical state. Returns a failure description or null.
   */
  runUntilConverged(maxTime: number): string | null {
    const deadline = this.#now + maxTime;
    let marker: string | null = null;
    while (this.#now < deadline) {
      if (!this.#step()) return 'event queue ran dry';
      const leader = this.#leader();
      if (leader === null || leader.core === null) continue;
      if (!this.#restoreMembership(leader)) continue;
      if (marker === null) {
        if (this.#proposeMarker(leader)) marker = 'pending';
        continue;
      }
      if (this.#converged(leader)) return null;
    }
    return `no convergence within ${maxTime} time units: ${this.#describe()}`;
  }

  #proposeMarker(leader: SimNode): boolean {
    const core = leader.core;
    if (core === null) return false;
    const command = `marker:${this.#nextCommand++}`;
    const result = core.propose(new TextEncoder().encode(command));
    if (!result.ok) return false;
    this.#proposals.set(`${leader.id}:${result.index}`, { client: -1, node: leader.id, index: result.index, term: result.term, command });
    this.#kick(leader);
    return true;
  }

  #converged(leader: SimNode): boolean {
    const core = leader.core;
    if (core === null || core.role !== 'leader') return false;
    for (const [index] of this.#acked) if (index > core.commitIndex) return false;
    if (this.#proposals.size > 0) return false;
    const target = core.commitIndex;
    if (core.term !== this.#leaderTermCommitted(leader)) return false;
    let chain: number | null = null;
    for (const node of this.#nodes.values()) {
      if (node.core === null || node.fsm.applied !== target || node.core.lastIndex !== core.lastIndex) return false;
      if (chain === null) chain = node.fsm.chain;
      else if (chain !== node.fsm.chain) throw this.#fail(`state differs at applied index ${target} (${node.id})`);
    }
    return true;
  }

  #leaderTermCommitted(leader: SimNode): number {
    const core = leader.core;
    if (core === null) return -1;
    const entry = core.entryAt(core.commitIndex);
    return entry?.term ?? core.snapshotMeta?.term ?? -1;
  }

  #describe(): string {
    return [...this.#nodes.values()]
      .map((n) => `${n.id}:${n.core === null ? 'down' : `${n.core.role}/t${n.core.term}/c${n.core.commitIndex}/a${n.fsm.applied}/l${n.core.lastIndex}`}`)
      .join(' ') + ` pending=${[...this.#proposals.keys()].join(',')} acked>commit=${[...this.#acked.keys()].filter((i) => i > (this.#leader()?.core?.commitIndex ?? 0)).length}`;
  }

  #leader(): SimNode | null {
    let best: SimNode | null = null;
    for (const node of this.#nodes.values()) {
      const core = node.core;
      if (core?.role === 'leader' && (best?.core === null || best === null || core.term > (best.core?.term ?? 0))) best = node;
    }
    return best;
  }

  // ---------------------------------------------------------------------------------------
  // Event loop

  #schedule(delay: number, event: SimEvent): void {
    this.#queue.push(this.#now + Math.max(0, delay), event);
  }

  #step(): boolean {
    const next = this.#queue.pop();
    if (next === undefined) return false;
    this.#now = next.time;
    this.#steps++;
    this.#handle(next.item);
    return true;
  }

  #note(line: string): void {
    this.#traceHash = fnvMix(this.#traceHash, fnv1a(line));
    this.#trace?.push(`${this.#now} ${line}`);
  }

  #handle(event: SimEvent): void {
    if (this.#deferredByPause(event)) return;
    switch (event.kind) {
      case 'tick': {
        const node = this.#node(event.node);
        this.#schedule(node.tickInterval, event);
        if (node.core === null) return;
        if (node.pausedUntil > 0) {
          node.owedTicks++;
          return;
        }
        node.core.tick();
        this.#kick(node);
        return;
      }
      case 'deliver':
        this.#deliver(event.message);
        return;
      case 'persisted':
        this.#persisted(this.#node(event.node), event.life);
        return;
      case 'turn': {
        const node = this.#node(event.node);
        node.turnScheduled = false;
        this.#turn(node);
        return;
      }
      case 'pause':
        this.#pauseEvent();
        return;
      case 'resume':
        this.#resume(this.#node(event.node), event.life);
        return;
      case 'crash':
        this.#crashEvent(this.#node(event.node));
        return;
      case 'connection-lost':
        this.#node(event.node).core?.leaderConnectionLost(event.peer);
        return;
      case 'restart': {
        const node = this.#node(event.node);
        if (node.core === null) this.#restart(node);
        return;
      }
      case 'partition':
        this.#partitionEvent();
        return;
      case 'heal':
        this.#blocked.clear();
        this.#note('partition healed');
        if (this.#faultsActive && this.faults.partitions) this.#schedule(this.#prng.between(200, 3000), { kind: 'partition' });
        return;
      case 'client-timeout':
        this.#clientTimeout(event.client, event.request);
        return;
      case 'client':
        this.#clientEvent(event.client);
        return;
      case 'transfer':
        this.#transferEvent();
        return;
      case 'membership':
        this.#membershipEvent();
        return;
    }
  }

  #node(id: string): SimNode {
    const node = this.#nodes.get(id);
    if (node === undefined) throw new SimulationError(`unknown node ${id}`);
    return node;
  }

  // ---------------------------------------------------------------------------------------
  // The driver model: step the inbox, take a Ready, persist (with latency), send, apply.

  #kick(node: SimNode): void {
    if (node.turnScheduled || node.core === null) return;
    node.turnScheduled = true;
    this.#schedule(0, { kind: 'turn', node: node.id });
  }

  #turn(node: SimNode): void {
    const core = node.core;
    if (core === null) return;
    for (const message of node.inbox.splice(0)) {
      // The planted bug: the leader takes each voter's guard to be as long as its own election
      // timeout (the lease before voters reported their guards).
      if (this.#bug === 'guards-ignored' && message.type === 'HeartbeatResponse') core.step({ ...message, guardMs: Number.MAX_SAFE_INTEGER });
      else core.step(message);
    }
    this.#observeRole(node);
    if (node.writing !== null) {
      // As the real driver does while a write is in flight (RaftNode.#interim): send, apply and
      // answer what needs none of that write.
      const interim = core.interimReady();
      if (interim === null) return;
      this.stats.interimSent += interim.messages.length;
      this.stats.interimApplied += interim.committedEntries.length;
      for (const message of interim.messages) this.#send(message);
      for (const entry of interim.committedEntries) this.#apply(node, entry);
      for (const readState of interim.readStates) this.#readReady(node, readState.requestId, readState.index);
      for (const failure of interim.readFailures) this.#readFailed(failure.requestId);
      this.#completeReads(node);
      return;
    }
    if (!core.hasReady()) return;
    const ready = core.ready();
    this.#checkReady(node, ready);
    for (const message of ready.messages) if (mayPrecedePersist(message)) this.#send(message);
    // As the real driver does: committed entries are applied (and confirmed reads released)
    // before this Ready's own write, which they do not depend on.
    if (ready.snapshot !== null) {
      this.stats.snapshotsSent++;
      this.#restoreFsm(node, ready.snapshot);
    }
    for (const entry of ready.committedEntries) this.#apply(node, entry);
    for (const readState of ready.readStates) this.#readReady(node, readState.requestId, readState.index);
    for (const failure of ready.readFailures) this.#readFailed(failure.requestId);
    this.#completeReads(node);
    node.writing = ready;
    const needsDisk = ready.mustSync || ready.hardState !== null;
    this.#schedule(needsDisk ? this.#prng.between(1, this.faults.diskLatencyMax) : 0, { kind: 'persisted', node: node.id, life: node.life });
  }

  #persisted(node: SimNode, life: number): void {
    if (life !== node.life || node.core === null) return;
    const ready = node.writing;
    if (ready === null) return;
    const core = node.core;
    this.#writeDisk(node, ready);
    for (const message of ready.messages) if (!mayPrecedePersist(message)) this.#send(message);
    node.writing = null;
    core.advance(ready);
    this.#maybeCompact(node);
    this.#observeRole(node);
    this.#checkCommit(node);
    this.#kick(node);
  }

  #writeDisk(node: SimNode, ready: Ready): void {
    const disk = node.disk;
    if (ready.snapshot !== null) {
      disk.snapshot = ready.snapshot;
      disk.entries = [];
    }
    if (ready.entries.length > 0) {
      const first = (ready.entries[0] as Entry).index;
      const offset = disk.snapshot?.meta.index ?? 0;
      const keep = first - offset - 1;
      if (keep < 0 || keep > disk.entries.length) throw this.#fail(`${node.id} persists entries starting at ${first} that do not follow its durable log`);
      disk.entries.length = keep;
      disk.entries.push(...ready.entries);
      this.#recordDurableEntries(node, ready.entries);
    }
    if (ready.hardState !== null) {
      if (ready.mustSync) {
        this.#checkHardState(node, ready.hardState);
        // The planted bug: the vote never reaches the disk (the driver's vote-not-persisted).
        disk.hardState = this.#bug === 'vote-not-persisted' ? { ...ready.hardState, vote: null } : ready.hardState;
      }
      disk.volatileCommit = ready.hardState.commit;
    }
  }

  #send(message: Message): void {
    if (this.#faultsActive) {
      if (this.#blocked.has(`${message.from}>${message.to}`)) return;
      if (this.#prng.chance(this.faults.dropRate)) return;
      if (this.#prng.chance(this.faults.duplicateRate)) this.#schedule(this.#delay(), { kind: 'deliver', message });
    }
    this.#schedule(this.#delay(), { kind: 'deliver', message });
  }

  #delay(): number {
    if (!this.#faultsActive) return this.#prng.between(1, 10);
    return this.#prng.between(this.faults.delayMin, this.faults.delayMax);
  }

  #deliver(message: Message): void {
    const node = this.#nodes.get(message.to);
    if (node === undefined || node.core === null) return;
    if (node.pausedUntil > 0) {
      // Read from the socket only when it resumes.
      if (node.pausedInbox.length < 4096) node.pausedInbox.push(message);
      return;
    }
    if (node.inbox.length >= 4096) return; // a full inbox drops, as the real driver's does
    node.inbox.push(message);
    this.#kick(node);
  }

  // ---------------------------------------------------------------------------------------
  // Crashes

  #crashEvent(node: SimNode): void {
    if (this.#faultsActive) {
      const live = [...this.#nodes.values()].filter((n) => n.core !== null).length;
      if (node.core !== null && (live > 1 || this.#prng.chance(0.2))) {
        this.#crash(node);
        this.#schedule(this.#prng.between(200, 3000), { kind: 'restart', node: node.id });
      }
      const victim = this.#prng.chance(0.5) ? (this.#leader()?.id ?? this.#prng.pick(this.#ids)) : this.#prng.pick(this.#ids);
      this.#schedule(this.#prng.between(500, 4000), { kind: 'crash', node: victim });
    }
  }

  #crash(node: SimNode): void {
    this.#note(`crash ${node.id}`);
    this.stats.crashes++;
    node.core = null;
    node.writing = null; // an unfinished write is lost whole (a LevelDB batch is atomic)
    node.inbox = [];
    node.pausedUntil = 0;
    node.owedTicks = 0;
    node.pausedInbox = [];
    node.life++;
    node.disk.volatileCommit = node.disk.hardState.commit;
    // Its sockets close: peers that can still hear from it learn so after a network delay.
    for (const other of this.#ids) {
      if (other !== node.id && !this.#blocked.has(`${node.id}>${other}`)) this.#schedule(this.#delay(), { kind: 'connection-lost', node: other, peer: node.id });
    }
    this.#abandonProposals(node);
    for (const [id, read] of this.#reads) {
      if (read.node === node.id) this.#readFailed(id);
    }
  }

  #restart(node: SimNode): void {
    this.#note(`restart ${node.id}`);
    this.#start(node);
  }

  #start(node: SimNode): void {
    const disk = node.disk;
    const hardState: HardState = { ...disk.hardState, commit: Math.max(disk.hardState.commit, disk.volatileCommit) };
    const config = makeRaftConfig({
      id: node.id,
      electionTimeoutTicks: node.electionTimeoutTicks,
      heartbeatIntervalTicks: 1,
      tickMs: TICK,
      leaseReads: this.faults.leaseReads,
      snapshotChunkBytes: 64,
      appendEntriesCountMax: 8,
      inflightMessagesMax: 4,
    });
    node.core = new RaftCore(config, { hardState, snapshot: disk.snapshot, entries: [...disk.entries] }, this.#prng.fork());
    node.fsm = emptyFsm();
    if (disk.snapshot !== null) this.#restoreFsm(node, disk.snapshot);
    node.lastCommit = node.core.commitIndex;
    node.lastSoftRole = 'follower';
  }

  // ---------------------------------------------------------------------------------------
  // Pauses

  /**
   * What a paused process cannot do before it resumes: finish a turn, see its disk write
   * complete, learn of a closed connection, act on an operator's call (transfer, membership).
   * Those events wait for the resume (which was scheduled first, so it runs first). Ticks and
   * deliveries are counted and queued; a client's request waits in #clientEvent.
   */
  #deferredByPause(event: SimEvent): boolean {
    let id: string;
    if (event.kind === 'turn' || event.kind === 'persisted' || event.kind === 'connection-lost') id = event.node;
    else if (event.kind === 'transfer' || event.kind === 'membership') id = this.#leader()?.id ?? '';
    else return false;
    const node = this.#nodes.get(id);
    if (node === undefined || node.pausedUntil === 0) return false;
    this.#schedule(node.pausedUntil - this.#now, event);
    return true;
  }

  #pauseEvent(): void {
    if (!this.#faultsActive) return;
    const leader = this.#leader();
    const node = this.#pausePrng.chance(0.5) && leader !== null ? leader : this.#node(this.#pausePrng.pick(this.#ids));
    if (node.core !== null && node.pausedUntil === 0) {
      // Around an election timeout (10 ticks): shorter, and well past it.
      const duration = this.#pausePrng.between(200, this.faults.pauseMsMax);
      this.#note(`pause ${node.id} ${duration}ms`);
      this.stats.pauses++;
      node.pausedUntil = this.#now + duration;
      node.owedTicks = 0;
      this.#schedule(duration, { kind: 'resume', node: node.id, life: node.life });
    }
    this.#schedule(this.#pausePrng.between(1000, 6000), { kind: 'pause' });
  }

  /**
   * As node.ts on resuming: the owed ticks are counted (a pause: for the lease only). What
   * arrived meanwhile is stepped in the next turn, after the clients' requests that waited: a
   * harsher order than the driver's usual (it steps messages first), but a possible one when
   * the messages arrive a moment after the requests, and the one in which a lease that outlived
   * the pause would serve a stale read.
   */
  #resume(node: SimNode, life: number): void {
    if (node.life !== life || node.pausedUntil === 0) return;
    node.pausedUntil = 0;
    const core = node.core as RaftCore;
    node.inbox.push(...node.pausedInbox.splice(0));
    const owed = node.owedTicks;
    node.owedTicks = 0;
    // As the real driver (node.ts #pauseTicks): owed ticks beyond half an election timeout are a pause.
    if (owed > Math.max(2, Math.floor(node.electionTimeoutTicks / 2))) {
      this.stats.longPauses++;
      // The planted bug: the pause is not counted at all, so a paused leader's lease runs on.
      if (this.#bug !== 'pause-not-counted') core.skipTicks(owed - 1);
      core.tick();
    } else {
      for (let k = 0; k < owed; k++) core.tick();
    }
    this.#note(`resume ${node.id} owed ${owed}`);
    this.#kick(node);
  }

  // ---------------------------------------------------------------------------------------
  // Partitions and transfers

  #partitionEvent(): void {
    if (!this.#faultsActive) return;
    this.#blocked.clear();
    const ids = this.#prng.shuffle([...this.#ids]);
    const leader = this.#leader()?.id ?? (ids[0] as string);
    const shape = this.#prng.pick(['isolate-leader', 'isolate-leader', 'majority-minority', 'majority-minority', 'bridge', 'one-way', 'ring'] as const);
    const cut = (a: string, b: string): void => {
      this.#blocked.add(`${a}>${b}`);
      this.#blocked.add(`${b}>${a}`);
    };
    if (shape === 'isolate-leader') {
      for (const id of ids) if (id !== leader) cut(leader, id);
    } else if (shape === 'majority-minority') {
      const minority = ids.slice(0, Math.floor(ids.length / 2));
      for (const a of minority) for (const b of ids) if (!minority.includes(b)) cut(a, b);
    } else if (shape === 'bridge') {
      // Two halves that only one node (the bridge) can reach both of.
      const bridge = ids[0] as string;
      const half = Math.floor((ids.length - 1) / 2);
      const left = ids.slice(1, 1 + half);
      const right = ids.slice(1 + half);
      for (const a of left) for (const b of right) cut(a, b);
      void bridge;
    } else if (shape === 'one-way') {
      for (const id of ids) if (id !== leader) this.#blocked.add(`${leader}>${id}`);
    } else {
      // Ring: each node only reaches its neighbours.
      for (let i = 0; i < ids.length; i++) {
        for (let j = i + 1; j < ids.length; j++) {
          const adjacent = j === i + 1 || (i === 0 && j === ids.length - 1);
          if (!adjacent) cut(ids[i] as string, ids[j] as string);
        }
      }
    }
    this.#note(`partition ${shape} ${[...this.#blocked].sort().join(',')}`);
    // Sometimes a connection to the live leader resets as well (a false hint: timing only).
    if (this.#prng.chance(0.3)) for (const id of ids) if (id !== leader) this.#schedule(this.#delay(), { kind: 'connection-lost', node: id, peer: leader });
    this.#schedule(this.#prng.between(500, 5000), { kind: 'heal' });
  }

  /** Removes a voter (sometimes the leader itself) or adds a removed one back, one at a time. */
  #membershipEvent(): void {
    if (!this.#faultsActive) return;
    this.#schedule(this.#prng.between(1000, 5000), { kind: 'membership' });
    const leader = this.#leader();
    const core = leader?.core;
    if (leader == null || core == null) return;
    const members = new Set(core.configuration.servers.map((server) => server.id));
    const missing = this.#ids.filter((id) => !members.has(id));
    let result;
    if (missing.length > 0) {
      const id = this.#prng.pick(missing);
      result = core.proposeConfigChange({ type: 'add-voter', id, address: `${id}:8300` });
      this.#note(`add ${id}: ${result.ok}`);
    } else {
      const id = this.#prng.pick(this.#ids);
      result = core.proposeConfigChange({ type: 'remove', id });
      this.#note(`remove ${id}: ${result.ok}`);
    }
    this.#kick(leader);
  }

  /** After healing, every server is put back into the configuration. */
  #restoreMembership(leader: SimNode): boolean {
    const core = leader.core;
    if (core === null) return false;
    const members = new Set(core.configuration.servers.map((server) => server.id));
    const missing = this.#ids.filter((id) => !members.has(id));
    if (missing.length === 0) return true;
    const id = missing[0] as string;
    if (core.proposeConfigChange({ type: 'add-voter', id, address: `${id}:8300` }).ok) {
      this.#note(`re-add ${id}`);
      this.#kick(leader);
    }
    return false;
  }

  #transferEvent(): void {
    if (!this.#faultsActive) return;
    const leader = this.#leader();
    if (leader?.core != null) {
      const target = this.#prng.pick(this.#ids.filter((id) => id !== leader.id));
      if (leader.core.transferLeadership(target)) this.#note(`transfer ${leader.id}->${target}`);
      this.#kick(leader);
    }
    this.#schedule(this.#prng.between(2000, 8000), { kind: 'transfer' });
  }

  // ---------------------------------------------------------------------------------------
  // Clients: writes to a register, and linearizable reads.

  /**
   * A client talks to the node it believes leads, as real clients do: it only learns better
   * from a "not leader" answer (or by giving up on a node). Stale leaders therefore get
   * requests, which is what makes stale reads and divergent logs possible to catch.
   */
  #clientEvent(client: number): void {
    if (this.#clientBusy.has(client)) return;
    const believed = this.#believedLeader.get(client);
    const target = believed !== undefined && this.#prng.chance(0.9) ? believed : this.#prng.pick(this.#ids);
    const node = this.#node(target);
    const core = node.core;
    if (node.pausedUntil > 0) {
      // The request waits in the paused server's socket.
      this.#schedule(node.pausedUntil - this.#now, { kind: 'client', client });
      return;
    }
    if (core === null) {
      this.#believedLeader.delete(client);
      this.#clientDone(client);
      return;
    }
    const key = this.#prng.pick(KEYS);
    if (this.#prng.chance(0.3)) {
      const requestId = this.#nextReadId++;
      const lease = this.faults.leaseReads && this.#prng.chance(0.5);
      const result = core.readIndex(requestId, lease);
      this.stats.reads++;
      if (!result.ok) {
        this.#redirect(client, result.reason === 'not-leader' ? result.leaderId : null);
        return;
      }
      this.#clientBusy.add(client);
      this.#armClientTimeout(client);
      this.#reads.set(requestId, { client, node: node.id, key, requiredIndex: this.#ackedMaxIndex, readIndex: null, lease });
      this.#kick(node);
      return;
    }
    const command = `${key}=${this.#nextCommand++}`;
    const result = core.propose(new TextEncoder().encode(command));
    this.stats.proposals++;
    if (!result.ok) {
      this.#redirect(client, result.reason === 'not-leader' || result.reason === 'transferring' ? result.leaderId : null);
      return;
    }
    this.#believedLeader.set(client, node.id);
    this.#clientBusy.add(client);
    this.#armClientTimeout(client);
    this.#proposals.set(`${node.id}:${result.index}`, { client, node: node.id, index: result.index, term: result.term, command });
    this.#kick(node);
  }

  #armClientTimeout(client: number): void {
    const request = (this.#clientRequests.get(client) ?? 0) + 1;
    this.#clientRequests.set(client, request);
    this.#schedule(CLIENT_TIMEOUT_MS, { kind: 'client-timeout', client, request });
  }

  /**
   * The client stops waiting: a write's outcome is unknown (it may still commit, unacknowledged),
   * a read is dropped; its next request goes to a server picked at random.
   */
  #clientTimeout(client: number, request: number): void {
    if (!this.#clientBusy.has(client) || this.#clientRequests.get(client) !== request) return;
    for (const [key, proposal] of this.#proposals) if (proposal.client === client) this.#proposals.delete(key);
    for (const [id, read] of this.#reads) if (read.client === client) this.#reads.delete(id);
    this.#believedLeader.delete(client);
    this.#note(`client ${client} gives up`);
    this.#clientDone(client);
  }

  #redirect(client: number, leaderId: string | null): void {
    if (leaderId === null) this.#believedLeader.delete(client);
    else this.#believedLeader.set(client, leaderId);
    this.#clientDone(client);
  }

  #clientDone(client: number): void {
    if (client < 0) return;
    this.#clientBusy.delete(client);
    if (this.#faultsActive) this.#schedule(this.#prng.between(1, 200), { kind: 'client', client });
  }

  #readReady(node: SimNode, requestId: number, index: number): void {
    const read = this.#reads.get(requestId);
    if (read === undefined || read.node !== node.id) return;
    read.readIndex = index;
  }

  #readFailed(requestId: number): void {
    const read = this.#reads.get(requestId);
    if (read === undefined) return;
    this.#reads.delete(requestId);
    this.#clientDone(read.client);
  }

  #completeReads(node: SimNode): void {
    for (const [id, read] of this.#reads) {
      if (read.node !== node.id || read.readIndex === null || node.fsm.applied < read.readIndex) continue;
      // Linearizability of reads: a read may not miss a write acknowledged before it began.
      if (read.readIndex < read.requiredIndex) {
        throw this.#fail(`stale read on ${node.id}: read index ${read.readIndex} < acknowledged ${read.requiredIndex} (lease=${read.lease})`);
      }
      if (read.lease) this.stats.leaseReadsChecked++;
      this.stats.readsOk++;
      this.#reads.delete(id);
      this.#clientDone(read.client);
    }
  }

  // ---------------------------------------------------------------------------------------
  // The state machine and snapshots

  #apply(node: SimNode, entry: Entry): void {
    const fsm = node.fsm;
    if (entry.index !== fsm.applied + 1) throw this.#fail(`${node.id} applies ${entry.index} after ${fsm.applied}`);
    const identity = entryIdentity(entry);
    const seen = this.#appliedAt.get(entry.index);
    if (seen === undefined) {
      this.#appliedAt.set(entry.index, identity);
      this.#appliedInTerm.set(entry.index, node.core?.term ?? 0);
    }
    else if (seen !== identity) throw this.#fail(`state machine safety: ${node.id} applies a different entry at ${entry.index}`);
    this.#maxApplied = Math.max(this.#maxApplied, entry.index);
    fsm.applied = entry.index;
    fsm.chain = fnvMix(fsm.chain, identity);
    if (entry.type === 'normal') {
      const command = new TextDecoder().decode(entry.data);
      if (this.#refused.has(command)) throw this.#fail(`${node.id} applies ${command} at ${entry.index}, which a client was told was not applied`);
      const [key, value] = command.split('=');
      if (key !== undefined && value !== undefined) fsm.values.set(key, { value, index: entry.index });
    }
    const proposal = this.#proposals.get(`${node.id}:${entry.index}`);
    if (proposal !== undefined) {
      this.#proposals.delete(`${node.id}:${entry.index}`);
      if (proposal.term === entry.term) {
        this.#acked.set(entry.index, proposal.command);
        this.#ackedMaxIndex = Math.max(this.#ackedMaxIndex, entry.index);
        this.stats.acked++;
        this.#clientDone(proposal.client);
      } else {
        this.#refuse(proposal);
      }
    }
    this.#rejectSuperseded(node, entry.term);
  }

  /**
   * As RaftNode.#rejectSuperseded: once `node` applied an entry (or restored a snapshot) of
   * `term`, its proposals of an older term, at later indexes, can never commit: their clients
   * are told they were not applied.
   */
  #rejectSuperseded(node: SimNode, term: number): void {
    for (const [key, pending] of this.#proposals) {
      if (pending.node !== node.id || pending.term >= term) continue;
      this.#proposals.delete(key);
      this.#refuse(pending);
    }
  }

  #refuse(proposal: PendingProposal): void {
    this.#refused.add(proposal.command);
    this.stats.refused++;
    this.#clientDone(proposal.client);
  }

  #restoreFsm(node: SimNode, snapshot: Snapshot): void {
    const parsed = JSON.parse(new TextDecoder().decode(snapshot.data)) as { applied: number; chain: number; values: [string, { value: string; index: number }][] };
    if (parsed.applied !== snapshot.meta.index) throw this.#fail(`snapshot data at ${parsed.applied} but meta says ${snapshot.meta.index}`);
    node.fsm = { applied: parsed.applied, chain: parsed.chain, values: new Map(parsed.values) };
    // As RaftNode: proposals the snapshot covers have an unknown outcome here.
    this.#abandonProposals(node, snapshot.meta.index);
    this.#rejectSuperseded(node, snapshot.meta.term);
  }

  #maybeCompact(node: SimNode): void {
    const core = node.core;
    if (!this.faults.compaction || core === null) return;
    const base = node.disk.snapshot?.meta.index ?? 0;
    if (node.fsm.applied - base < SNAPSHOT_EVERY) return;
    const meta: SnapshotMeta | null = core.snapshotMetaFor(node.fsm.applied);
    if (meta === null) return;
    const data = new TextEncoder().encode(JSON.stringify({ applied: node.fsm.applied, chain: node.fsm.chain, values: [...node.fsm.values] }));
    const snapshot: Snapshot = { meta, data };
    // Keep a few trailing entries so a slightly slow follower needs no snapshot.
    const compactIndex = Math.max(base, meta.index - 5);
    node.disk.snapshot = snapshot;
    node.disk.entries = node.disk.entries.filter((entry) => entry.index > meta.index);
    core.compact(snapshot, compactIndex);
    this.#note(`compact ${node.id} ${meta.index}`);
  }

  // ---------------------------------------------------------------------------------------
  // Invariants

  #fail(what: string): SimulationError {
    return new SimulationError(`${what} [seed=0x${this.seed.toString(16)} time=${this.#now} step=${this.#steps}]`);
  }

  /** Election safety: at most one leader per term, over all history. */
  #observeRole(node: SimNode): void {
    const core = node.core;
    if (core === null) return;
    if (core.role === 'leader' && node.lastSoftRole !== 'leader') {
      const existing = this.#leaderOfTerm.get(core.term);
      if (existing !== undefined && existing !== node.id) throw this.#fail(`two leaders in term ${core.term}: ${existing} and ${node.id}`);
      this.#leaderOfTerm.set(core.term, node.id);
      this.stats.elections++;
      this.#note(`leader ${node.id} term ${core.term}`);
      this.#checkLeaderCompleteness(node);
    }
    // A deposed leader's proposals stay pending, as in RaftNode: each is settled when its index
    // or a newer term's entry is applied here (#apply), or by the client's timeout.
    node.lastSoftRole = core.role;
  }

  /**
   * `node`'s pending proposals (those up to `upTo`) have an unknown outcome: the client stops
   * waiting. A crashed server's, all of them; a restored snapshot's, those it covers.
   */
  #abandonProposals(node: SimNode, upTo = Number.POSITIVE_INFINITY): void {
    for (const [key, proposal] of this.#proposals) {
      if (proposal.node !== node.id || proposal.index > upTo) continue;
      this.#proposals.delete(key);
      this.#clientDone(proposal.client);
    }
  }

  /**
   * Leader completeness (Raft §5.4): a new leader's log holds every entry committed in an earlier
   * term. Entries committed in its own term or later need not be there: a server may win an
   * older term late (votes it received before a pause, counted after it), while a leader of a
   * newer term commits entries it never sees (its appends are refused, it commits nothing).
   */
  #checkLeaderCompleteness(node: SimNode): void {
    const core = node.core;
    if (core === null) return;
    for (let index = 1; index <= this.#maxApplied; index++) {
      const committedBy = this.#appliedInTerm.get(index);
      if (committedBy === undefined || committedBy >= core.term) continue;
      if (index > core.lastIndex) throw this.#fail(`leader ${node.id} (term ${core.term}) lacks applied entry ${index} (committed by term ${committedBy}): its last is ${core.lastIndex}`);
      const entry = index >= core.firstIndex ? core.entryAt(index) : undefined;
      if (entry !== undefined && entryIdentity(entry) !== this.#appliedAt.get(index)) {
        throw this.#fail(`leader ${node.id} (term ${core.term}) has a different entry at applied index ${index}`);
      }
    }
  }

  #checkReady(node: SimNode, ready: Ready): void {
    if (ready.hardState !== null && ready.hardState.term < node.disk.hardState.term) {
      throw this.#fail(`${node.id} term goes back from ${node.disk.hardState.term} to ${ready.hardState.term}`);
    }
  }

  /** One vote per (server, term), across restarts; terms never go back on disk. */
  #checkHardState(node: SimNode, hardState: HardState): void {
    if (hardState.term < node.disk.hardState.term) throw this.#fail(`${node.id} durable term goes back`);
    if (hardState.vote !== null) {
      const key = `${node.id}@${hardState.term}`;
      const previous = this.#voteOf.get(key);
      if (previous !== undefined && previous !== hardState.vote) throw this.#fail(`${node.id} voted twice in term ${hardState.term}: ${previous} then ${hardState.vote}`);
      this.#voteOf.set(key, hardState.vote);
    }
  }

  /** Log matching: the same (index, term) means the same entry and the same prefix. */
  #recordDurableEntries(node: SimNode, entries: readonly Entry[]): void {
    for (const entry of entries) {
      const prevKey = `${entry.index - 1}:${this.#termBefore(node, entry.index)}`;
      const prevHash = entry.index === 1 ? 0 : this.#prefixHashAt.get(prevKey);
      if (prevHash === undefined) continue; // the prefix is only in a snapshot: nothing to compare
      const hash = fnvMix(prevHash, entryIdentity(entry));
      const key = `${entry.index}:${entry.term}`;
      const existing = this.#prefixHashAt.get(key);
      if (existing === undefined) this.#prefixHashAt.set(key, hash);
      else if (existing !== hash) throw this.#fail(`log matching: ${node.id} holds a different log at ${key}`);
    }
  }

  #termBefore(node: SimNode, index: number): number {
    if (index === 1) return 0;
    const entries = node.disk.entries;
    const previous = entries.find((entry) => entry.index === index - 1);
    if (previous !== undefined) return previous.term;
    const snapshot = node.disk.snapshot;
    return snapshot !== null && snapshot.meta.index === index - 1 ? snapshot.meta.term : -1;
  }

  /** The commit index never goes back during one life of a node. */
  #checkCommit(node: SimNode): void {
    const core = node.core;
    if (core === null) return;
    if (core.commitIndex < node.lastCommit) throw this.#fail(`${node.id} commit index went back from ${node.lastCommit} to ${core.commitIndex}`);
    node.lastCommit = core.commitIndex;
  }
}

function emptyFsm(): SimFsm {
  return { applied: 0, values: new Map(), chain: 0x811c9dc5 };
}

function entryIdentity(entry: Entry): number {
  return fnvMix(fnvMix(entry.term, entry.type.length), fnv1a(entry.data));
}

export { EMPTY_HARD_STATE };
