import { createHash, randomUUID } from 'node:crypto';
import { Packr } from 'msgpackr';
import { assert } from '../lib/assert.js';
import type { AgentError } from '../lib/errors.js';
import { BadRequestError, InternalError, NoLeaderError, OverloadedError, TooLargeError, UnknownOutcomeError, withOutcome } from '../lib/errors.js';
import { testBug } from '../lib/failpoints.js';
import type { Logger } from '../lib/logger.js';
import { Prng } from '../lib/prng.js';
import { runBetweenTurns } from '../lib/steps.js';
import { makeRaftConfig } from '../raft/core/config.js';
import type { Configuration, Entry, InitialState, Role, ServerId } from '../raft/core/types.js';
import { RaftNode, RaftRequestError } from '../raft/node.js';
import { LevelStorage } from '../raft/storage/level-storage.js';
import { MemoryStorage } from '../raft/storage/memory-storage.js';
import type { RaftStorage } from '../raft/storage/raft-storage.js';
import { fromRpcError } from '../rpc/errors.js';
import type { Command } from '../state/commands.js';
import { decodeUntrustedCommand, encodeCommand } from '../state/commands.js';
import type { ApplyResult } from '../state/fsm.js';
import { StateMachine } from '../state/fsm.js';
import { LOCK_DELAY_SWEEP_THRESHOLD, RESTORE_CHUNK_BYTES_MAX, SNAPSHOT_ROWS_PER_STEP } from '../state/limits.js';
import { goQuote } from '../state/go-quote.js';
import { packSnapshotArchive, unpackSnapshotArchive } from './snapshot-archive.js';
import type { Session } from '../state/sessions.js';
import { RpcError } from '../transport/rpc.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import type { AgentApi, AgentInfo, MemberInfo, QueryMeta, QueryOptions, RaftConfigurationInfo, WriteResult } from './agent-api.js';
import type { AgentConfig } from './config.js';
import { ClusterFormation } from './cluster-formation.js';
import { FsmTarget } from './fsm-target.js';
import { agentInfo, ensureDataDir, loadClusterId, loadNodeId, saveClusterId } from './identity.js';
import { LeaderDuties } from './leader-duties.js';
import type { Query, QueryValue } from './queries.js';
import { runBlockingQuery } from './queries.js';
import { RPC_METHODS, parseApplyRequest, parseQueryRequest, parseRenewRequest, parseReportRequest } from '../rpc/methods.js';
import type { StatusReport } from '../rpc/methods.js';
// Services issue: this agent's own services and checks, and their anti-entropy sync.
import { LocalState } from './local-state.js';
import { ServiceSyncer, consulServiceOf, parseReportReply } from './service-sync.js';
import type { ReportReply } from './service-sync.js';

/**
 * Server mode: Raft + FSM + the server port. Answers AgentApi calls itself when it leads (or for
 * stale reads) and forwards them to the leader otherwise; serves the same calls over RPC for
 * followers and client agents; runs leader duties (session TTLs, node liveness) while it leads.
 */

/** How query results travel between servers: msgpack with uint64 as BigInt (Flags are uint64). */
export const resultPackr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true, moreTypes: false, structuredClone: false, bundleStrings: false });

/** Retry delay of the first status report, which fails while no leader is elected yet. */
export const FIRST_REPORT_RETRY_MS = 200;

/** How long a graceful leave keeps asking the leader to remove this server. */
const LEAVE_TIMEOUT_MS = 15_000;

/** Restore chunks proposed before waiting for them to commit (bounds the uncommitted log). */
const RESTORE_WINDOW_CHUNKS = 32;

/** Pause between attempts to reach a leader that could not be reached. */
const HOLD_RETRY_MS = 100;

/** After a fatal storage error: time for the 500s of the failed requests to leave. */
const FATAL_EXIT_DELAY_MS = 200;

/** A request is forwarded at most this many times (client → server → leader). */
const FORWARD_HOPS_MAX = 2;

/** Extra time a forwarded call gets beyond the work it asks for (network, queueing). */
const FORWARD_MARGIN_MS = 5000;
/** A write waits this long for its commit before its outcome is reported unknown. */
const WRITE_TIMEOUT_MS = 30_000;

/** Reads waiting for the leader's read index (see #leaderReadIndex). */
interface ReadIndexQueue {
  inFlight: boolean;
  scheduled: boolean;
  waiting: { resolve: (index: number) => void; reject: (error: unknown) => void }[];
}

export class ServerAgent implements AgentApi {
  readonly info: AgentInfo;
  readonly fsm = new StateMachine();
  /** Services issue: the services and checks registered with this agent. */
  readonly local: LocalState;
  readonly #sync: ServiceSyncer;
  readonly #config: AgentConfig;
  readonly #log: Logger;
  readonly #transport: TcpTransport;
  readonly #storage: RaftStorage;
  #node!: RaftNode;
  #formation!: ClusterFormation;
  #duties!: LeaderDuties;
  #clusterId: string | null;
  readonly #leaderWaiters = new Set<() => void>();
  readonly #readIndexQueues = new Map<string, ReadIndexQueue>();
  /** Addresses peers reported themselves that differ from the Raft configuration's. */
  readonly #learnedAddresses = new Map<ServerId, string>();
  #reportTimer: NodeJS.Timeout | null = null;
  #livenessTimer: NodeJS.Timeout | null = null;
  #reported = false;
  #closed = false;
  /**
   * Lock-delays on this server's monotonic clock (performance.now() deadlines), noted as each
   * invalidation is applied here. The leader checks them before proposing an acquire, as
   * Consul's does (state/delay.go): a step of the wall clock, or a new leader whose wall clock
   * differs from the old one's, cannot cut a lock-delay short.
   */
  readonly #lockDelays = new Map<string, number>();
  /**
   * Services issue: set once leave() starts. A periodic report landing after the leaving one
   * would register the node (and, since anti-entropy, its services) again after it left.
   */
  #leaving = false;

