import { assert } from '../lib/assert.js';
import { failpoint, testBug } from '../lib/failpoints.js';
import type { Logger } from '../lib/logger.js';
import type { Prng } from '../lib/prng.js';
import { runBetweenTurns } from '../lib/steps.js';
import type { RaftConfig } from './core/config.js';
import type { ConfigChange } from './core/membership.js';
import type { Message } from './core/messages.js';
import { mayPrecedePersist } from './core/messages.js';
import { RaftCore } from './core/raft.js';
import type { Configuration, Entry, InitialState, ReadFailure, ReadState, Ready, Role, ServerId, Snapshot, SnapshotMeta } from './core/types.js';
import type { RaftStorage } from './storage/raft-storage.js';
import type { RaftTransport } from '../transport/transport.js';

/**
 * The Raft driver: the only Raft code that awaits. A timer turns into ticks, the transport into
 * steps, and every Ready is processed in order — persist (one synced batch: group commit), send,
 * restore/apply, advance. Turns never overlap, so the core is never re-entered mid-write.
 */

/** The state machine as the driver sees it. */
export interface ApplyTarget {
  /** Applies a committed entry (commands, no-ops and config entries alike); returns its result. */
  applyEntry(entry: Entry): unknown;
  /** Replaces the state with a snapshot received from the leader. */
  restore(snapshot: Snapshot): void;
  /**
   * The state as of `appliedIndex` now, serialized in steps: each next() does a bounded slice of
   * the work and the last returns the bytes. Entries applied between steps do not change them.
   */
  snapshot(): Generator<void, Uint8Array, void>;
  readonly appliedIndex: number;
}

export interface RaftNodeOptions {
  readonly raft: RaftConfig;
  readonly storage: RaftStorage;
  readonly transport: RaftTransport;
  readonly target: ApplyTarget;
  readonly prng: Prng;
  readonly logger: Logger;
  /** One tick; the election timeout is raft.electionTimeoutTicks of these. */
  readonly tickMs: number;
  /** Take a snapshot and compact once this many entries were applied since the last one. */
  readonly snapshotIntervalEntries: number;
  /** Entries kept behind a snapshot so slightly slow followers need no snapshot. */
  readonly snapshotTrailingEntries: number;
  /** A proposal not applied by then fails with an unknown outcome. */
  readonly proposalTimeoutMs: number;
  /** Called when storage fails: the server must stop (a disk it cannot trust). */
  readonly onFatal: (error: unknown) => void;
}

/** A snapshot of applied state: serialized between turns, then saved in one. */
interface SnapshotBuild {
  readonly meta: SnapshotMeta;
  /** The serialized state, once built. */
  data: Uint8Array | null;
  /**
   * What stops the server in the next turn: serializing failed (a bug, SnapshotSerializeError),
   * or writing the file ahead of the turn did (a storage failure).
   */
  error: unknown;
}

/** Raft messages queued for the next turn; beyond this they are dropped (Raft retransmits). */
export const INBOX_MESSAGES_MAX = 16384;
/** Proposals waiting to be applied; beyond this new ones are refused as overloaded. */
export const PENDING_PROPOSALS_MAX = 65536;
/** Ticks applied at once when the timer fired late (event-loop lag, not a pause). */
const CATCH_UP_TICKS_MAX = 64;

/** Why a proposal or read failed, and whether a write may still take effect. */
export class RaftRequestError extends Error {
  override name = 'RaftRequestError';
  constructor(
    readonly reason: 'not-leader' | 'transferring' | 'too-large' | 'overloaded' | 'timeout' | 'superseded' | 'restored' | 'closed' | 'config-change-pending' | 'invalid-config-change',
    readonly leaderId: ServerId | null,
    readonly outcome: 'not-applied' | 'unknown',
  ) {
    super(`raft: ${reason}`);
  }
}

interface PendingProposal {
  readonly term: number;
  readonly resolve: (value: { index: number; result: unknown }) => void;
  readonly reject: (error: RaftRequestError) => void;
  readonly timer: NodeJS.Timeout;
}

