/**
 * TEST DOUBLE. `LocalAgent` implements AgentApi over a real StateMachine with a local index
 * counter instead of Raft, so the HTTP layer can be tested without a cluster:
 * - every write is applied synchronously at the next index, through the same encode → apply path
 *   a committed Raft entry takes, stamped with this process's clock as "the leader's";
 * - it registers its own node with a passing `serfHealth` check at start (index 1), so sessions
 *   can be created with Consul's defaults;
 * - reads run through `runBlockingQuery` with a no-op consistency step (it is always "the
 *   leader": KnownLeader true, LastContact 0);
 * - `renewSession` returns the session (or null) and re-arms its TTL timer;
 * - membership is the catalog: `members()` lists the catalog's nodes (this agent's node is the
 *   server), `forceLeave` deregisters the node, `join` does nothing, `leave` closes the double,
 *   `removeRaftPeer` only records the id (`removedRaftPeers`), and there is no Raft status;
 * - its local services and checks (a real LocalState, in memory unless `dataDir` is given) are
 *   synced into the state machine at once on every change, as the leader's `node-sync` would
 *   (with `consulService`, the servers' `consul` service too).
 *
 * TEST-DOUBLE BEHAVIOUR, not the agent's: session TTL expiry. In the real agent the leader runs
 * the TTL timers and proposes `session-destroy`; here a timer per session fires 2 × TTL after
 * create or the last renew and writes `session-destroy` itself, so the Swarm/libkv flow of
 * consul-api.md §8 can be shown end to end. The lead runs the same HTTP tests against a real
 * cluster later.
 */
import { LocalState } from '../../src/agent/local-state.js';
import { ServiceSyncer, consulServiceOf } from '../../src/agent/service-sync.js';
import { silentLogger } from '../../src/lib/logger.js';
import { BadRequestError, InternalError } from '../../src/lib/errors.js';
import { packSnapshotArchive, unpackSnapshotArchive } from '../../src/agent/snapshot-archive.js';
import { RESTORE_CHUNK_BYTES_MAX } from '../../src/state/limits.js';
import type { AgentApi, AgentInfo, MemberInfo, RaftConfigurationInfo, QueryMeta, QueryOptions, WriteResult } from '../../src/agent/agent-api.js';
import { runBlockingQuery } from '../../src/agent/queries.js';
import type { Query, QueryValue } from '../../src/agent/queries.js';
import { encodeCommand } from '../../src/state/commands.js';
import type { Command } from '../../src/state/commands.js';
import { StateMachine } from '../../src/state/fsm.js';
import type { ApplyResult, StateMachineOptions } from '../../src/state/fsm.js';
import type { Session } from '../../src/state/sessions.js';

/** Options of the test double. */
export interface LocalAgentOptions {
  readonly nodeName?: string;
  readonly datacenter?: string;
  /** Whether TTL sessions expire (2 × TTL after create or renew); default true. */
  readonly ttlExpiry?: boolean;
  /** "The leader's clock" stamped on writes (lock-delays); default Date.now. */
  readonly nowMs?: () => number;
  /** Passed to the StateMachine (e.g. a low watchWaitersMax). */
  readonly fsm?: StateMachineOptions;
  /** Where local registrations persist (default: memory only). */
  readonly dataDir?: string;
  /** `enable_script_checks` (default false). */
  readonly enableScriptChecks?: boolean;
  /** Sync the servers' `consul` service with the local services (default false). */
  readonly consulService?: boolean;
}

const NO_CONSISTENCY_STEP = async (): Promise<void> => undefined;

/** A single-node, Raft-less AgentApi for HTTP tests. */
export class LocalAgent implements AgentApi {
  readonly info: AgentInfo;
  readonly fsm: StateMachine;
  /** Every command applied, in order (after stamping). */
  readonly applied: Command[] = [];
  /** Every `removeRaftPeer` id, in order. */
  readonly removedRaftPeers: string[] = [];
  readonly local: LocalState;
  readonly #sync: ServiceSyncer;
  readonly #ttlExpiry: boolean;
  readonly #nowMs: () => number;
  readonly #ttlTimers = new Map<string, NodeJS.Timeout>();
  #index = 0;
  #closed = false;