  private constructor(config: AgentConfig, nodeId: string, logger: Logger, storage: RaftStorage) {
    this.#config = config;
    this.#log = logger;
    this.#storage = storage;
    this.#clusterId = loadClusterId(config.dataDir);
    this.fsm.onLockDelay((key, delayMs) => this.#noteLockDelay(key, delayMs));
    this.info = agentInfo(config, nodeId, true);
    // Services issue: the `consul` service of every server (on its actual server port, which
    // may have been 0 in the config) travels in its own report.
    this.local = new LocalState({ nodeName: config.nodeName, dataDir: config.dataDir, enableScriptChecks: config.enableScriptChecks, logger });
    this.#sync = new ServiceSyncer(this.local, () => [consulServiceOf(Number(this.advertisedRpcAddress.split(':').pop()), this.info.version)]);
    this.local.onChange(() => void this.#reportStatus());
    this.#transport = new TcpTransport({
      role: 'server',
      serverId: nodeId,
      datacenter: config.datacenter,
      clusterId: this.#clusterId,
      logger: logger.child?.({ component: 'transport' }) ?? logger,
    });
  }

  /** Opens storage, restores state, listens on the server port and starts Raft. */
  static async start(config: AgentConfig, logger: Logger): Promise<ServerAgent> {
    if (config.dataDir !== null) ensureDataDir(config.dataDir);
    const nodeId = loadNodeId(config.dataDir, config.nodeId);
    const storage = config.dataDir === null ? new MemoryStorage() : new LevelStorage({ dataDir: config.dataDir, logger });
    let initial: InitialState;
    try {
      initial = await storage.load();
    } catch (error) {
      await storage.close().catch(() => undefined);
      throw error;
    }
    const agent = new ServerAgent(config, nodeId, logger, storage);
    await agent.#open(initial);
    return agent;
  }