interface PendingRead {
  readonly resolve: (index: number) => void;
  readonly reject: (error: RaftRequestError) => void;
}

interface AppliedWaiter {
  readonly index: number;
  readonly resolve: () => void;
  readonly reject: (error: RaftRequestError) => void;
}

export type RoleListener = (role: Role, term: number, leaderId: ServerId | null) => void;

export class RaftNode {
  #core: RaftCore;
  readonly #options: RaftNodeOptions;
  readonly #log: Logger;
  #inbox: Message[] = [];
  /** Peers whose connection to us closed since the last turn (a hint; see leaderConnectionLost). */
  readonly #connectionsLost = new Set<ServerId>();
  #pendingTicks = 0;
  /** Ticks this process was paused for, counted for the lease only (RaftCore.skipTicks). */
  #skippedTicks = 0;
  /**
   * A timer this many ticks late means the process was paused, not merely busy: half an election
   * timeout (event-loop lag under load stays far below; a 1M-key snapshot is ~15 ticks).
   */
  readonly #pauseTicks: number;
  #turnScheduled = false;
  #turnRunning = false;
  /** True while a Ready's write is in flight: arriving messages are stepped by #interim meanwhile. */
  #writing = false;
  #interimScheduled = false;
  #closed = false;
  #ticker: NodeJS.Timeout | null = null;
  #lastTickAt = 0;
  #lastContactAt = 0;
  /** When each peer last sent us anything (monotonic ms). */
  readonly #lastHeardFrom = new Map<ServerId, number>();
  #lastSnapshotIndex: number;
  /** The snapshot being serialized between turns (#buildSnapshot) or waiting to be saved, or null. */
  #snapshotBuild: SnapshotBuild | null = null;
  readonly #proposals = new Map<number, PendingProposal>();
  /** The term of the last entry applied here, or of the snapshot restored (#rejectSuperseded). */
  #appliedTerm = 0;
  readonly #reads = new Map<number, PendingRead>();
  #appliedWaiters: AppliedWaiter[] = [];
  #nextReadId = 1;
  readonly #roleListeners: RoleListener[] = [];
  /** Counters for /v1/debug/raft and benchmarks: how much group commit batches. */
  readonly #stats = { turns: 0, readies: 0, interims: 0, syncedWrites: 0, unsyncedWrites: 0, entriesPersisted: 0, entriesApplied: 0, strangerTermsDropped: 0 };
  readonly #idleWaiters: (() => void)[] = [];