  constructor(options: LocalAgentOptions = {}) {
    this.info = {
      nodeName: options.nodeName ?? 'local-node',
      nodeId: '0b9a3f6e-3c7a-4d3e-9a59-5f3f1d0c8e11',
      datacenter: options.datacenter ?? 'dc1',
      server: true,
      version: '1.16.4',
      revision: 'conclave',
      buildDate: '2026-11-27T00:00:00Z',
      advertiseAddress: '127.0.0.1',
      serverPort: 8300,
      httpPort: 8500,
    };
    this.fsm = new StateMachine(options.fsm);
    this.#ttlExpiry = options.ttlExpiry ?? true;
    this.#nowMs = options.nowMs ?? Date.now;
    this.#applyNow({
      type: 'node-register', nowMs: 0, node: this.info.nodeName, id: this.info.nodeId, address: this.info.advertiseAddress,
      datacenter: this.info.datacenter, taggedAddresses: {}, meta: {},
      checks: [{
        checkId: 'serfHealth', name: 'Serf Health Status', status: 'passing', notes: '', output: 'Agent alive and reachable',
        serviceId: '', serviceName: '', serviceTags: [], type: '', interval: '', timeout: '',
      }],
    });
    this.local = new LocalState({
      nodeName: this.info.nodeName, dataDir: options.dataDir ?? null, enableScriptChecks: options.enableScriptChecks ?? false, logger: silentLogger,
    });
    const consul = options.consulService === true ? [consulServiceOf(this.info.serverPort, this.info.version)] : [];
    this.#sync = new ServiceSyncer(this.local, () => consul);
    this.local.onChange(() => this.syncServices());
    if (options.consulService === true || options.dataDir !== undefined) this.syncServices();
  }

  /** Writes the local services and checks into the state machine if they changed (`node-sync`). */
  syncServices(): void {
    if (this.#closed) return;
    const fields = this.#sync.fields();
    if (fields.sync !== undefined) {
      this.#applyNow({ type: 'node-sync', nowMs: 0, node: this.info.nodeName, services: fields.sync.services, checks: fields.sync.checks });
    }
    this.#sync.onReply(fields, { servicesInSync: true });
  }

  /** The index of the last applied write. */
  get index(): number {
    return this.#index;
  }

  async write(command: Command): Promise<WriteResult> {
    if (this.#closed) throw new Error('LocalAgent is closed');
    return this.#applyNow(command);
  }

  async query<Q extends Query>(query: Q, options: QueryOptions): Promise<{ value: QueryValue<Q>; meta: QueryMeta }> {
    const read = await runBlockingQuery(this.fsm, query, { ...options, confirmEveryRun: options.consistency === 'consistent' }, NO_CONSISTENCY_STEP, Math.random);
    return { value: read.value, meta: { index: read.index, knownLeader: true, lastContactMs: 0 } };
  }

  async renewSession(id: string): Promise<Session | null> {
    const session = this.fsm.getSession(id);
    if (session === undefined) return null;
    this.#armTtl(id, session.TTL === '' ? 0 : this.#ttlNsOf(id));
    return session;
  }

  async leaderAddress(): Promise<string> {
    return `${this.info.advertiseAddress}:${this.info.serverPort}`;
  }

  async peerAddresses(): Promise<string[]> {
    return [`${this.info.advertiseAddress}:${this.info.serverPort}`];
  }

  /** The catalog's nodes as members (this double has no real membership). */
  async members(): Promise<MemberInfo[]> {
    return this.fsm.listNodes().map((node) => ({
      name: node.Node,
      address: node.Address,
      server: node.Node === this.info.nodeName,
      status: this.fsm.getCheck(node.Node, 'serfHealth')?.Status === 'critical' ? 4 : 1,
      nodeId: node.ID,
      datacenter: node.Datacenter,
      serverPort: node.Node === this.info.nodeName ? this.info.serverPort : null,
      meta: node.Meta,
    }));
  }

  async join(): Promise<void> {
    // A single in-process agent has nobody to join.
  }

  async leave(): Promise<void> {
    this.close();
  }

  /** Deregisters the node (there is no Raft configuration to prune). */
  async forceLeave(node: string): Promise<void> {
    if (this.fsm.getNode(node) !== undefined) await this.write({ type: 'node-deregister', nowMs: 0, node });
  }

  async raftConfiguration(): Promise<RaftConfigurationInfo> {
    const address = `${this.info.advertiseAddress}:${this.info.serverPort}`;
    return { servers: [{ id: this.info.nodeId, node: this.info.nodeName, address, leader: true, voter: true, lastIndex: this.fsm.lastAppliedIndex }], index: this.fsm.lastAppliedIndex };
  }

  async snapshotSave(): Promise<{ index: number; archive: Uint8Array }> {
    const index = this.fsm.lastAppliedIndex;
    return { index, archive: packSnapshotArchive(index, this.fsm.snapshot()) };
  }

  /** The same checks and the same begin/chunks/commit commands as a real leader, applied at once. */
  async snapshotRestore(archive: Uint8Array): Promise<void> {
    const { state, sha256 } = unpackSnapshotArchive(archive);
    try {
      new StateMachine().restore(state);
    } catch (error) {
      throw new BadRequestError(`Snapshot state is invalid: ${(error as Error).message}`);
    }
    const restoreId = `restore-${this.fsm.lastAppliedIndex}`;
    await this.write({ type: 'restore-begin', nowMs: 0, restoreId, totalBytes: state.byteLength, sha256 });
    for (let offset = 0; offset < state.byteLength; offset += RESTORE_CHUNK_BYTES_MAX) {
      await this.write({ type: 'restore-chunk', nowMs: 0, restoreId, offset, data: state.subarray(offset, offset + RESTORE_CHUNK_BYTES_MAX) });
    }
    const { result } = await this.write({ type: 'restore-commit', nowMs: 0, restoreId });
    if (result.kind !== 'restored') throw new InternalError(`snapshot restore failed: ${result.kind}`);
  }

  /** A single server has nobody to hand leadership to (Consul's answer for a lone server). */
  async transferLeader(): Promise<void> {
    throw new InternalError('no other voting server to transfer leadership to');
  }

  /** Records the removal (this double has a single-server configuration and no Raft). */
  async removeRaftPeer(id: string): Promise<void> {
    this.removedRaftPeers.push(id);
  }

  raftStatus(): Record<string, unknown> | null {
    return null;
  }

  stateDigest(): { index: number; hash: string } | null {
    return null;
  }

  /** Stops the TTL timers; later writes fail. */
  close(): void {
    this.#closed = true;
    void this.local.close();
    for (const timer of this.#ttlTimers.values()) clearTimeout(timer);
    this.#ttlTimers.clear();
  }

  #applyNow(command: Command): WriteResult {
    const index = ++this.#index;
    const stamped = { ...command, nowMs: Math.floor(this.#nowMs()) } as Command;
    const result = this.fsm.apply(index, encodeCommand(stamped));
    this.applied.push(stamped);
    this.#afterApply(stamped, result);
    return { result, index };
  }

  /** Test-double TTL expiry: arm on create, disarm on destroy. */
  #afterApply(command: Command, result: ApplyResult): void {
    if (command.type === 'session-create' && result.kind === 'session' && command.ttlNs > 0) {
      this.#armTtl(command.id, command.ttlNs);
    } else if (command.type === 'session-destroy') {
      clearTimeout(this.#ttlTimers.get(command.id));
      this.#ttlTimers.delete(command.id);
    }
  }

  #ttlNsOf(id: string): number {
    return this.fsm.sessionsWithTtl().find((session) => session.id === id)?.ttlNs ?? 0;
  }

  #armTtl(id: string, ttlNs: number): void {
    clearTimeout(this.#ttlTimers.get(id));
    this.#ttlTimers.delete(id);
    if (!this.#ttlExpiry || ttlNs === 0 || this.#closed) return;
    const timer = setTimeout(() => {
      this.#ttlTimers.delete(id);
      if (!this.#closed) this.#applyNow({ type: 'session-destroy', nowMs: 0, id });
    }, (2 * ttlNs) / 1_000_000);
    timer.unref();
    this.#ttlTimers.set(id, timer);
  }
}