  async #open(initial: InitialState): Promise<void> {
    const config = this.#config;
    if (initial.snapshot !== null) this.fsm.restore(initial.snapshot.data);
    this.#registerRpc();
    await this.#transport.listen(config.bindAddr, config.serverPort);
    const electionTimeoutTicks = Math.max(2, Math.round(config.raftElectionTimeoutMs / config.raftTickMs));
    this.#node = new RaftNode(
      {
        raft: makeRaftConfig({ id: this.info.nodeId, electionTimeoutTicks, heartbeatIntervalTicks: 1, tickMs: config.raftTickMs }),
        storage: this.#storage,
        transport: this.#transport,
        target: new FsmTarget(this.fsm, (entry, result) => this.#onApplied(entry, result)),
        prng: new Prng(BigInt(`0x${this.info.nodeId.replaceAll('-', '').slice(0, 12)}`) ^ BigInt(Date.now())),
        logger: this.#log.child?.({ component: 'raft' }) ?? this.#log,
        tickMs: config.raftTickMs,
        snapshotIntervalEntries: config.raftSnapshotThreshold,
        snapshotTrailingEntries: config.raftTrailingLogs,
        proposalTimeoutMs: WRITE_TIMEOUT_MS,
        onFatal: (error) => this.#fatal(error),
      },
      initial,
    );
    this.#duties = new LeaderDuties(this, this.#log);
    this.#node.onRoleChange((role, term, leaderId) => this.#onRoleChange(role, term, leaderId));
    this.#syncPeers(this.#node.configuration);
    this.#formation = new ClusterFormation(this, this.#transport, this.#log);
    this.#node.start();
    await this.#formation.start();
    this.#reportTimer = setInterval(() => void this.#reportStatus(), config.reportIntervalMs);
    this.#livenessTimer = setInterval(() => this.#redialSilentPeers(), config.raftElectionTimeoutMs);
    void this.#reportStatus();
  }

  get config(): AgentConfig {
    return this.#config;
  }
  get node(): RaftNode {
    return this.#node;
  }
  get clusterId(): string | null {
    return this.#clusterId;
  }
  get advertisedRpcAddress(): string {
    return `${this.#config.advertiseAddr}:${this.#transport.address?.split(':').pop() ?? this.#config.serverPort}`;
  }

  /** Records the cluster id learned at bootstrap or join; peers of other clusters are then refused. */
  adoptClusterId(clusterId: string): void {
    if (this.#clusterId === clusterId) return;
    assert(this.#clusterId === null, 'a server belongs to one cluster for life');
    this.#clusterId = clusterId;
    saveClusterId(this.#config.dataDir, clusterId);
    this.#transport.setClusterId(clusterId);
  }

  /** The cluster id founders derive from their bootstrap configuration (all compute the same). */
  static clusterIdFor(configuration: Configuration): string {
    const ids = configuration.servers.map((server) => server.id).sort().join(',');
    return createHash('sha256').update(ids).digest('hex').slice(0, 32);
  }

  // ---------------------------------------------------------------------------------------
  // AgentApi

  async write(command: Command, signal?: AbortSignal): Promise<WriteResult> {
    return this.#write(command, 0, signal);
  }

  /**
   * `hop` counts the forwards so far: an agent's own HTTP call is 0, a call from a client agent
   * arrives with 1. A server that is not the leader forwards once more at most, so a stale view
   * of who leads can never bounce a request around the cluster.
   */
  async #write(command: Command, hop: number, signal?: AbortSignal): Promise<WriteResult> {
    const deadline = Date.now() + this.#config.rpcHoldTimeoutMs;
    for (;;) {
      const leaderId = await this.#awaitLeader(deadline, signal);
      if (leaderId === this.info.nodeId) {
        try {
          return await this.#applyLocal(command);
        } catch (error) {
          // Not leading, or deposed before it committed and certainly not applied (superseded):
          // hold and retry with the leader there is now, as for a write that never left.
          if (error instanceof RaftRequestError && (error.reason === 'not-leader' || error.reason === 'superseded') && Date.now() < deadline) continue;
          throw this.#raftError(error);
        }
      }
      const address = this.#addressOf(leaderId);
      if (address === null || hop >= FORWARD_HOPS_MAX) throw withOutcome(new NoLeaderError(), 'not-applied');
      try {
        const reply = await this.#transport.call(address, RPC_METHODS.apply, { command: encodeCommand(command), hop: hop + 1 }, { timeoutMs: WRITE_TIMEOUT_MS + FORWARD_MARGIN_MS });
        return unpackResult(reply) as WriteResult;
      } catch (error) {
        // The leader we knew is unreachable and the request never left: hold and retry, as
        // Consul does for rpc_hold_timeout, while the cluster elects a new one.
        if (neverSent(error) && Date.now() < deadline) {
          await delay(HOLD_RETRY_MS);
          continue;
        }
        throw fromRpcError(error);
      }
    }
  }

  async query<Q extends Query>(query: Q, options: QueryOptions): Promise<{ value: QueryValue<Q>; meta: QueryMeta }> {
    return this.#query(query, options, 0);
  }

  async #query<Q extends Query>(query: Q, options: QueryOptions, hop: number): Promise<{ value: QueryValue<Q>; meta: QueryMeta }> {
    if (options.consistency === 'stale' && (options.maxStaleMs === null || this.#node.lastContactMs <= options.maxStaleMs || this.#node.role === 'leader')) {
      if (this.#node.leaderId === null && this.#node.lastContactMs === Number.POSITIVE_INFINITY && this.#node.role !== 'leader') {
        throw new NoLeaderError();
      }
      return this.#runQuery(query, options, async () => undefined);
    }
    const deadline = Date.now() + this.#config.rpcHoldTimeoutMs;
    for (;;) {
      const leaderId = await this.#awaitLeader(deadline, options.signal);
      if (leaderId === this.info.nodeId) {
        try {
          return await this.#runQuery(query, options, () => this.#node.read(options.consistency !== 'consistent'));
        } catch (error) {
          if (error instanceof RaftRequestError && error.reason === 'not-leader' && Date.now() < deadline) continue;
          throw this.#raftError(error);
        }
      }
      // Follower read (Raft thesis §6.4.1): the leader confirms a read index (under its lease,
      // or with a quorum round for ?consistent), we wait until our state machine applied it and
      // answer here — as linearizable as the leader answering, while the leader spends one
      // batched RPC per round of reads instead of running and shipping every query.
      const lease = options.consistency !== 'consistent';
      try {
        return await this.#runQuery(query, options, async () => {
          await this.#node.waitApplied(await this.#leaderReadIndex(leaderId, lease));
        }, true);
      } catch (error) {
        if ((error instanceof RpcError || error instanceof RaftRequestError) && Date.now() < deadline && !this.#closed) {
          await delay(HOLD_RETRY_MS);
          continue;
        }
        throw error instanceof RpcError ? fromRpcError(error) : this.#raftError(error);
      }
    }
  }

  /**
   * Asks the leader for a read index. Concurrent reads share one call: a read joins the next
   * call to leave, never one already sent (its index must be confirmed after the read began).
   */
  #leaderReadIndex(leaderId: ServerId, lease: boolean): Promise<number> {
    const key = `${leaderId}/${lease ? 'lease' : 'quorum'}`;
    let queue = this.#readIndexQueues.get(key);
    if (queue === undefined) {
      queue = { inFlight: false, scheduled: false, waiting: [] };
      this.#readIndexQueues.set(key, queue);
    }
    const current = queue;
    return new Promise((resolve, reject) => {
      current.waiting.push({ resolve, reject });
      this.#scheduleReadIndex(current, leaderId, lease);
    });
  }

  /**
   * Sends the queue's call at the end of this event-loop pass, not at once: the reads that arrive
   * in the same pass (HTTP requests parsed after this one, or while the previous call was out)
   * share it. Each call costs the leader a handler and a reply frame written alone, and the reads
   * of one follower used to go out a few at a time; batched per pass, follower reads took 7 % less
   * server CPU and GET default / ?consistent gained 4.5 % / 4.9 % in bench:ab.
   */
  #scheduleReadIndex(queue: ReadIndexQueue, leaderId: ServerId, lease: boolean): void {
    if (queue.inFlight || queue.scheduled) return;
    queue.scheduled = true;
    setImmediate(() => {
      queue.scheduled = false;
      if (!queue.inFlight && queue.waiting.length > 0) void this.#sendReadIndex(queue, leaderId, lease);
    });
  }

  async #sendReadIndex(queue: ReadIndexQueue, leaderId: ServerId, lease: boolean): Promise<void> {
    const batch = queue.waiting;
    queue.waiting = [];
    queue.inFlight = true;
    try {
      const address = this.#addressOf(leaderId);
      if (address === null) throw new NoLeaderError();
      const reply = await this.#transport.call(address, RPC_METHODS.readIndex, { lease }, { timeoutMs: FORWARD_MARGIN_MS });
      if (typeof reply !== 'number' || !Number.isSafeInteger(reply) || reply < 0) throw new InternalError('malformed read index from the leader');
      for (const waiter of batch) waiter.resolve(reply);
    } catch (error) {
      for (const waiter of batch) waiter.reject(error);
    } finally {
      queue.inFlight = false;
      if (queue.waiting.length > 0) this.#scheduleReadIndex(queue, leaderId, lease);
    }
  }

  async renewSession(id: string, signal?: AbortSignal): Promise<Session | null> {
    return this.#renew(id, 0, signal);
  }

  async #renew(id: string, hop: number, signal?: AbortSignal): Promise<Session | null> {
    const deadline = Date.now() + this.#config.rpcHoldTimeoutMs;
    const leaderId = await this.#awaitLeader(deadline, signal);
    if (leaderId === this.info.nodeId) return this.#renewLocal(id);
    const address = this.#addressOf(leaderId);
    if (address === null || hop >= FORWARD_HOPS_MAX) throw new NoLeaderError();
    try {
      return unpackResult(await this.#transport.call(address, RPC_METHODS.renew, { id, hop: hop + 1 }, { timeoutMs: FORWARD_MARGIN_MS * 2 })) as Session | null;
    } catch (error) {
      throw fromRpcError(error);
    }
  }

  async leaderAddress(): Promise<string> {
    const leaderId = this.#node.leaderId;
    return leaderId === null ? '' : (this.#addressOf(leaderId) ?? '');
  }

  async peerAddresses(): Promise<string[]> {
    return this.#node.configuration.servers.filter((server) => server.voter).map((server) => server.address);
  }

  async members(): Promise<MemberInfo[]> {
    const servers = new Map(this.#node.configuration.servers.map((server) => [server.id, server]));
    return this.fsm.listNodes().map((node) => {
      const server = servers.get(node.ID);
      const health = this.fsm.getCheck(node.Node, 'serfHealth')?.Status;
      return {
        name: node.Node,
        address: node.Address,
        server: server !== undefined,
        status: health === 'critical' ? 4 : 1,
        nodeId: node.ID,
        datacenter: node.Datacenter,
        serverPort: server === undefined ? null : Number(server.address.split(':').pop()),
        meta: node.Meta,
      };
    });
  }

  async join(address: string): Promise<void> {
    if (!this.#node.isPristine) {
      // Already in a cluster: joining the same one again is a no-op, as with Consul.
      return;
    }
    await this.#formation.joinVia(address);
  }

  async leave(): Promise<void> {
    this.#leaving = true;
    this.#log.info({}, 'leaving the cluster');
    await this.report({ ...this.#selfReport(), leaving: true }).catch((error: unknown) => this.#log.warn({ err: error }, 'could not report leaving'));
    // A leader first hands leadership over (the removal answers "retry"), then the new leader
    // removes us: keep asking until the configuration no longer holds this server.
    const deadline = Date.now() + LEAVE_TIMEOUT_MS;
    while (this.#node.configuration.servers.length > 1 && this.#node.configuration.servers.some((s) => s.id === this.info.nodeId)) {
      try {
        // Success means the leader committed the removal (we may never receive that entry).
        await this.#callLeader(RPC_METHODS.leaveCluster, { id: this.info.nodeId, hop: 1 });
        break;
      } catch (error) {
        if (Date.now() >= deadline) {
          this.#log.warn({ err: error }, 'could not remove this server from the Raft configuration');
          break;
        }
      }
      if (Date.now() >= deadline) break;
      await delay(HOLD_RETRY_MS);
    }
  }

  async forceLeave(node: string, prune: boolean): Promise<void> {
    const catalogNode = this.fsm.getNode(node);
    if (catalogNode === undefined) return;
    await this.write({ type: 'node-deregister', nowMs: 0, node });
    const server = this.#node.configuration.servers.find((s) => s.id === catalogNode.ID);
    if (server !== undefined && prune) await this.#callLeader(RPC_METHODS.leaveCluster, { id: server.id, hop: 1 });
  }

  async raftConfiguration(): Promise<RaftConfigurationInfo> {
    const names = new Map(this.fsm.listNodes().map((node) => [node.ID, node.Node]));
    const leaderId = this.#node.leaderId;
    const matches = new Map(this.#node.progress().map((p) => [p.id, p.match]));
    return {
      servers: this.#node.configuration.servers.map((server) => ({
        id: server.id,
        node: names.get(server.id) ?? server.id,
        address: server.address,
        leader: server.id === leaderId,
        voter: server.voter,
        lastIndex: server.id === this.info.nodeId ? this.#node.lastIndex : (matches.get(server.id) ?? 0),
      })),
      index: this.#node.commitIndex,
    };
  }

  raftStatus(): Record<string, unknown> {
    return this.#node.status();
  }

  stateDigest(): { index: number; hash: string } {
    return { index: this.fsm.lastAppliedIndex, hash: createHash('sha256').update(this.fsm.snapshot()).digest('hex') };
  }

  async transferLeader(id: string | null): Promise<void> {
    await this.#callLeader(RPC_METHODS.transferLeader, { id: id ?? '', hop: 1 });
  }

  /**
   * Leader: hands leadership over (Raft thesis §3.10) and waits until it happened, so the caller
   * learns of a failure (a target that does not answer) instead of a silent no-op.
   */
  async #transferLeadership(id: string | null): Promise<boolean> {
    this.#requireLeader();
    const voters = this.#node.configuration.servers.filter((server) => server.voter && server.id !== this.info.nodeId);
    if (id !== null && !voters.some((server) => server.id === id)) throw withOutcome(new BadRequestError(`cannot find a voting server with id ${JSON.stringify(id)}`), 'not-applied');
    const progress = new Map(this.#node.progress().map((p) => [p.id, p.match]));
    const target = id ?? [...voters].sort((a, b) => (progress.get(b.id) ?? 0) - (progress.get(a.id) ?? 0))[0]?.id;
    if (target === undefined) throw withOutcome(new BadRequestError('no other voting server to transfer leadership to'), 'not-applied');
    if (!this.#node.transferLeadership(target)) throw withOutcome(new InternalError('leadership transfer refused'), 'not-applied');
    const deadline = Date.now() + 4 * this.#config.raftElectionTimeoutMs;
    while (this.#node.role === 'leader' && Date.now() < deadline) await delay(20);
    if (this.#node.role === 'leader') throw new InternalError('leadership transfer timed out: this server still leads');
    this.#log.info({ target }, 'leadership transferred');
    return true;
  }

  async snapshotSave(stale: boolean): Promise<{ index: number; archive: Uint8Array }> {
    if (stale || this.#node.role === 'leader') {
      // A leader confirms it still leads and has applied everything committed (a barrier).
      if (!stale) await this.#node.read(false).catch((error: unknown) => { throw this.#raftError(error); });
      // Serialized between event-loop turns: at 1M keys this is ~1 s of work that must not
      // hold up heartbeats (a leader would lose its followers).
      const index = this.fsm.lastAppliedIndex;
      const state = await runBetweenTurns(this.fsm.snapshotInSteps(SNAPSHOT_ROWS_PER_STEP)) as Uint8Array;
      return { index, archive: packSnapshotArchive(index, state) };
    }
    return unpackResult(await this.#callLeader(RPC_METHODS.snapshotSave, { hop: 1 })) as { index: number; archive: Uint8Array };
  }

  async snapshotRestore(archive: Uint8Array): Promise<void> {
    const leaderId = await this.#awaitLeader(Date.now() + this.#config.rpcHoldTimeoutMs);
    if (leaderId === this.info.nodeId) return this.#restoreAsLeader(archive);
    await this.#callLeader(RPC_METHODS.snapshotRestore, { archive, hop: 1 });
  }

  /**
   * Leader: checks the archive and that its state decodes (in a scratch state machine, so a bad
   * one fails here, not on every server at commit), then proposes it as begin, chunks, commit.
   * Chunks go in windows so the uncommitted log stays bounded.
   */
  async #restoreAsLeader(archive: Uint8Array): Promise<void> {
    this.#requireLeader();
    const { state, sha256 } = unpackSnapshotArchive(archive);
    try {
      new StateMachine().restore(state);
    } catch (error) {
      // External bytes: the snapshot decoder's checks (asserts) are the validation here.
      throw withOutcome(new BadRequestError(`Snapshot state is invalid: ${(error as Error).message}`), 'not-applied');
    }
    const restoreId = randomUUID();
    await this.#applyLocal({ type: 'restore-begin', nowMs: 0, restoreId, totalBytes: state.byteLength, sha256 });
    let pending: Promise<WriteResult>[] = [];
    for (let offset = 0; offset < state.byteLength; offset += RESTORE_CHUNK_BYTES_MAX) {
      const data = state.subarray(offset, Math.min(state.byteLength, offset + RESTORE_CHUNK_BYTES_MAX));
      pending.push(this.#applyLocal({ type: 'restore-chunk', nowMs: 0, restoreId, offset, data }));
      if (pending.length >= RESTORE_WINDOW_CHUNKS) {
        await Promise.all(pending);
        pending = [];
      }
    }
    await Promise.all(pending);
    const { result } = await this.#applyLocal({ type: 'restore-commit', nowMs: 0, restoreId });
    if (result.kind !== 'restored') throw new InternalError(`snapshot restore failed: ${result.kind === 'error' ? result.message : result.kind}`);
    this.#log.info({ bytes: state.byteLength }, 'restored a snapshot');
  }

  async removeRaftPeer(id: string): Promise<void> {
    await this.#callLeader(RPC_METHODS.leaveCluster, { id, hop: 1 });
  }

  /** Calls `method` on the leader (locally when we lead). */
  async #callLeader(method: string, payload: unknown): Promise<unknown> {
    const leaderId = await this.#awaitLeader(Date.now() + this.#config.rpcHoldTimeoutMs);
    if (leaderId === this.info.nodeId) return this.#serveLocally(method, payload);
    const address = this.#addressOf(leaderId);
    if (address === null) throw new NoLeaderError();
    try {
      return await this.#transport.call(address, method, payload, { timeoutMs: WRITE_TIMEOUT_MS });
    } catch (error) {
      throw fromRpcError(error);
    }
  }

  async #serveLocally(method: string, payload: unknown): Promise<unknown> {
    if (method === RPC_METHODS.leaveCluster) return this.#removeServer(parseRenewRequest(payload).id);
    if (method === RPC_METHODS.transferLeader) return this.#transferLeadership(transferTarget(payload));
    throw new InternalError(`no local handler for ${method}`);
  }

  /** Leader: removes a server from the Raft configuration (handing leadership over first if it is us). */
  async #removeServer(id: string): Promise<boolean> {
    this.#requireLeader();
    if (!this.#node.configuration.servers.some((server) => server.id === id)) return true;
    if (id === this.info.nodeId) {
      const other = this.#node.configuration.servers.find((server) => server.id !== id && server.voter);
      if (other !== undefined && this.#node.transferLeadership(other.id)) {
        // The new leader removes us; our caller retries through it.
        throw withOutcome(new NoLeaderError('leadership handed over; retry the removal'), 'not-applied');
      }
    }
    try {
      await this.#node.changeMembership({ type: 'remove', id });
    } catch (error) {
      throw this.#raftError(error);
    }
    this.#log.info({ server: id }, 'removed a server from the configuration');
    return true;
  }

  #selfReport(): StatusReport {
    return {
      node: this.info.nodeName,
      id: this.info.nodeId,
      address: this.#config.advertiseAddr,
      datacenter: this.#config.datacenter,
      meta: { ...this.#config.nodeMeta },
      server: true,
      leaving: false,
      // Services issue: anti-entropy fields (service-sync.ts).
      ...this.#sync.fields(),
    };
  }

  /**
   * Handles a status report from an agent (ourselves included): only the leader acts on it. The
   * reply (services issue) says whether the catalog holds the agent's services and checks.
   */
  async report(report: StatusReport, hop = 0): Promise<ReportReply> {
    if (this.#node.role === 'leader') return this.#duties.onReport(report);
    const leaderId = this.#node.leaderId;
    const address = leaderId === null ? null : this.#addressOf(leaderId);
    if (address === null || hop >= FORWARD_HOPS_MAX) throw new NoLeaderError();
    try {
      return parseReportReply(await this.#transport.call(address, RPC_METHODS.report, { ...report, hop: hop + 1 }, { timeoutMs: FORWARD_MARGIN_MS }));
    } catch (error) {
      throw fromRpcError(error);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reportTimer !== null) clearInterval(this.#reportTimer);
    if (this.#livenessTimer !== null) clearInterval(this.#livenessTimer);
    await this.local.close();
    this.#formation.stop();
    this.#duties.stop();
    for (const wake of this.#leaderWaiters) wake();
    await this.#node.close();
    await this.#transport.close();
    await this.#storage.close();
  }

  // ---------------------------------------------------------------------------------------
  // Leader-side work, reached locally or through RPC

  /** Proposes a command here (we lead): the leader's clock stamps `nowMs`. */
  async #applyLocal(command: Command): Promise<WriteResult> {
    let checked = command;
    if (takesLock(command) && !testBug('no-lockdelay')) {
      // Every invalidation committed before this acquire must be applied here (and so noted
      // in #lockDelays) before the check: after an election, the old term's entries too.
      await this.#node.read(true);
      const refused = this.#refuseUnderLockDelay(command);
      if (refused !== null) return { index: this.fsm.lastAppliedIndex, result: refused };
      // The state machine refuses it still if an invalidation lands in the log before it.
      checked = { ...command, checkedIndex: this.fsm.lastAppliedIndex } as Command;
    }
    const stamped = { ...checked, nowMs: Date.now() } as Command;
    const adjusted = testBug('no-lockdelay') && stamped.type === 'session-create' ? { ...stamped, lockDelayNs: 0 } : stamped;
    const bytes = encodeCommand(adjusted);
    const { index, result } = await this.#node.propose(bytes);
    return { index, result: result as ApplyResult };
  }

  /**
   * The answer to an acquire of a key under lock-delay (Consul's kvsPreApply and txn lock
   * check: `false`, or the txn's error), or null to propose the command with the applied index
   * it was checked at (commands.ts LockCheckedIndex): wall-clock steps do not matter.
   */
  #refuseUnderLockDelay(command: Command): ApplyResult | null {
    if (this.#lockDelays.size === 0) return null;
    const now = performance.now();
    const delayed = (key: string): boolean => {
      const until = this.#lockDelays.get(key);
      if (until === undefined) return false;
      if (until > now) return true;
      this.#lockDelays.delete(key);
      return false;
    };
    if (command.type === 'kv-set' && command.verb.kind === 'acquire' && delayed(command.key)) return { kind: 'bool', value: false };
    if (command.type === 'txn') {
      const errors = command.ops.flatMap((op, OpIndex) => (op.verb === 'lock' && delayed(op.key) ? [{ OpIndex, What: `failed to lock key ${goQuote(op.key)} due to lock delay` }] : []));
      if (errors.length > 0) return { kind: 'txn', results: null, errors };
    }
    return null;
  }

  #noteLockDelay(key: string, delayMs: number): void {
    const until = performance.now() + delayMs;
    this.#lockDelays.set(key, Math.max(until, this.#lockDelays.get(key) ?? 0));
    if (this.#lockDelays.size > LOCK_DELAY_SWEEP_THRESHOLD) {
      const now = performance.now();
      for (const [k, deadline] of this.#lockDelays) if (deadline <= now) this.#lockDelays.delete(k);
    }
  }

  /** Proposes a command on behalf of leader duties (no hold, no forwarding). */
  async proposeAsLeader(command: Command): Promise<WriteResult> {
    return this.#applyLocal(command);
  }

  async #runQuery<Q extends Query>(query: Q, options: Pick<QueryOptions, 'consistency' | 'minIndex' | 'waitMs' | 'signal'>, ensureConsistent: () => Promise<void>, confirmedByLeader = false): Promise<{ value: QueryValue<Q>; meta: QueryMeta }> {
    const result = await runBlockingQuery(this.fsm, query, { minIndex: options.minIndex, waitMs: options.waitMs, signal: options.signal, confirmEveryRun: options.consistency === 'consistent' }, ensureConsistent, Math.random);
    // A read the leader confirmed is as fresh as the leader's own: Consul reports LastContact 0.
    const isLeader = confirmedByLeader || this.#node.role === 'leader';
    const lastContact = this.#node.lastContactMs;
    return {
      value: result.value,
      meta: {
        index: result.index,
        knownLeader: isLeader || this.#node.leaderId !== null,
        lastContactMs: isLeader ? 0 : Number.isFinite(lastContact) ? lastContact : 0,
      },
    };
  }

  #renewLocal(id: string): Session | null {
    const session = this.fsm.getSession(id);
    if (session === undefined) return null;
    this.#duties.renewSession(id, session);
    return session;
  }

  // ---------------------------------------------------------------------------------------
  // RPC

  #registerRpc(): void {
    const transport = this.#transport;
    transport.handle(RPC_METHODS.apply, async (payload) => {
      const request = parseApplyRequest(payload);
      return packResult(await this.#write(decodeUntrustedCommand(request.command), request.hop));
    });
    transport.handle(RPC_METHODS.query, async (payload) => {
      const request = parseQueryRequest(resultPackr.unpack(parseQueryPacked(payload)) as unknown);
      const controller = new AbortController();
      const options: QueryOptions = { consistency: request.consistency, minIndex: request.minIndex, waitMs: request.waitMs, maxStaleMs: request.maxStaleMs, signal: controller.signal };
      return packResult(await this.#query(request.query, options, request.hop));
    });
    transport.handle(RPC_METHODS.renew, async (payload) => {
      const request = parseRenewRequest(payload);
      return packResult(await this.#renew(request.id, request.hop));
    });
    transport.handle(RPC_METHODS.report, async (payload) => {
      const report = parseReportRequest(payload);
      // Services issue: the reply carries servicesInSync (it was `true`).
      return this.report(report, hopOf(payload));
    });
    transport.handle(RPC_METHODS.readIndex, async (payload) => {
      const lease = (payload as { lease?: unknown } | null)?.lease === true;
      this.#requireLeader();
      try {
        return await this.#node.readIndex(lease);
      } catch (error) {
        throw this.#raftError(error);
      }
    });
    transport.handle(RPC_METHODS.members, async () => packResult(await this.members()));
    transport.handle(RPC_METHODS.raftConfiguration, async () => packResult(await this.raftConfiguration()));
    transport.handle(RPC_METHODS.leaveCluster, async (payload) => {
      const request = parseRenewRequest(payload);
      if (this.#node.role !== 'leader' && request.hop < FORWARD_HOPS_MAX) {
        await this.#callLeader(RPC_METHODS.leaveCluster, { id: request.id, hop: request.hop + 1 });
        return true;
      }
      try {
        return await this.#removeServer(request.id);
      } catch (error) {
        throw this.#raftError(error);
      }
    });
    transport.handle(RPC_METHODS.transferLeader, async (payload) => {
      const hop = hopOf(payload);
      if (this.#node.role !== 'leader' && hop < FORWARD_HOPS_MAX) return this.#callLeader(RPC_METHODS.transferLeader, { id: transferTarget(payload) ?? '', hop: hop + 1 });
      return this.#transferLeadership(transferTarget(payload));
    });
    transport.handle(RPC_METHODS.snapshotSave, async () => packResult(await this.snapshotSave(false)));
    transport.handle(RPC_METHODS.snapshotRestore, async (payload) => {
      const archive = (payload as { archive?: unknown } | null)?.archive;
      if (!(archive instanceof Uint8Array)) throw new BadRequestError('snapshot restore: archive must be bytes');
      await this.#restoreAsLeader(archive);
      return true;
    });
    transport.handle(RPC_METHODS.leader, async () => this.leaderAddress());
    transport.handle(RPC_METHODS.peers, async () => this.peerAddresses());
  }

  #requireLeader(): void {
    if (this.#node.role !== 'leader') throw withOutcome(new NoLeaderError(), 'not-applied');
  }

  /** Maps a Raft refusal to the error Consul would send, with the write outcome. */
  #raftError(error: unknown): unknown {
    if (!(error instanceof RaftRequestError)) return error;
    switch (error.reason) {
      case 'not-leader':
      case 'transferring':
        return withOutcome(new NoLeaderError(), 'not-applied');
      case 'closed':
        // A proposal pending when the node closed may still commit elsewhere: keep its outcome.
        return error.outcome === 'unknown' ? new UnknownOutcomeError('the server stopped before the write committed; it may still be applied') : withOutcome(new NoLeaderError(), 'not-applied');
      case 'too-large':
        return withOutcome(new TooLargeError('Command too large for the Raft log'), 'not-applied');
      case 'overloaded':
        return withOutcome(new OverloadedError('Too many pending writes, retry later'), 'not-applied');
      case 'timeout':
        return new UnknownOutcomeError('timed out waiting for the write to commit; it may still be applied');
      case 'restored':
        return new UnknownOutcomeError('a snapshot from the leader replaced this server\'s log before the write was applied here; it may have been applied');
      case 'superseded':
        return withOutcome(new InternalError('leadership changed before the write committed; it was not applied'), 'not-applied');
      case 'config-change-pending':
      case 'invalid-config-change':
        return withOutcome(new BadRequestError(`membership change refused: ${error.reason}`), 'not-applied');
    }
  }

  // ---------------------------------------------------------------------------------------
  // Leadership, peers, reports

  /** Waits (Consul's rpc_hold_timeout) until a leader is known; returns its id. */
  async #awaitLeader(deadline: number, signal?: AbortSignal): Promise<ServerId> {
    for (;;) {
      const leaderId = this.#node.leaderId;
      if (leaderId !== null && (leaderId !== this.info.nodeId || this.#node.role === 'leader')) return leaderId;
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.#closed || signal?.aborted === true) throw withOutcome(new NoLeaderError(), 'not-applied');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(remaining, 50));
        const self = this;
        function done(): void {
          clearTimeout(timer);
          self.#leaderWaiters.delete(done);
          resolve();
        }
        this.#leaderWaiters.add(done);
      });
    }
  }

  #addressOf(id: ServerId): string | null {
    return this.#learnedAddresses.get(id) ?? this.#node.configuration.servers.find((server) => server.id === id)?.address ?? null;
  }

  #onRoleChange(role: Role, term: number, leaderId: ServerId | null): void {
    this.#log.info({ role, term, leaderId }, 'raft role changed');
    for (const wake of [...this.#leaderWaiters]) wake();
    if (role === 'leader') this.#duties.start();
    else this.#duties.stop();
  }

  #onApplied(entry: Entry, result: ApplyResult | null): void {
    if (entry.type === 'config') this.#syncPeers(this.#node.configuration);
    if (result !== null) this.#duties.onApplied(entry, result);
  }

  #syncPeers(configuration: Configuration): void {
    for (const server of configuration.servers) {
      if (server.id === this.info.nodeId) continue;
      // An address the peer told us itself is newer than a configuration entry it has not
      // updated yet; once the configuration agrees, the learned one is no longer needed.
      const learned = this.#learnedAddresses.get(server.id);
      if (learned === server.address) this.#learnedAddresses.delete(server.id);
      this.#transport.setPeerAddress(server.id, learned ?? server.address);
    }
  }

  /** Points the transport at where a peer says it is now (from its hello). */
  learnPeerAddress(id: ServerId, address: string): void {
    if (id === this.info.nodeId) return;
    const configured = this.#node.configuration.servers.find((server) => server.id === id)?.address;
    if (configured === address) this.#learnedAddresses.delete(id);
    else this.#learnedAddresses.set(id, address);
    this.#transport.setPeerAddress(id, address);
  }

  /** Where we reach a server now: what it told us, else the configuration. */
  peerAddress(id: ServerId): string | null {
    return this.#addressOf(id);
  }

  /**
   * A TCP connection into a partition stays open while the kernel retransmits with growing
   * back-off; after the heal it may take minutes to deliver again, and a peer that came back
   * with a new address is never dialled. Every peer answers the leader's heartbeats (and the
   * leader heartbeats its followers), so silence for two election timeouts means: redial.
   */
  #redialSilentPeers(): void {
    for (const id of this.#node.silentPeers(2 * this.#config.raftElectionTimeoutMs)) {
      this.#log.debug({ peer: id }, 'no message from peer for two election timeouts: redialling');
      this.#transport.reconnectPeer(id);
    }
  }

  /** Called after the formation bootstrapped or joined: peers may have changed. */
  refreshPeers(): void {
    this.#syncPeers(this.#node.configuration);
  }

  async #reportStatus(): Promise<void> {
    if (this.#closed || this.#leaving) return;
    try {
      const report = this.#selfReport();
      const reply = await this.report(report);
      this.#reported = true;
      // Services issue: the leader asked for our services and checks; send them now.
      if (this.#sync.onReply(report, reply)) void this.#reportStatus();
    } catch (error) {
      this.#log.debug({ err: error }, 'status report not delivered');
      // Until the first report lands (no leader yet at start), retry soon: sessions on this
      // node need its catalog registration.
      if (!this.#reported) setTimeout(() => void this.#reportStatus(), FIRST_REPORT_RETRY_MS).unref();
    }
  }

  #fatal(error: unknown): void {
    this.#log.error({ err: error }, 'fatal storage error: the server stops');
    process.exitCode = 70;
    // A moment for the failed requests' 500s to go out; nothing can be acknowledged meanwhile
    // (the Raft node is closed: no proposal, read index or lease read is served).
    setTimeout(() => process.exit(70), FATAL_EXIT_DELAY_MS);
  }
}

/** An acquire, or a transaction with a lock operation. */
function takesLock(command: Command): boolean {
  return (command.type === 'kv-set' && command.verb.kind === 'acquire') || (command.type === 'txn' && command.ops.some((op) => op.verb === 'lock'));
}

/** True when an RPC failed before the request left this process: retrying cannot duplicate it. */
export function neverSent(error: unknown): boolean {
  return error instanceof RpcError && !error.remote && (error.code === 'ERR_RPC_HANDSHAKE' || (error.code === 'ERR_RPC_CONNECTION' && error.message.startsWith('cannot connect')));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The target of a transfer request: an id, or null for "the best voter". */
function transferTarget(payload: unknown): string | null {
  const id = (payload as { id?: unknown } | null)?.id;
  if (id !== undefined && typeof id !== 'string') throw new BadRequestError('transfer-leader: id must be a string');
  return id === undefined || id === '' ? null : id.slice(0, 256);
}

function hopOf(payload: unknown): number {
  const hop = (payload as { hop?: unknown } | null)?.hop;
  return typeof hop === 'number' && Number.isSafeInteger(hop) && hop >= 0 ? hop : FORWARD_HOPS_MAX;
}

/** Packs a value the way results travel between agents (uint64 as BigInt). */
export function packResult(value: unknown): { packed: Uint8Array } {
  return { packed: resultPackr.pack(value) };
}

/** The packed body of a forwarded query. */
export function parseQueryPacked(payload: unknown): Uint8Array {
  const packed = (payload as { packed?: unknown } | null)?.packed;
  if (!(packed instanceof Uint8Array)) throw new BadRequestError('query request without a packed body');
  return packed;
}

/** The inverse of packResult. */
export function unpackResult(reply: unknown): unknown {
  const packed = (reply as { packed?: unknown } | null)?.packed;
  if (!(packed instanceof Uint8Array)) throw new InternalError('malformed reply from the leader');
  return resultPackr.unpack(packed) as unknown;
}

export type { AgentError };