  constructor(options: RaftNodeOptions, initial: InitialState) {
    this.#options = options;
    this.#log = options.logger;
    this.#core = new RaftCore(options.raft, initial, options.prng, {
      info: (fields, message) => options.logger.info(fields, message),
      warn: (fields, message) => options.logger.warn(fields, message),
      debug: (fields, message) => options.logger.debug(fields, message),
    });
    this.#lastSnapshotIndex = initial.snapshot?.meta.index ?? 0;
    this.#pauseTicks = Math.max(2, Math.floor(options.raft.electionTimeoutTicks / 2));
    options.transport.onMessage((message, unverified) => this.#receive(message, unverified));
    options.transport.onPeerConnectionLost?.((id) => this.#peerConnectionLost(id));
  }

  /** Starts ticking. */
  start(): void {
    assert(this.#ticker === null, 'start once');
    this.#lastTickAt = performance.now();
    this.#ticker = setInterval(() => this.#onTimer(), this.#options.tickMs);
    this.#schedule();
  }

  get id(): ServerId {
    return this.#core.id;
  }
  get role(): Role {
    return this.#core.role;
  }
  get term(): number {
    return this.#core.term;
  }
  get leaderId(): ServerId | null {
    return this.#core.leaderId;
  }
  get commitIndex(): number {
    return this.#core.commitIndex;
  }
  get lastIndex(): number {
    return this.#core.lastIndex;
  }
  get configuration(): Configuration {
    return this.#core.configuration;
  }
  /** True when nothing was ever persisted: the only state in which bootstrapping is allowed. */
  get isPristine(): boolean {
    return this.#core.term === 0 && this.#core.lastIndex === 0 && this.#core.snapshotMeta === null;
  }
  /** Milliseconds since this server last heard from its leader (0 on the leader). */
  get lastContactMs(): number {
    if (this.#core.role === 'leader') return 0;
    if (this.#lastContactAt === 0) return Number.POSITIVE_INFINITY;
    return Math.max(0, Math.round(performance.now() - this.#lastContactAt));
  }

  /** A diagnostic view for /v1/debug/raft and the UI. */
  status(): Record<string, unknown> {
    return {
      id: this.#core.id,
      role: this.#core.role,
      term: this.#core.term,
      leaderId: this.#core.leaderId,
      commitIndex: this.#core.commitIndex,
      appliedIndex: this.#options.target.appliedIndex,
      lastIndex: this.#core.lastIndex,
      firstIndex: this.#core.firstIndex,
      snapshotIndex: this.#core.snapshotMeta?.index ?? 0,
      lastContactMs: Number.isFinite(this.lastContactMs) ? this.lastContactMs : null,
      leaseValid: this.#leaseUsable(),
      configuration: this.#core.configuration,
      progress: this.#core.role === 'leader' ? this.#core.progressSnapshot() : [],
      stats: { ...this.#stats },
    };
  }

  /**
   * Peers we expect to hear from (a leader: every other server; a follower: its leader) that
   * sent nothing for `silentMs`: their connection may be stuck, and the host may redial.
   */
  silentPeers(silentMs: number): ServerId[] {
    const now = performance.now();
    const expected = this.#core.role === 'leader'
      ? this.#core.configuration.servers.map((server) => server.id).filter((id) => id !== this.#core.id)
      : this.#core.leaderId !== null && this.#core.leaderId !== this.#core.id ? [this.#core.leaderId] : [];
    return expected.filter((id) => now - (this.#lastHeardFrom.get(id) ?? 0) > silentMs);
  }

  /** Per-follower replication progress (leader only; empty otherwise). */
  progress(): ReturnType<RaftCore['progressSnapshot']> {
    return this.#core.role === 'leader' ? this.#core.progressSnapshot() : [];
  }

  onRoleChange(listener: RoleListener): void {
    this.#roleListeners.push(listener);
  }

  /**
   * Replaces an empty server's state with the bootstrap configuration (every founder writes the
   * same entry). Refused once anything was persisted: a restarted server never bootstraps again.
   */
  async bootstrap(configuration: Configuration): Promise<boolean> {
    if (!this.isPristine) return false;
    const initial = RaftCore.bootstrapState(configuration);
    await this.#waitIdle();
    if (!this.isPristine) return false;
    await this.#options.storage.persist({ hardState: initial.hardState, entries: initial.entries, snapshot: null, sync: true });
    this.#core = new RaftCore(this.#options.raft, initial, this.#options.prng, {
      info: (fields, message) => this.#log.info(fields, message),
      warn: (fields, message) => this.#log.warn(fields, message),
      debug: (fields, message) => this.#log.debug(fields, message),
    });
    this.#log.info({ servers: configuration.servers.map((s) => s.id) }, 'bootstrapped the cluster');
    // A lone founder need not wait out an election timeout: nobody else can win.
    const voters = configuration.servers.filter((s) => s.voter);
    if (voters.length === 1 && voters[0]?.id === this.#core.id) this.#core.campaign();
    this.#schedule();
    return true;
  }

  /** Proposes a command; resolves with the state machine's result once applied here. */
  propose(data: Uint8Array): Promise<{ index: number; result: unknown }> {
    if (this.#closed) return Promise.reject(new RaftRequestError('closed', null, 'not-applied'));
    if (this.#proposals.size >= PENDING_PROPOSALS_MAX) return Promise.reject(new RaftRequestError('overloaded', this.#core.leaderId, 'not-applied'));
    const result = this.#core.propose(data);
    return this.#track(result);
  }

  /** Proposes a membership change; resolves once it is applied here. */
  changeMembership(change: ConfigChange): Promise<{ index: number; result: unknown }> {
    if (this.#closed) return Promise.reject(new RaftRequestError('closed', null, 'not-applied'));
    return this.#track(this.#core.proposeConfigChange(change));
  }

  #track(result: ReturnType<RaftCore['propose']>): Promise<{ index: number; result: unknown }> {
    if (!result.ok) {
      const leaderId = 'leaderId' in result ? result.leaderId : this.#core.leaderId;
      return Promise.reject(new RaftRequestError(result.reason, leaderId, 'not-applied'));
    }
    this.#schedule();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#proposals.get(result.index)?.timer !== timer) return;
        this.#proposals.delete(result.index);
        reject(new RaftRequestError('timeout', this.#core.leaderId, 'unknown'));
      }, this.#options.proposalTimeoutMs);
      const previous = this.#proposals.get(result.index);
      if (previous !== undefined) {
        // Our earlier proposal at this index was overwritten by another leader's entry.
        clearTimeout(previous.timer);
        previous.reject(new RaftRequestError('superseded', this.#core.leaderId, 'not-applied'));
      }
      this.#proposals.set(result.index, { term: result.term, resolve, reject, timer });
    });
  }

  /**
   * Waits until a linearizable read may be answered from the local state machine: under a valid
   * leader lease at once (`lease`), otherwise after a ReadIndex quorum round. Leader only.
   */
  async read(lease: boolean): Promise<void> {
    if (testBug('read-without-leader-check')) return;
    if (lease && !this.#closed && this.#leaseUsable() && this.#options.target.appliedIndex >= this.#core.commitIndex) return;
    await this.waitApplied(await this.readIndex(lease));
  }

  /**
   * Confirms leadership and returns the index a linearizable read must see (Raft thesis §6.4):
   * the commit index, under the lease at once, otherwise after a quorum heartbeat round. Leader
   * only; followers ask the leader for it over RPC and then read locally (follower reads).
   */
  readIndex(lease: boolean): Promise<number> {
    if (this.#closed) return Promise.reject(new RaftRequestError('closed', null, 'not-applied'));
    const useLease = lease && this.#leaseUsable();
    if (useLease && this.#core.role === 'leader') return Promise.resolve(this.#core.commitIndex);
    const requestId = this.#nextReadId++;
    const result = this.#core.readIndex(requestId, useLease);
    if (!result.ok) {
      return Promise.reject(new RaftRequestError(result.reason, result.reason === 'not-leader' ? result.leaderId : this.#core.leaderId, 'not-applied'));
    }
    this.#schedule();
    return new Promise((resolve, reject) => {
      this.#reads.set(requestId, { resolve, reject });
    });
  }

  /** Resolves once the local state machine has applied `index`. */
  waitApplied(index: number): Promise<void> {
    if (this.#options.target.appliedIndex >= index) return Promise.resolve();
    if (this.#closed) return Promise.reject(new RaftRequestError('closed', null, 'not-applied'));
    return new Promise((resolve, reject) => this.#appliedWaiters.push({ index, resolve, reject }));
  }

  /** Hands leadership to another voter (graceful leave, operator request). */
  transferLeadership(target: ServerId): boolean {
    const ok = this.#core.transferLeadership(target);
    this.#schedule();
    return ok;
  }

  /** Stops ticking, fails pending requests and waits for the current turn to finish. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ticker !== null) clearInterval(this.#ticker);
    await this.#waitIdle();
    this.#failWaiters();
  }

  /** Answers every waiting proposal (outcome unknown: it may commit elsewhere) and read. */
  /** Rejects and forgets every waiting proposal that `matches` picks, with the error `fail` makes. */
  #rejectProposals(matches: (index: number, proposal: PendingProposal) => boolean, fail: () => RaftRequestError): void {
    for (const [index, proposal] of this.#proposals) {
      if (!matches(index, proposal)) continue;
      clearTimeout(proposal.timer);
      this.#proposals.delete(index);
      proposal.reject(fail());
    }
  }

  #failWaiters(): void {
    this.#rejectProposals(() => true, () => new RaftRequestError('closed', null, 'unknown'));
    for (const read of this.#reads.values()) read.reject(new RaftRequestError('closed', null, 'not-applied'));
    this.#reads.clear();
    for (const waiter of this.#appliedWaiters) waiter.reject(new RaftRequestError('closed', null, 'not-applied'));
    this.#appliedWaiters = [];
  }

  // ---------------------------------------------------------------------------------------

  /**
   * The lease is counted in ticks; it is only usable while the ticker keeps up with real time.
   * After a pause (SIGSTOP, a long GC) the ticks owed have not been counted yet, and a lease
   * that looks valid in ticks may have run out in real time (the zombie-leader case).
   */
  #leaseUsable(): boolean {
    // Ticks owed but not yet stepped into the core (#onTimer ran, the turn has not) mean the
    // core's view of time is behind: after a pause the timer fires before the HTTP request is
    // read, moves #lastTickAt to now, and only the next turn counts the ticks. Found by the
    // zombie-leader test (test/faults/bug-lease-after-pause.test.ts).
    if (this.#pendingTicks > 0 || !this.#core.isLeaseValid()) return false;
    return performance.now() - this.#lastTickAt < this.#options.tickMs * 1.5;
  }

  #onTimer(): void {
    const now = performance.now();
    const owed = Math.floor((now - this.#lastTickAt) / this.#options.tickMs);
    if (owed <= 0) return;
    if (owed > this.#pauseTicks) {
      // This process was paused (see RaftCore.skipTicks): the time counts for the lease, then
      // one tick, so the election timers go on from where they stood. That tick keeps
      // #pendingTicks above 0 until the turn, which is what #leaseUsable checks.
      this.#skippedTicks += owed - 1;
      this.#pendingTicks += 1;
    } else {
      this.#pendingTicks += Math.min(owed, CATCH_UP_TICKS_MAX);
    }
    this.#lastTickAt += owed * this.#options.tickMs;
    this.#schedule();
  }

  #receive(message: Message, unverified: boolean): void {
    if (this.#closed) return;
    if (unverified && message.term > this.#core.term && !this.#core.configuration.servers.some((server) => server.id === message.from)) {
      // A server that gave no cluster id at its handshake (while we have one) and is not in our
      // configuration cannot move our term: anyone who reaches the server port could otherwise
      // depose the leader and run the term up (test/fuzz/live.test.ts). Members pass, even
      // before they learn the id (a joining server's first answers to the leader).
      this.#stats.strangerTermsDropped++;
      this.#log.debug({ from: message.from, term: message.term, type: message.type }, 'dropping a higher term from a server outside the cluster');
      return;
    }
    if (this.#inbox.length >= INBOX_MESSAGES_MAX) return;
    this.#inbox.push(message);
    this.#schedule();
  }

  /** Stepped after the messages that arrived before it, so a last heartbeat cannot undo it. */
  #peerConnectionLost(id: ServerId): void {
    if (this.#closed || this.#core.leaderId !== id) return;
    this.#connectionsLost.add(id);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#writing) this.#scheduleInterim();
    if (this.#turnScheduled || this.#turnRunning || this.#closed) return;
    this.#turnScheduled = true;
    setImmediate(() => {
      this.#turnScheduled = false;
      void this.#turn();
    });
  }

  #scheduleInterim(): void {
    if (this.#interimScheduled || this.#closed) return;
    this.#interimScheduled = true;
    setImmediate(() => {
      this.#interimScheduled = false;
      this.#interim();
    });
  }

  /**
   * While a Ready's write is in flight: step what arrived and do what needs none of that write
   * (RaftCore.interimReady): a leader applies and answers the entries its followers just
   * acknowledged, which most often arrive during its next fsync, instead of one fsync later.
   */
  #interim(): void {
    if (!this.#writing || this.#closed) return;
    try {
      this.#stepInbox();
      const interim = this.#core.interimReady();
      if (interim === null) return;
      this.#stats.interims++;
      for (const message of interim.messages) this.#options.transport.send(message);
      this.#applyCommitted(interim.committedEntries);
      this.#stats.entriesApplied += interim.committedEntries.length;
      this.#deliverReads(interim.readStates, interim.readFailures);
    } catch (error) {
      // As in a turn: the state machine or the core failed; the write in flight finishes alone.
      this.#stopOnFatal(error);
    }
  }

  #waitIdle(): Promise<void> {
    if (!this.#turnRunning) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async #turn(): Promise<void> {
    assert(!this.#turnRunning, 'turns never overlap');
    this.#turnRunning = true;
    this.#stats.turns++;
    try {
      this.#stepInbox();
      while (!this.#closed && this.#core.hasReady()) {
        await this.#processReady(this.#core.ready());
        this.#stepInbox();
      }
      if (!this.#closed && this.#snapshotBuilt()) await this.#saveSnapshot();
    } catch (error) {
      this.#stopOnFatal(error);
    } finally {
      this.#turnRunning = false;
      for (const waiter of this.#idleWaiters.splice(0)) waiter();
    }
    if (this.#inbox.length > 0 || this.#pendingTicks > 0 || this.#connectionsLost.size > 0 || this.#snapshotBuilt()) this.#schedule();
  }

  #stopOnFatal(error: unknown): void {
    // pendingWrites: the proposals about to be answered "outcome unknown" (#failWaiters).
    this.#log.error({ err: error, pendingWrites: this.#proposals.size }, error instanceof SnapshotSerializeError ? 'snapshot serializer failed: stopping' : 'raft storage failed: stopping');
    this.#closed = true;
    if (this.#ticker !== null) clearInterval(this.#ticker);
    // Waiting clients get an answer (500, outcome unknown) rather than a dropped connection.
    this.#failWaiters();
    this.#options.onFatal(error);
  }

  #stepInbox(): void {
    const core = this.#core;
    const now = this.#inbox.length > 0 ? performance.now() : 0;
    for (const message of this.#inbox.splice(0)) {
      this.#lastHeardFrom.set(message.from, now);
      if ((message.type === 'AppendEntries' || message.type === 'Heartbeat' || message.type === 'InstallSnapshot') && message.term >= core.term) {
        this.#lastContactAt = performance.now();
      }
      core.step(message);
    }
    for (const id of this.#connectionsLost) core.leaderConnectionLost(id);
    this.#connectionsLost.clear();
    if (this.#skippedTicks > 0) core.skipTicks(this.#skippedTicks);
    this.#skippedTicks = 0;
    for (; this.#pendingTicks > 0; this.#pendingTicks--) core.tick();
  }

  /**
   * One Ready, in this order:
   * 1. messages that may precede our own write (a leader's appends and heartbeats) go out;
   * 2. committed entries are applied and their proposers answered — they are durable on a
   *    majority already (a leader counts itself only after its own write), so they need not wait
   *    for this Ready's write, which removes one fsync from every commit's latency (etcd's
   *    asynchronous storage writes make the same argument); confirmed reads are released;
   * 3. hard state, new entries and a received snapshot are persisted, synced, in one batch;
   * 4. the rest of the messages (votes, acknowledgements: promises about our disk) go out.
   * While the write of step 3 is in flight, what arrives is stepped and #interim does steps 1
   * and 2 for it (up to this server's durable log); the next Ready waits for the write.
   */
  async #processReady(ready: Ready): Promise<void> {
    const { transport, storage } = this.#options;
    const early = testBug('ack-before-fsync');
    for (const message of ready.messages) if (early || mayPrecedePersist(message)) transport.send(message);
    if (ready.snapshot !== null) {
      // The leader's snapshot is newer than any we are serializing: that one is dropped.
      this.#snapshotBuild = null;
      this.#options.target.restore(ready.snapshot);
      this.#lastSnapshotIndex = ready.snapshot.meta.index;
      // Our proposals the snapshot covers are never applied here one by one: whether they are in
      // it is not known here.
      const covered = ready.snapshot.meta.index;
      this.#rejectProposals((index) => index <= covered, () => new RaftRequestError('restored', this.#core.leaderId, 'unknown'));
      this.#rejectSuperseded(ready.snapshot.meta.term);
    }
    this.#applyCommitted(ready.committedEntries);
    this.#stats.readies++;
    this.#stats.entriesApplied += ready.committedEntries.length;
    this.#deliverReads(ready.readStates, ready.readFailures);
    if (ready.hardState !== null || ready.entries.length > 0 || ready.snapshot !== null) {
      failpoint('raft.beforePersist');
      const hardState = ready.hardState !== null && testBug('vote-not-persisted') ? { ...ready.hardState, vote: null } : ready.hardState;
      this.#writing = true;
      if (this.#inbox.length > 0) this.#scheduleInterim();
      try {
        await storage.persist({ hardState, entries: ready.entries, snapshot: ready.snapshot, sync: ready.mustSync && !early });
      } finally {
        this.#writing = false;
      }
      if (ready.mustSync && !early) this.#stats.syncedWrites++;
      else this.#stats.unsyncedWrites++;
      this.#stats.entriesPersisted += ready.entries.length;
      failpoint('raft.afterPersist');
    }
    if (!early) for (const message of ready.messages) if (!mayPrecedePersist(message)) transport.send(message);
    this.#core.advance(ready);
    if (ready.softState !== null) {
      const { role, term, leaderId } = ready.softState;
      if (role === 'leader') this.#lastContactAt = performance.now();
      for (const listener of this.#roleListeners) listener(role, term, leaderId);
    }
    this.#maybeSnapshot();
  }

  #applyCommitted(entries: readonly Entry[]): void {
    const target = this.#options.target;
    for (const entry of entries) {
      failpoint('raft.beforeApply');
      const result = target.applyEntry(entry);
      const proposal = this.#proposals.get(entry.index);
      if (proposal !== undefined) {
        this.#proposals.delete(entry.index);
        clearTimeout(proposal.timer);
        // Another term's entry at our index means ours was overwritten: definitely not applied.
        if (proposal.term === entry.term) proposal.resolve({ index: entry.index, result });
        else proposal.reject(new RaftRequestError('superseded', this.#core.leaderId, 'not-applied'));
      }
    }
    const last = entries[entries.length - 1];
    if (last !== undefined) {
      this.#rejectSuperseded(last.term);
      failpoint('raft.afterApply');
    }
  }

  /**
   * Entries apply in log order and terms never decrease along a log, so once an entry of term t
   * is applied here, no proposal of an older term still waiting (its index is past what was
   * applied) can ever commit: the committed log holds no older term after a newer one. Its
   * writer hears "not applied" now instead of at the proposal timeout: a deposed leader's last
   * proposals, past where its successor's log ends, were left waiting for entries that an idle
   * cluster may not write for a long time.
   */
  #rejectSuperseded(term: number): void {
    if (term <= this.#appliedTerm) return;
    this.#appliedTerm = term;
    this.#rejectProposals((_, proposal) => proposal.term < term, () => new RaftRequestError('superseded', this.#core.leaderId, 'not-applied'));
  }

  #deliverReads(readStates: readonly ReadState[], readFailures: readonly ReadFailure[]): void {
    for (const readState of readStates) {
      const read = this.#reads.get(readState.requestId);
      this.#reads.delete(readState.requestId);
      read?.resolve(readState.index);
    }
    for (const failure of readFailures) {
      const read = this.#reads.get(failure.requestId);
      this.#reads.delete(failure.requestId);
      read?.reject(new RaftRequestError('not-leader', failure.leaderId, 'not-applied'));
    }
    this.#releaseReads();
  }

  #releaseReads(): void {
    if (this.#appliedWaiters.length === 0) return;
    const applied = this.#options.target.appliedIndex;
    const waiting: AppliedWaiter[] = [];
    for (const waiter of this.#appliedWaiters) {
      if (waiter.index <= applied) waiter.resolve();
      else waiting.push(waiter);
    }
    this.#appliedWaiters = waiting;
  }

  /**
   * Starts a snapshot once enough entries were applied since the last. The state is captured
   * now; its serialization (~1 s at 1M keys) runs in steps between turns (#buildSnapshot), so
   * heartbeats, appends and applies go on meanwhile; a later turn saves it and compacts the log.
   */
  #maybeSnapshot(): void {
    const target = this.#options.target;
    const applied = target.appliedIndex;
    if (this.#snapshotBuild !== null || applied - this.#lastSnapshotIndex < this.#options.snapshotIntervalEntries) return;
    const meta = this.#core.snapshotMetaFor(applied);
    if (meta === null) return;
    failpoint('raft.beforeSnapshot');
    const build: SnapshotBuild = { meta, data: null, error: null };
    this.#snapshotBuild = build;
    void this.#buildSnapshot(build, target.snapshot());
  }

  async #buildSnapshot(build: SnapshotBuild, steps: Generator<void, Uint8Array, void>): Promise<void> {
    const abandoned = (): boolean => this.#closed || this.#snapshotBuild !== build;
    let data: Uint8Array | null;
    try {
      data = await runBetweenTurns(steps, abandoned);
      if (data === null) return;
    } catch (error) {
      // Serializing applied state fails only by a bug: the next turn stops the server with it.
      build.error = new SnapshotSerializeError(error);
      this.#schedule();
      return;
    }
    // The file is written and synced here, between turns too (~120 ms at 1M keys); the turn
    // that saves the snapshot then only compacts the log.
    const storage = this.#options.storage;
    if (storage.stageSnapshot !== undefined) {
      try {
        await storage.stageSnapshot({ meta: build.meta, data });
      } catch (error) {
        if (abandoned()) return;
        build.error = error;
        this.#schedule();
        return;
      }
    }
    build.data = data;
    this.#schedule();
  }

  #snapshotBuilt(): boolean {
    const build = this.#snapshotBuild;
    return build !== null && (build.data !== null || build.error !== null);
  }

  /** In a turn: saves the built snapshot and compacts the log, unless an installed one is newer. */
  async #saveSnapshot(): Promise<void> {
    const build = this.#snapshotBuild as SnapshotBuild;
    this.#snapshotBuild = null;
    if (build.error !== null) throw build.error;
    const snapshot: Snapshot = { meta: build.meta, data: build.data as Uint8Array };
    const applied = snapshot.meta.index;
    if ((this.#core.snapshotMeta?.index ?? 0) >= applied) return;
    const compactIndex = Math.max(this.#core.firstIndex - 1, applied - this.#options.snapshotTrailingEntries);
    await this.#options.storage.saveSnapshot(snapshot, compactIndex);
    this.#core.compact(snapshot, compactIndex);
    this.#lastSnapshotIndex = Math.max(this.#lastSnapshotIndex, applied);
    failpoint('raft.afterSnapshot');
    this.#log.info({ index: applied, compactIndex, bytes: snapshot.data.byteLength }, 'snapshot saved');
  }
}

/** Serializing the applied state failed (a bug): the server stops, as on a storage failure. */
class SnapshotSerializeError extends Error {
  constructor(cause: unknown) {
    super(`serializing a snapshot failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'SnapshotSerializeError';
  }
}
