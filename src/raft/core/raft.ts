import { assert, assertNever } from '../../lib/assert.js';
import type { Prng } from '../../lib/prng.js';
import type { RaftConfig, RaftLogger } from './config.js';
import { silentRaftLogger } from './config.js';
import { COMMITTED_BATCH_BYTES_MAX, PENDING_READS_MAX, SNAPSHOT_BYTES_MAX, TERM_MAX } from './limits.js';
import { RaftLog } from './log.js';
import type {
  AppendEntries,
  AppendEntriesResponse,
  Heartbeat,
  HeartbeatResponse,
  InstallSnapshot,
  InstallSnapshotResponse,
  Message,
  RequestVote,
  RequestVoteResponse,
} from './messages.js';
import { mayPrecedePersist } from './messages.js';
import { Progress } from './progress.js';
import { committedIndex, voteOutcome } from './quorum.js';
import { Membership, type ConfigChange } from './membership.js';
import type {
  Configuration,
  Entry,
  HardState,
  InitialState,
  InterimReady,
  ProposeResult,
  ReadFailure,
  ReadState,
  Ready,
  Role,
  ServerId,
  Snapshot,
  SnapshotMeta,
  SoftState,
} from './types.js';
import { encodeConfiguration } from './types.js';

type Envelope<M extends Message> = Omit<M, 'from' | 'term'> & { term?: number };

/** The result of a read request: accepted (a ReadState or ReadFailure follows) or refused now. */
export type ReadIndexResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'not-leader'; readonly leaderId: ServerId | null }
  | { readonly ok: false; readonly reason: 'overloaded' };

/** A snapshot being received from the leader, chunk by chunk. */
interface IncomingSnapshot {
  readonly meta: SnapshotMeta;
  readonly chunks: Uint8Array[];
  bytes: number;
}

interface PendingRead {
  readonly requestId: number;
  readonly index: number;
  readonly round: number;
}

/** A Ready handed out and not yet advanced: what advance() may acknowledge. */
interface ReadyInProgress {
  readonly ready: Ready;
  readonly lastEntry: Entry | null;
}

/** How far apart survivors campaign after their leader's connection closed (leaderConnectionLost). */
const HINT_STAGGER_TICKS = 2;

/** Ticks of recent heartbeat rounds, for the lease. Older rounds are simply forgotten. */
const ROUND_RING_SIZE = 1024;

/**
 * The Raft consensus algorithm as a pure state machine (the etcd-io/raft design): messages and
 * ticks in, a Ready out. No I/O, no timers, no clock, no randomness except the injected Prng.
 * Role changes happen only in become*(); input is handled by step*() per role.
 */
export class RaftCore {
  readonly id: ServerId;
  readonly #config: RaftConfig;
  readonly #prng: Prng;
  readonly #logger: RaftLogger;

  #term: number;
  #vote: ServerId | null;
  #role: Role = 'follower';
  #leaderId: ServerId | null = null;
  readonly #log: RaftLog;
  readonly #membership: Membership;

  /** The newest snapshot this server has (made locally or received): what laggards get. */
  #snapshot: Snapshot | null;
  /** A snapshot received from the leader that the host has not taken in a Ready yet. */
  #pendingSnapshot: Snapshot | null = null;
  #incomingSnapshot: IncomingSnapshot | null = null;

  #progress = new Map<ServerId, Progress>();
  #votes = new Map<ServerId, boolean>();

  #ticks = 0;
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  /**
   * Set by leaderConnectionLost(): the election timeout is shortened, and a pre-candidate repeats
   * its pre-vote every HINT_STAGGER_TICKS. A leader's message or a real candidacy clears it.
   */
  #leaderLostHint = false;
  /**
   * A server restarted after an election (term ≥ 2) may have acknowledged a leader just before
   * it went down, and that leader's lease counts on it not voting for anyone else for an
   * election timeout. Its memory of that is gone, so for its first election timeout it refuses
   * votes as if it still heard from a leader (the disruption guard). Without this, a voter
   * restarted within the lease (a supervisor restarts Conclave in ~0.4 s) could help elect a new
   * leader while the old one still serves lease reads.
   */
  #restartGuard: boolean;
  #leadTransferee: ServerId | null = null;
  /** Set once this term's leader has sent TimeoutNow: a transferee may win without waiting out leases. */
  #leaseRevoked = false;
  #appendPending = false;

  #round = 0;
  readonly #roundTicks: number[] = new Array<number>(ROUND_RING_SIZE).fill(-1);
  readonly #roundIds: number[] = new Array<number>(ROUND_RING_SIZE).fill(-1);
  /** A heartbeat round whose messages are still in the outbox (reads may join it). */
  #roundInOutbox = 0;
  #pendingReads: PendingRead[] = [];
  /** Reads waiting for this leader's first commit (its commit index is not yet current). */
  #readsAwaitingCommit: { requestId: number; lease: boolean }[] = [];

  #outbox: Message[] = [];
  #readStates: ReadState[] = [];
  #readFailures: ReadFailure[] = [];
  #prevHardState: HardState;
  #prevSoftState: SoftState;
  #readyInProgress: ReadyInProgress | null = null;

  constructor(config: RaftConfig, initial: InitialState, prng: Prng, logger: RaftLogger = silentRaftLogger) {
    this.id = config.id;
    this.#config = config;
    this.#prng = prng;
    this.#logger = logger;
    this.#term = initial.hardState.term;
    this.#vote = initial.hardState.vote;
    this.#snapshot = initial.snapshot;
    const offsetIndex = initial.snapshot?.meta.index ?? 0;
    const offsetTerm = initial.snapshot?.meta.term ?? 0;
    const entries = initial.entries.filter((entry) => entry.index > offsetIndex);
    this.#log = new RaftLog(offsetIndex, offsetTerm, entries, initial.hardState.commit);
    this.#membership = new Membership(offsetIndex, initial.snapshot?.meta.configuration ?? { servers: [] });
    for (const entry of this.#log.configEntries()) this.#membership.append(entry);
    this.#prevHardState = this.#hardState();
    this.#resetRandomizedElectionTimeout();
    this.#prevSoftState = this.#softState();
    this.#restartGuard = initial.hardState.term >= 2 && this.#config.checkQuorum;
  }

  /** The state a brand-new server persists to bootstrap a cluster (all founders use the same). */
  static bootstrapState(configuration: Configuration): InitialState {
    assert(configuration.servers.some((server) => server.voter), 'a bootstrap configuration needs a voter');
    const entry: Entry = { index: 1, term: 1, type: 'config', data: encodeConfiguration(configuration) };
    return { hardState: { term: 1, vote: null, commit: 0 }, snapshot: null, entries: [entry] };
  }

  // ---------------------------------------------------------------------------------------
  // Inspection

  get term(): number {
    return this.#term;
  }
  get role(): Role {
    return this.#role;
  }
  get leaderId(): ServerId | null {
    return this.#leaderId;
  }
  get commitIndex(): number {
    return this.#log.committed;
  }
  get appliedIndex(): number {
    return this.#log.applied;
  }
  get lastIndex(): number {
    return this.#log.lastIndex();
  }
  get configuration(): Configuration {
    return this.#membership.current;
  }
  get snapshotMeta(): SnapshotMeta | null {
    return this.#snapshot?.meta ?? null;
  }
  /** Index of the first entry still in the log (entries before it are compacted). */
  get firstIndex(): number {
    return this.#log.firstIndex();
  }

  /** True when this server is a voter in its latest configuration. */
  isPromotable(): boolean {
    return this.#membership.isVoter(this.id);
  }

  /** True while this leader may answer reads from memory (a quorum heard it within the lease). */
  isLeaseValid(): boolean {
    if (this.#role !== 'leader' || !this.#config.leaseReads || this.#leaseRevoked) return false;
    if (!this.#hasCommittedInTerm()) return false;
    const voters = this.#membership.voters();
    if (voters.length === 1 && voters[0] === this.id) return true;
    // Each voter that acknowledged a heartbeat round refuses other candidates for its own guard
    // after receiving it; the lease holds while a quorum's guards do, counted from when the round
    // was sent (earlier than received: conservative), and never beyond our own election timeout.
    // Voters given a shorter election timeout than ours shorten the lease (a leader with a long
    // one would otherwise serve reads after the others elected a successor).
    const timeout = this.#config.electionTimeoutTicks;
    const guardUntil = committedIndex(voters, (id) => {
      if (id === this.id) return this.#ticks + timeout;
      const pr = this.#progress.get(id);
      if (pr === undefined) return -1;
      const sentTick = this.#roundSentTick(pr.ackedRound);
      return sentTick < 0 ? -1 : sentTick + Math.min(timeout, Math.floor(pr.guardMs / this.#config.tickMs));
    });
    return this.#ticks < guardUntil - this.#config.leaseMarginTicks;
  }

  /** Per-peer replication state, for status endpoints and the UI. */
  progressSnapshot(): { id: ServerId; match: number; next: number; state: string; recentActive: boolean }[] {
    return [...this.#progress.entries()].map(([id, pr]) => ({ id, match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive }));
  }

  /**
   * The metadata a snapshot of the state machine at `index` (<= applied) must carry, or null when
   * a snapshot received from the leader has replaced the log past `index` (see below).
   */
  snapshotMetaFor(index: number): SnapshotMeta | null {
    assert(index <= this.#log.applied, 'snapshot only applied state');
    // A snapshot received from the leader replaced our log past `index` (stepped while our own
    // write was in flight): the next Ready restores it, so state at `index` is not worth saving.
    if (index < this.#log.offsetIndex()) return null;
    const term = this.#log.term(index);
    assert(term !== undefined, 'snapshot index is in the log');
    return { index, term, configuration: this.#membership.at(index) };
  }

  /** The entry at `index` if the log still holds it (tests and debugging). */
  entryAt(index: number): Entry | undefined {
    return this.#log.entry(index);
  }

  // ---------------------------------------------------------------------------------------
  // Input

  /**
   * Counts `count` ticks that passed while this server could not run (a pause: a synchronous
   * snapshot of a large state, SIGSTOP, a long GC) for the leader lease only, which must run out
   * in real time (the zombie-leader case). The timers that act on silence — election timeout,
   * check-quorum, heartbeats — do not advance: a server that was not listening has no evidence
   * that the others went quiet. Counting its own pause as their silence made a follower campaign
   * the moment it resumed, and a leader step down when a second check-quorum fell inside the same
   * batch of ticks, with no message stepped in between: at 1M keys every snapshot (all servers at
   * the same index, ~1.5 s each) cost a leader change. Electing later is always safe: the lease
   * and the voters' disruption guard assume no earlier.
   */
  skipTicks(count: number): void {
    assert(Number.isSafeInteger(count) && count >= 0, 'skipTicks: a non-negative integer');
    this.#ticks += count;
  }

  /** Advances logical time by one tick. */
  tick(): void {
    this.#ticks++;
    if (this.#role === 'leader') this.#tickLeader();
    else this.#tickElection();
  }

  /** Proposes a command; only a leader accepts (the result names the leader otherwise). */
  propose(data: Uint8Array): ProposeResult {
    return this.#appendProposal('normal', data);
  }

  /** Proposes a single-server membership change (Raft thesis §4.1). */
  proposeConfigChange(change: ConfigChange): ProposeResult {
    if (this.#role !== 'leader') return { ok: false, reason: 'not-leader', leaderId: this.#leaderId };
    // A leader must commit an entry of its term before changing membership (raft-dev, 2015:
    // the single-server change bug) and at most one change may be uncommitted.
    if (!this.#hasCommittedInTerm() || this.#membership.latestIndex > this.#log.committed) {
      return { ok: false, reason: 'config-change-pending' };
    }
    const next = this.#membership.apply(change);
    if (next === null) return { ok: false, reason: 'invalid-config-change' };
    return this.#appendProposal('config', encodeConfiguration(next));
  }

  /**
   * Asks for a linearizable read. A ReadState (or a ReadFailure) with `requestId` follows in a
   * later Ready; the host answers once its applied index reaches the ReadState's index.
   * `lease` allows answering from the leader lease without a quorum round.
   */
  readIndex(requestId: number, lease: boolean): ReadIndexResult {
    if (this.#role !== 'leader') return { ok: false, reason: 'not-leader', leaderId: this.#leaderId };
    if (this.#pendingReads.length + this.#readsAwaitingCommit.length >= PENDING_READS_MAX) {
      return { ok: false, reason: 'overloaded' };
    }
    if (!this.#hasCommittedInTerm()) {
      this.#readsAwaitingCommit.push({ requestId, lease });
      return { ok: true };
    }
    this.#serveRead(requestId, lease);
    return { ok: true };
  }

  /** Hands leadership to `target` (Raft thesis §3.10). Proposals are refused meanwhile. */
  transferLeadership(target: ServerId): boolean {
    if (this.#role !== 'leader' || target === this.id || !this.#membership.isVoter(target)) return false;
    const pr = this.#progress.get(target);
    if (pr === undefined) return false;
    this.#leadTransferee = target;
    this.#electionElapsed = 0;
    this.#logger.info({ term: this.#term, target }, 'transferring leadership');
    if (pr.match === this.#log.lastIndex()) this.#sendTimeoutNow(target);
    else this.#sendAppend(target, true);
    return true;
  }

  /**
   * A hint from the host: the connection on which `id` sends us Raft messages closed (a killed
   * process closes its sockets at once). If `id` is our leader, campaign as soon as the
   * disruption guard allows, one election timeout after we last heard from it, instead of a
   * random time up to twice that; survivors are staggered by rank so they do not split the vote.
   * Safety does not depend on the hint being true: the earliest campaign is still a full
   * election timeout after the last heartbeat (what voters and the leader lease assume), and a
   * live leader's next heartbeat restores a random timeout. A pre-candidate with the hint repeats
   * its pre-vote every HINT_STAGGER_TICKS until a leader or a real candidacy (with a random
   * timeout again) ends it.
   */
  leaderConnectionLost(id: ServerId): void {
    if (this.#role !== 'follower' || this.#leaderId !== id || !this.isPromotable()) return;
    const survivors = this.#membership.voters().filter((voter) => voter !== id).sort();
    const rank = survivors.indexOf(this.id);
    if (rank < 0) return;
    // Two ticks per rank: the survivors' tickers run out of phase by up to one tick, and one
    // tick apart they could still campaign at the same moment and split the vote (seen once
    // in five kills in test/faults/failover-timing: 2.7 s instead of 1.1 s).
    const hinted = this.#config.electionTimeoutTicks + HINT_STAGGER_TICKS * rank;
    this.#randomizedElectionTimeout = Math.min(this.#randomizedElectionTimeout, hinted);
    this.#leaderLostHint = true;
    this.#logger.debug({ term: this.#term, leaderId: id, timeoutTicks: hinted }, 'connection from the leader closed: campaigning early if it stays silent');
  }

  /** Starts an election now (tests and operators); a follower would otherwise wait its timeout. */
  campaign(): void {
    if (this.#role !== 'leader') this.#startElection(this.#config.preVote ? 'pre' : 'real');
  }

  /**
   * The host saved `snapshot` (of applied state) and may drop entries up to `compactIndex`
   * (<= snapshot index; a few trailing entries spare slow followers a snapshot).
   */
  compact(snapshot: Snapshot, compactIndex: number): void {
    assert(compactIndex <= snapshot.meta.index, 'compact within the snapshot');
    assert(snapshot.meta.index <= this.#log.applied, 'snapshot only applied state');
    if (this.#snapshot === null || snapshot.meta.index > this.#snapshot.meta.index) this.#snapshot = snapshot;
    if (compactIndex > this.#log.offsetIndex()) {
      this.#log.compactTo(compactIndex);
      this.#membership.compactTo(compactIndex);
    }
  }

  /** Handles one message from a peer. Messages for others, or from stale terms, are dropped. */
  step(message: Message): void {
    if (message.to !== this.id || message.from === this.id) return;
    if (message.term > TERM_MAX) {
      this.#logger.warn({ from: message.from, term: message.term }, 'dropping a message with an impossible term');
      return;
    }
    if (message.term > this.#term) {
      if (!this.#stepHigherTerm(message)) return;
    } else if (message.term < this.#term) {
      this.#stepLowerTerm(message);
      return;
    }
    if (message.type === 'RequestVote') {
      this.#stepRequestVote(message);
      return;
    }
    switch (this.#role) {
      case 'leader':
        this.#stepLeader(message);
        return;
      case 'candidate':
      case 'pre-candidate':
        this.#stepCandidate(message);
        return;
      case 'follower':
        this.#stepFollower(message);
        return;
      default:
        assertNever(this.#role, 'role');
    }
  }

  // ---------------------------------------------------------------------------------------
  // Ready / advance

  hasReady(): boolean {
    if (this.#readyInProgress !== null) return false;
    if (this.#appendPending || this.#outbox.length > 0) return true;
    if (this.#log.stableIndex < this.#log.lastIndex() || this.#pendingSnapshot !== null) return true;
    if (this.#log.applied < this.#log.committed) return true;
    if (this.#readStates.length > 0 || this.#readFailures.length > 0) return true;
    if (!sameHardState(this.#hardState(), this.#prevHardState)) return true;
    return !sameSoftState(this.#softState(), this.#prevSoftState);
  }

  ready(): Ready {
    assert(this.#readyInProgress === null, 'advance the previous Ready first');
    this.#flushAppends();
    const entries = this.#log.unstableEntries();
    const snapshot = this.#pendingSnapshot;
    this.#pendingSnapshot = null;
    const committedEntries = this.#log.nextCommitted(COMMITTED_BATCH_BYTES_MAX);
    const last = committedEntries[committedEntries.length - 1];
    if (last !== undefined) this.#log.applied = last.index;
    const hardState = this.#hardState();
    const hardChanged = !sameHardState(hardState, this.#prevHardState);
    const softState = this.#softState();
    const softChanged = !sameSoftState(softState, this.#prevSoftState);
    this.#prevSoftState = softState;
    const ready: Ready = {
      softState: softChanged ? softState : null,
      hardState: hardChanged ? hardState : null,
      entries,
      snapshot,
      messages: this.#outbox,
      committedEntries,
      readStates: this.#readStates,
      readFailures: this.#readFailures,
      mustSync: entries.length > 0 || snapshot !== null || hardState.term !== this.#prevHardState.term || hardState.vote !== this.#prevHardState.vote,
    };
    this.#outbox = [];
    this.#readStates = [];
    this.#readFailures = [];
    this.#roundInOutbox = 0;
    this.#readyInProgress = { ready, lastEntry: entries[entries.length - 1] ?? null };
    return ready;
  }

  /**
   * While the last Ready's write is in flight, the work that needs none of it: the messages that
   * may precede a persist (a leader's appends and heartbeats, with its new proposals), entries
   * committed since (durable on a majority, so they need not wait for our disk) and reads
   * confirmed since. A leader whose followers acknowledged entries it wrote in an earlier turn
   * answers those proposals now instead of after this turn's fsync: most acknowledgements arrive
   * during the leader's next write. Null when there is nothing, or when a received snapshot must
   * be restored first (only the next Ready does that). Acknowledgements and votes, promises about
   * our disk, stay for the next Ready.
   */
  interimReady(): InterimReady | null {
    if (this.#readyInProgress === null || this.#pendingSnapshot !== null) return null;
    this.#flushAppends();
    // Only entries already durable here: applied never passes what this server holds on disk,
    // so a snapshot (taken at the applied index) never runs ahead of the log it compacts.
    const committedEntries = this.#log.nextCommitted(COMMITTED_BATCH_BYTES_MAX, this.#log.stableIndex);
    const messages: Message[] = [];
    const kept: Message[] = [];
    for (const message of this.#outbox) (mayPrecedePersist(message) ? messages : kept).push(message);
    if (committedEntries.length === 0 && messages.length === 0 && this.#readStates.length === 0 && this.#readFailures.length === 0) return null;
    const last = committedEntries[committedEntries.length - 1];
    if (last !== undefined) this.#log.applied = last.index;
    if (messages.length > 0) {
      this.#outbox = kept;
      // The round's heartbeats are on their way: a read arriving now must start a new round
      // (a round sent before a read was received cannot confirm it), as after ready().
      this.#roundInOutbox = 0;
    }
    const interim: InterimReady = { messages, committedEntries, readStates: this.#readStates, readFailures: this.#readFailures };
    this.#readStates = [];
    this.#readFailures = [];
    return interim;
  }

  /** The driver made `ready` durable, sent its messages and applied its entries. */
  advance(ready: Ready): void {
    const inProgress = this.#readyInProgress;
    assert(inProgress !== null && inProgress.ready === ready, 'advance the Ready last handed out');
    this.#readyInProgress = null;
    if (ready.hardState !== null) this.#prevHardState = ready.hardState;
    if (ready.snapshot !== null) {
      if (this.#snapshot === null || ready.snapshot.meta.index > this.#snapshot.meta.index) this.#snapshot = ready.snapshot;
    }
    if (inProgress.lastEntry !== null) this.#log.stableTo(inProgress.lastEntry.index, inProgress.lastEntry.term);
    if (this.#role === 'leader') {
      const self = this.#progress.get(this.id);
      if (self !== undefined) self.maybeUpdate(this.#log.stableIndex);
      if (this.#maybeCommit()) this.#broadcastCommit();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Roles

  #becomeFollower(term: number, leaderId: ServerId | null): void {
    const wasLeader = this.#role === 'leader';
    if (term !== this.#term) {
      assert(term > this.#term, 'terms never go back');
      this.#term = term;
      this.#vote = null;
    }
    this.#role = 'follower';
    this.#leaderId = leaderId;
    this.#resetTimers();
    this.#failPendingReads();
    if (wasLeader) this.#logger.info({ term, leaderId }, 'stepped down');
  }

  #becomePreCandidate(): void {
    assert(this.#role !== 'leader', 'a leader does not pre-campaign');
    this.#role = 'pre-candidate';
    this.#leaderId = null;
    this.#votes = new Map([[this.id, true]]);
    this.#resetTimers();
  }

  #becomeCandidate(): void {
    assert(this.#role !== 'leader', 'a leader does not campaign');
    this.#term += 1;
    this.#vote = this.id;
    this.#role = 'candidate';
    this.#leaderId = null;
    this.#votes = new Map([[this.id, true]]);
    this.#resetTimers();
  }

  #becomeLeader(): void {
    assert(this.#role === 'candidate', 'only a candidate becomes leader');
    this.#role = 'leader';
    this.#leaderId = this.id;
    this.#resetTimers();
    this.#leaseRevoked = false;
    this.#progress = new Map();
    for (const server of this.#membership.current.servers) this.#addProgress(server.id);
    const self = this.#progress.get(this.id);
    if (self !== undefined) {
      self.maybeUpdate(this.#log.stableIndex);
      self.becomeReplicate();
    }
    // Raft §8: a no-op of the new term lets the leader commit (and learn) its predecessors' entries.
    this.#log.append([{ index: this.#log.lastIndex() + 1, term: this.#term, type: 'noop', data: new Uint8Array(0) }]);
    this.#appendPending = true;
    this.#logger.info({ term: this.#term, lastIndex: this.#log.lastIndex() }, 'became leader');
  }

  #addProgress(id: ServerId): void {
    if (this.#progress.has(id)) return;
    this.#progress.set(id, new Progress(this.#log.lastIndex() + 1, this.#config.inflightMessagesMax));
  }

  #resetTimers(): void {
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#leadTransferee = null;
    this.#resetRandomizedElectionTimeout();
  }

  #resetRandomizedElectionTimeout(): void {
    if (this.#leaderLostHint && this.#role === 'pre-candidate') {
      // A pre-vote after a leader's connection closed may reach a voter whose ticker is up to a
      // tick behind ours and so still inside the disruption guard: it says no. Ask again soon
      // rather than after a whole random timeout (a pre-vote changes no term and no vote). Seen
      // in the failover benchmark: 2.26 s in 1 of 10 kills when the more up-to-date survivor was
      // refused this way and the other could not win.
      this.#randomizedElectionTimeout = HINT_STAGGER_TICKS;
      return;
    }
    this.#leaderLostHint = false;
    const base = this.#config.electionTimeoutTicks;
    this.#randomizedElectionTimeout = base + this.#prng.nextInt(base);
  }

  // ---------------------------------------------------------------------------------------
  // Ticks

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#config.electionTimeoutTicks) this.#restartGuard = false;
    if (this.isPromotable() && this.#electionElapsed >= this.#randomizedElectionTimeout) {
      this.#electionElapsed = 0;
      this.#startElection(this.#config.preVote ? 'pre' : 'real');
    }
  }

  #tickLeader(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#config.electionTimeoutTicks) {
      this.#electionElapsed = 0;
      if (this.#config.checkQuorum && !this.#quorumActive()) {
        this.#logger.warn({ term: this.#term }, 'no quorum heard within an election timeout');
        this.#becomeFollower(this.#term, null);
        return;
      }
      if (this.#leadTransferee !== null) {
        this.#logger.info({ target: this.#leadTransferee }, 'leadership transfer timed out');
        this.#leadTransferee = null;
      }
    }
    if (this.#heartbeatElapsed >= this.#config.heartbeatIntervalTicks) {
      this.#heartbeatElapsed = 0;
      this.#broadcastHeartbeat();
    }
  }

  /** Check-quorum: did a majority of voters (ourselves included) speak since the last check? */
  #quorumActive(): boolean {
    const voters = this.#membership.voters();
    let active = 0;
    for (const id of voters) {
      const pr = this.#progress.get(id);
      if (id === this.id || pr?.recentActive === true) active++;
      if (pr !== undefined) pr.recentActive = false;
    }
    return active >= Math.floor(voters.length / 2) + 1;
  }

  // ---------------------------------------------------------------------------------------
  // Elections

  #startElection(kind: 'pre' | 'real' | 'transfer'): void {
    if (!this.isPromotable()) return;
    if (kind === 'pre') this.#becomePreCandidate();
    else this.#becomeCandidate();
    const voters = this.#membership.voters();
    if (voteOutcome(voters, this.#votes) === 'won') {
      if (kind === 'pre') this.#startElection('real');
      else this.#becomeLeader();
      return;
    }
    const term = kind === 'pre' ? this.#term + 1 : this.#term;
    this.#logger.debug({ term, kind }, 'campaigning');
    for (const id of voters) {
      if (id === this.id) continue;
      this.#send<RequestVote>({
        type: 'RequestVote',
        to: id,
        term,
        lastLogIndex: this.#log.lastIndex(),
        lastLogTerm: this.#log.lastTerm(),
        preVote: kind === 'pre',
        transfer: kind === 'transfer',
      });
    }
  }

  /** A message from a newer term. Returns false when it must be ignored. */
  #stepHigherTerm(message: Message): boolean {
    if (message.type === 'RequestVote') {
      // Disruption guard (Raft thesis §4.2.3): while we hear from a leader, a candidate cannot
      // make us vote or change term, unless the leader itself handed leadership over.
      const heard = this.#leaderId !== null || this.#restartGuard;
      const inLease = this.#config.checkQuorum && heard && this.#electionElapsed < this.#config.electionTimeoutTicks;
      if (inLease && !message.transfer) return false;
      if (message.preVote) return true; // a pre-vote never changes our term
    }
    if (message.type === 'RequestVoteResponse' && message.preVote && message.granted) return true;
    const fromLeader = message.type === 'AppendEntries' || message.type === 'Heartbeat' || message.type === 'InstallSnapshot';
    this.#becomeFollower(message.term, fromLeader ? message.from : null);
    return true;
  }

  /** A message from an older term: tell stale leaders and pre-candidates our term. */
  #stepLowerTerm(message: Message): void {
    const fromLeader = message.type === 'AppendEntries' || message.type === 'Heartbeat' || message.type === 'InstallSnapshot';
    if (fromLeader) {
      // With check-quorum or pre-vote, a partitioned node's term may stay behind; without this
      // answer an old leader would never learn it lost (etcd-io/raft does the same).
      this.#send<AppendEntriesResponse>({ type: 'AppendEntriesResponse', to: message.from, success: false, matchIndex: 0, rejectedIndex: 0, conflictIndex: 0, conflictTerm: 0 });
    } else if (message.type === 'RequestVote' && message.preVote) {
      this.#send<RequestVoteResponse>({ type: 'RequestVoteResponse', to: message.from, granted: false, preVote: true });
    }
  }

  #stepRequestVote(message: RequestVote): void {
    const canVote =
      this.#vote === message.from ||
      (this.#vote === null && this.#leaderId === null) ||
      (message.preVote && message.term > this.#term);
    if (canVote && this.#log.isUpToDate(message.lastLogIndex, message.lastLogTerm)) {
      this.#send<RequestVoteResponse>({ type: 'RequestVoteResponse', to: message.from, term: message.term, granted: true, preVote: message.preVote });
      if (!message.preVote) {
        this.#vote = message.from;
        this.#electionElapsed = 0;
      }
    } else {
      this.#send<RequestVoteResponse>({ type: 'RequestVoteResponse', to: message.from, granted: false, preVote: message.preVote });
    }
  }

  #stepCandidate(message: Message): void {
    switch (message.type) {
      case 'AppendEntries':
      case 'Heartbeat':
      case 'InstallSnapshot':
        // A leader won this term: follow it.
        this.#becomeFollower(message.term, message.from);
        this.#stepFollower(message);
        return;
      case 'RequestVoteResponse':
        this.#stepVoteResponse(message);
        return;
      default:
        return;
    }
  }

  #stepVoteResponse(message: RequestVoteResponse): void {
    const pre = this.#role === 'pre-candidate';
    if (message.preVote !== pre) return;
    if (!this.#membership.isVoter(message.from)) return;
    this.#votes.set(message.from, message.granted);
    const outcome = voteOutcome(this.#membership.voters(), this.#votes);
    if (outcome === 'won') {
      if (pre) this.#startElection('real');
      else {
        this.#becomeLeader();
        this.#flushAppends();
      }
    } else if (outcome === 'lost') {
      this.#becomeFollower(this.#term, null);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Follower

  #stepFollower(message: Message): void {
    switch (message.type) {
      case 'AppendEntries':
        this.#heardFromLeader(message.from);
        this.#handleAppendEntries(message);
        return;
      case 'Heartbeat':
        this.#heardFromLeader(message.from);
        this.#handleHeartbeat(message);
        return;
      case 'InstallSnapshot':
        this.#heardFromLeader(message.from);
        this.#handleInstallSnapshot(message);
        return;
      case 'TimeoutNow':
        this.#logger.info({ term: this.#term, from: message.from }, 'leadership handed to us');
        this.#startElection('transfer');
        return;
      default:
        return;
    }
  }

  #heardFromLeader(leaderId: ServerId): void {
    this.#electionElapsed = 0;
    this.#restartGuard = false;
    this.#leaderId = leaderId;
    if (this.#leaderLostHint) this.#resetRandomizedElectionTimeout(); // it is alive after all
  }

  #handleAppendEntries(message: AppendEntries): void {
    const reply = { type: 'AppendEntriesResponse' as const, to: message.from };
    if (message.prevLogIndex < this.#log.committed) {
      // Everything up to our commit index matches any leader's log: tell it where we are.
      this.#send<AppendEntriesResponse>({ ...reply, success: true, matchIndex: this.#log.committed, rejectedIndex: 0, conflictIndex: 0, conflictTerm: 0 });
      return;
    }
    const outcome = this.#log.maybeAppend(message.prevLogIndex, message.prevLogTerm, message.entries);
    if (outcome !== null) {
      if (outcome.truncatedFrom !== null) this.#membership.truncateFrom(outcome.truncatedFrom);
      for (const entry of outcome.appended) if (entry.type === 'config') this.#membership.append(entry);
      this.#log.commitTo(Math.min(message.commit, outcome.lastNew));
      this.#send<AppendEntriesResponse>({ ...reply, success: true, matchIndex: outcome.lastNew, rejectedIndex: 0, conflictIndex: 0, conflictTerm: 0 });
      return;
    }
    // Fast backtracking hints (Raft thesis §5.3.4 / the "accelerated log backtracking").
    let conflictIndex: number;
    let conflictTerm: number;
    if (message.prevLogIndex > this.#log.lastIndex()) {
      conflictIndex = this.#log.lastIndex() + 1;
      conflictTerm = 0;
    } else {
      conflictTerm = this.#log.term(message.prevLogIndex) ?? 0;
      conflictIndex = this.#log.firstIndexOfTerm(message.prevLogIndex, conflictTerm);
    }
    this.#send<AppendEntriesResponse>({ ...reply, success: false, matchIndex: 0, rejectedIndex: message.prevLogIndex, conflictIndex, conflictTerm });
  }

  #handleHeartbeat(message: Heartbeat): void {
    this.#log.commitTo(Math.min(message.commit, this.#log.lastIndex()));
    this.#send<HeartbeatResponse>({ type: 'HeartbeatResponse', to: message.from, readContext: message.readContext, guardMs: this.#config.electionTimeoutTicks * this.#config.tickMs });
  }

  #handleInstallSnapshot(message: InstallSnapshot): void {
    const meta = message.meta;
    const reply = { type: 'InstallSnapshotResponse' as const, to: message.from, snapshotIndex: meta.index };
    if (meta.index <= this.#log.committed) {
      // We already have everything it covers.
      this.#incomingSnapshot = null;
      this.#send<InstallSnapshotResponse>({ ...reply, success: true, nextOffset: message.totalBytes, done: true });
      return;
    }
    let incoming = this.#incomingSnapshot;
    const same = incoming !== null && incoming.meta.index === meta.index && incoming.meta.term === meta.term;
    if (message.offset === 0 && (!same || incoming?.bytes !== 0)) {
      incoming = { meta, chunks: [], bytes: 0 };
      this.#incomingSnapshot = incoming;
    } else if (!same || incoming === null || incoming.bytes !== message.offset) {
      // Out of order or a different snapshot: say where we are so the leader resumes there.
      this.#send<InstallSnapshotResponse>({ ...reply, success: false, nextOffset: same && incoming !== null ? incoming.bytes : 0, done: false });
      return;
    }
    if (message.totalBytes > SNAPSHOT_BYTES_MAX || incoming.bytes + message.chunk.byteLength > message.totalBytes) {
      this.#logger.warn({ totalBytes: message.totalBytes }, 'refusing oversized or inconsistent snapshot');
      this.#incomingSnapshot = null;
      this.#send<InstallSnapshotResponse>({ ...reply, success: false, nextOffset: 0, done: false });
      return;
    }
    incoming.chunks.push(message.chunk);
    incoming.bytes += message.chunk.byteLength;
    if (!message.done) {
      this.#send<InstallSnapshotResponse>({ ...reply, success: true, nextOffset: incoming.bytes, done: false });
      return;
    }
    this.#incomingSnapshot = null;
    this.#restoreSnapshot({ meta, data: concatChunks(incoming.chunks, incoming.bytes) });
    this.#send<InstallSnapshotResponse>({ ...reply, success: true, nextOffset: incoming.bytes, done: true });
  }

  #restoreSnapshot(snapshot: Snapshot): void {
    const meta = snapshot.meta;
    if (this.#log.matchTerm(meta.index, meta.term)) {
      // Our log already holds the snapshot's last entry: just move the commit index.
      this.#log.commitTo(meta.index);
      return;
    }
    this.#logger.info({ index: meta.index, term: meta.term }, 'installing snapshot from leader');
    this.#log.restore(meta.index, meta.term);
    this.#log.applied = meta.index;
    this.#membership.restore(meta.index, meta.configuration);
    this.#pendingSnapshot = snapshot;
  }

  // ---------------------------------------------------------------------------------------
  // Leader

  #stepLeader(message: Message): void {
    const pr = this.#progress.get(message.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    switch (message.type) {
      case 'AppendEntriesResponse':
        this.#handleAppendResponse(message, pr);
        return;
      case 'HeartbeatResponse':
        this.#handleHeartbeatResponse(message, pr);
        return;
      case 'InstallSnapshotResponse':
        this.#handleSnapshotResponse(message, pr);
        return;
      default:
        return;
    }
  }

  #handleAppendResponse(message: AppendEntriesResponse, pr: Progress): void {
    const from = message.from;
    if (!message.success) {
      let hintNext = message.conflictIndex;
      if (message.conflictTerm > 0) {
        const index = this.#log.lastIndexWithTermAtMost(message.rejectedIndex, message.conflictTerm);
        if (this.#log.term(index) === message.conflictTerm) hintNext = index + 1;
      }
      const wasReplicate = pr.state === 'replicate';
      if (pr.maybeDecrease(message.rejectedIndex, Math.max(1, hintNext))) {
        if (wasReplicate) {
          const next = pr.next;
          pr.becomeProbe();
          pr.next = next;
        }
        this.#sendAppend(from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    const updated = pr.maybeUpdate(message.matchIndex);
    if (!updated && !(pr.state === 'probe' && pr.match === message.matchIndex)) return;
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.match >= pr.snapshotIndex) {
      pr.becomeProbe();
      pr.becomeReplicate();
    }
    if (this.#maybeCommit()) this.#broadcastCommit();
    else if (wasPaused) this.#sendAppend(from, false);
    // Pipelining: keep the window full while entries remain.
    while (this.#sendAppend(from, false));
    this.#sendCommitIfIdle(from, pr);
    if (from === this.#leadTransferee && pr.match === this.#log.lastIndex()) this.#sendTimeoutNow(from);
  }

  #handleHeartbeatResponse(message: HeartbeatResponse, pr: Progress): void {
    pr.onHeartbeatResponse();
    pr.guardMs = message.guardMs;
    if (message.readContext > pr.ackedRound) {
      pr.ackedRound = message.readContext;
      this.#advanceReads();
    }
    if (pr.state === 'snapshot') this.#sendSnapshotChunk(message.from, pr);
    else if (pr.match < this.#log.lastIndex()) this.#sendAppend(message.from, true);
  }

  #handleSnapshotResponse(message: InstallSnapshotResponse, pr: Progress): void {
    if (pr.state !== 'snapshot' || message.snapshotIndex !== pr.snapshotIndex) return;
    if (message.success && message.done) {
      pr.maybeUpdate(message.snapshotIndex);
      pr.becomeProbe();
      this.#sendAppend(message.from, true);
      return;
    }
    pr.snapshotOffset = message.nextOffset;
    this.#sendSnapshotChunk(message.from, pr);
  }

  #appendProposal(type: 'normal' | 'config', data: Uint8Array): ProposeResult {
    if (this.#role !== 'leader') return { ok: false, reason: 'not-leader', leaderId: this.#leaderId };
    if (this.#leadTransferee !== null) return { ok: false, reason: 'transferring', leaderId: this.#leadTransferee };
    if (data.byteLength > this.#config.proposalBytesMax) return { ok: false, reason: 'too-large' };
    if (this.#log.uncommittedBytes() + data.byteLength > this.#config.uncommittedBytesMax) return { ok: false, reason: 'overloaded' };
    const entry: Entry = { index: this.#log.lastIndex() + 1, term: this.#term, type, data };
    this.#log.append([entry]);
    if (type === 'config') this.#applyConfigEntry(entry);
    this.#appendPending = true;
    return { ok: true, index: entry.index, term: entry.term };
  }

  /** A config entry takes effect as soon as it is in the log (Raft thesis §4.1). */
  #applyConfigEntry(entry: Entry): void {
    this.#membership.append(entry);
    if (this.#role !== 'leader') return;
    for (const server of this.#membership.current.servers) this.#addProgress(server.id);
    for (const id of [...this.#progress.keys()]) {
      if (id !== this.id && !this.#membership.has(id)) this.#progress.delete(id);
    }
  }

  #flushAppends(): void {
    if (!this.#appendPending) return;
    this.#appendPending = false;
    if (this.#role === 'leader') {
      // A single voter commits as soon as its own write is durable (advance()).
      this.#broadcastAppend();
    }
  }

  /**
   * The commit index moved: followers must learn it (they apply, and answer follower reads, up to
   * it). New entries carry it; a follower with an append in flight learns it with the next one,
   * sent when that append is acknowledged (#sendCommitIfIdle). Only an idle follower gets an
   * empty AppendEntries now. Sending one to every follower on every commit doubled the leader's
   * messages (and socket writes, ~20% of its CPU under PUT load) for no new information.
   */
  #broadcastCommit(): void {
    for (const [id, pr] of this.#progress) {
      if (id === this.id) continue;
      if (pr.state !== 'replicate') {
        this.#sendAppend(id, true);
        continue;
      }
      while (this.#sendAppend(id, false));
      this.#sendCommitIfIdle(id, pr);
    }
  }

  /** An empty AppendEntries for a follower with nothing in flight that lacks the commit index. */
  #sendCommitIfIdle(id: ServerId, pr: Progress): void {
    if (pr.state === 'replicate' && pr.inflights.length === 0 && pr.sentCommit < this.#log.committed) this.#sendAppend(id, true);
  }

  #broadcastAppend(): void {
    for (const id of this.#progress.keys()) {
      if (id === this.id) continue;
      // Pipelining: in steady state keep sending until the window is full or nothing is left.
      if (this.#sendAppend(id, true)) while (this.#sendAppend(id, false));
    }
  }

  /** Sends what `to` lacks; returns true if entries went out (the caller may pipeline more). */
  #sendAppend(to: ServerId, sendIfEmpty: boolean): boolean {
    const pr = this.#progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevLogIndex = pr.next - 1;
    const prevLogTerm = this.#log.term(prevLogIndex);
    // term(0) is 0 even after a compaction (the empty prefix matches any log), but entries from
    // index 1 on may be gone: a follower probed down to next = 1 (an empty or wiped server)
    // needs the snapshot too. Sending from 1 asserted in slice() and stopped the leader.
    if (prevLogTerm === undefined || prevLogIndex < this.#log.offsetIndex()) {
      this.#startSnapshot(to, pr);
      return false;
    }
    const entries = pr.next <= this.#log.lastIndex()
      ? this.#log.slice(pr.next, this.#log.lastIndex(), this.#config.appendEntriesCountMax, this.#config.appendEntriesBytesMax)
      : [];
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.#send<AppendEntries>({ type: 'AppendEntries', to, prevLogIndex, prevLogTerm, entries, commit: this.#log.committed });
    pr.sentCommit = this.#log.committed;
    pr.sentEntries(prevLogIndex + entries.length, entries.length);
    return entries.length > 0;
  }

  #startSnapshot(to: ServerId, pr: Progress): void {
    const snapshot = this.#snapshot;
    assert(snapshot !== null, 'entries were compacted, so a snapshot exists');
    this.#logger.info({ to, index: snapshot.meta.index }, 'sending snapshot');
    pr.becomeSnapshot(snapshot.meta.index);
    this.#sendSnapshotChunk(to, pr);
  }

  #sendSnapshotChunk(to: ServerId, pr: Progress): void {
    const snapshot = this.#snapshot;
    assert(snapshot !== null, 'a snapshot transfer needs a snapshot');
    if (pr.snapshotIndex !== snapshot.meta.index) {
      // A newer snapshot replaced the one being sent: start over with it.
      pr.becomeSnapshot(snapshot.meta.index);
    }
    const total = snapshot.data.byteLength;
    const offset = Math.min(pr.snapshotOffset, total);
    const chunk = snapshot.data.subarray(offset, Math.min(total, offset + this.#config.snapshotChunkBytes));
    this.#send<InstallSnapshot>({ type: 'InstallSnapshot', to, meta: snapshot.meta, offset, totalBytes: total, chunk, done: offset + chunk.byteLength >= total });
  }

  #sendTimeoutNow(to: ServerId): void {
    this.#leaseRevoked = true;
    this.#send({ type: 'TimeoutNow', to });
  }

  #broadcastHeartbeat(): number {
    const round = ++this.#round;
    const slot = round % ROUND_RING_SIZE;
    this.#roundIds[slot] = round;
    this.#roundTicks[slot] = this.#ticks;
    this.#roundInOutbox = round;
    const self = this.#progress.get(this.id);
    if (self !== undefined) self.ackedRound = round;
    for (const [id, pr] of this.#progress) {
      if (id === this.id) continue;
      this.#send<Heartbeat>({ type: 'Heartbeat', to: id, commit: Math.min(pr.match, this.#log.committed), readContext: round });
    }
    this.#advanceReads();
    return round;
  }

  #roundSentTick(round: number): number {
    const slot = round % ROUND_RING_SIZE;
    return this.#roundIds[slot] === round ? (this.#roundTicks[slot] as number) : -1;
  }

  #maybeCommit(): boolean {
    const index = committedIndex(this.#membership.voters(), (id) => this.#progress.get(id)?.match ?? 0);
    // Raft §5.4.2: never commit an earlier term's entry by counting replicas; commit one of our
    // own term and the rest follow (the Figure 8 case). logcabin#44 shipped this bug.
    if (index <= this.#log.committed || this.#log.term(index) !== this.#term) return false;
    const hadCommittedInTerm = this.#hasCommittedInTerm();
    this.#log.commitTo(index);
    if (!hadCommittedInTerm) this.#releaseReadsAwaitingCommit();
    if (!this.#membership.isVoter(this.id) && this.#log.committed >= this.#membership.latestIndex) {
      // A leader removed from the configuration leads until the removal commits, then leaves.
      this.#broadcastAppend();
      this.#logger.info({ term: this.#term }, 'removed from the configuration: stepping down');
      this.#becomeFollower(this.#term, null);
      return false;
    }
    return true;
  }

  #hasCommittedInTerm(): boolean {
    return this.#log.term(this.#log.committed) === this.#term;
  }

  // ---------------------------------------------------------------------------------------
  // Reads

  #serveRead(requestId: number, lease: boolean): void {
    const voters = this.#membership.voters();
    const alone = voters.length === 1 && voters[0] === this.id;
    if (alone || (lease && this.isLeaseValid())) {
      this.#readStates.push({ requestId, index: this.#log.committed });
      return;
    }
    // ReadIndex (Raft thesis §6.4): record the commit index, then confirm leadership with a
    // heartbeat round sent after this request arrived. A round still in the outbox qualifies.
    const round = this.#roundInOutbox !== 0 ? this.#roundInOutbox : this.#broadcastHeartbeat();
    this.#pendingReads.push({ requestId, index: this.#log.committed, round });
  }

  #releaseReadsAwaitingCommit(): void {
    const waiting = this.#readsAwaitingCommit;
    this.#readsAwaitingCommit = [];
    for (const read of waiting) this.#serveRead(read.requestId, read.lease);
  }

  #advanceReads(): void {
    if (this.#pendingReads.length === 0) return;
    const acked = committedIndex(this.#membership.voters(), (id) => this.#progress.get(id)?.ackedRound ?? 0);
    let released = 0;
    while (released < this.#pendingReads.length && (this.#pendingReads[released] as PendingRead).round <= acked) {
      const read = this.#pendingReads[released] as PendingRead;
      this.#readStates.push({ requestId: read.requestId, index: read.index });
      released++;
    }
    if (released > 0) this.#pendingReads.splice(0, released);
  }

  #failPendingReads(): void {
    for (const read of this.#pendingReads) this.#readFailures.push({ requestId: read.requestId, reason: 'not-leader', leaderId: this.#leaderId });
    for (const read of this.#readsAwaitingCommit) this.#readFailures.push({ requestId: read.requestId, reason: 'not-leader', leaderId: this.#leaderId });
    this.#pendingReads = [];
    this.#readsAwaitingCommit = [];
  }

  // ---------------------------------------------------------------------------------------
  // Output

  #send<M extends Message>(message: Envelope<M>): void {
    this.#outbox.push({ ...message, from: this.id, term: message.term ?? this.#term } as unknown as Message);
  }

  #hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commit: this.#log.committed };
  }

  #softState(): SoftState {
    return { role: this.#role, leaderId: this.#leaderId, term: this.#term };
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leaderId === b.leaderId && a.term === b.term;
}

function concatChunks(chunks: readonly Uint8Array[], bytes: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const data = new Uint8Array(bytes);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return data;
}
