import type { Logger } from '../lib/logger.js';
import type { Entry } from '../raft/core/types.js';
import type { CheckDefinition, Command } from '../state/commands.js';
import type { ApplyResult } from '../state/fsm.js';
import type { Session } from '../state/sessions.js';
import type { StatusReport } from '../rpc/methods.js';
import type { ServerAgent } from './server.js';
// Services issue: anti-entropy of agents' services and checks (see #syncServices).
import { catalogViewOf, hashNodeServices } from './service-sync.js';
import type { ReportReply } from './service-sync.js';

/**
 * What only the leader does, and restarts from scratch whenever it becomes leader:
 * - session TTL timers: a session expires 2 × TTL after creation or its last renewal; a new
 *   leader re-arms every timer at the full 2 × TTL (consul-api.md §6); expiry goes through Raft;
 * - node liveness: agents report every few seconds; a node silent past node_timeout gets its
 *   serfHealth check marked critical through Raft, which invalidates its sessions;
 * - promoting caught-up non-voting servers to voters.
 */
const MONITOR_INTERVAL_MS = 250;
/** A non-voter within this many entries of the commit index is caught up enough to vote. */
const PROMOTION_LAG_ENTRIES_MAX = 64;

export const SERF_CHECK_ID = 'serfHealth';

export function serfHealthCheck(status: 'passing' | 'critical'): CheckDefinition {
  return {
    checkId: SERF_CHECK_ID,
    name: 'Serf Health Status',
    status,
    notes: '',
    output: status === 'passing' ? 'Agent alive and reachable' : 'Agent not live or unreachable',
    serviceId: '',
    serviceName: '',
    serviceTags: [],
    type: '',
    interval: '',
    timeout: '',
  };
}

export class LeaderDuties {
  readonly #server: ServerAgent;
  readonly #log: Logger;
  #active = false;
  #generation = 0;
  readonly #sessionTimers = new Map<string, NodeJS.Timeout>();
  /**
   * performance.now() of each agent's last report. Silence is measured on the monotonic clock: a
   * step of the leader's wall clock (NTP) must not make live nodes look silent, which would
   * invalidate their sessions (test/agent/bug-liveness-wall-clock.test.ts).
   */
  readonly #lastHeard = new Map<string, number>();
  readonly #inFlight = new Set<string>();
  #monitor: NodeJS.Timeout | null = null;
  #startedAt = 0;

  constructor(server: ServerAgent, log: Logger) {
    this.#server = server;
    this.#log = log;
  }

  /** Becoming leader: catch the FSM up (a barrier), then arm everything afresh. */
  start(): void {
    this.stop();
    this.#active = true;
    const generation = ++this.#generation;
    void this.#server.node.read(false).then(
      () => {
        if (!this.#active || generation !== this.#generation) return;
        this.#startedAt = performance.now();
        for (const { id, ttlNs } of this.#server.fsm.sessionsWithTtl()) this.#armSession(id, ttlNs);
        this.#monitor = setInterval(() => this.#tick(), MONITOR_INTERVAL_MS);
        this.#log.info({ sessions: this.#sessionTimers.size }, 'leader duties started');
      },
      () => undefined,
    );
  }

  stop(): void {
    this.#active = false;
    this.#generation++;
    for (const timer of this.#sessionTimers.values()) clearTimeout(timer);
    this.#sessionTimers.clear();
    this.#lastHeard.clear();
    this.#inFlight.clear();
    if (this.#monitor !== null) clearInterval(this.#monitor);
    this.#monitor = null;
  }

  /** Sees every applied command's result on this server; only acts while leading. */
  onApplied(_entry: Entry, result: ApplyResult): void {
    if (!this.#active || this.#monitor === null) return;
    if (result.kind === 'restored') {
      // A restored snapshot brings other sessions: every timer starts again at full length.
      for (const timer of this.#sessionTimers.values()) clearTimeout(timer);
      this.#sessionTimers.clear();
      for (const { id, ttlNs } of this.#server.fsm.sessionsWithTtl()) this.#armSession(id, ttlNs);
      return;
    }
    if (result.kind !== 'session') return;
    const session = this.#server.fsm.sessionsWithTtl().find((s) => s.id === result.id);
    if (session !== undefined) this.#armSession(session.id, session.ttlNs);
  }

  renewSession(id: string, session: Session): void {
    const entry = this.#server.fsm.sessionsWithTtl().find((s) => s.id === id);
    if (entry !== undefined && session.TTL !== '') this.#armSession(id, entry.ttlNs);
  }

  #armSession(id: string, ttlNs: number): void {
    const existing = this.#sessionTimers.get(id);
    if (existing !== undefined) clearTimeout(existing);
    const delayMs = Math.ceil((2 * ttlNs) / 1e6);
    const generation = this.#generation;
    this.#sessionTimers.set(id, setTimeout(() => void this.#expireSession(id, generation), delayMs));
  }

  async #expireSession(id: string, generation: number): Promise<void> {
    this.#sessionTimers.delete(id);
    if (!this.#active || generation !== this.#generation || this.#server.fsm.getSession(id) === undefined) return;
    this.#log.info({ session: id }, 'session TTL expired');
    await this.#propose({ type: 'session-destroy', nowMs: 0, id }, `session ${id}`);
  }

  /**
   * A status report reached the leader: note it, write the node only if something changed, then
   * its services and checks (anti-entropy). The reply tells the agent whether the catalog holds
   * what it reported.
   */
  async onReport(report: StatusReport): Promise<ReportReply> {
    this.#lastHeard.set(report.node, performance.now());
    if (report.leaving) {
      if (this.#server.fsm.getNode(report.node) !== undefined) await this.#propose({ type: 'node-deregister', nowMs: 0, node: report.node }, `node ${report.node}`);
      return { servicesInSync: null };
    }
    await this.#registerNode(report);
    return this.#syncServices(report);
  }

  /**
   * Services issue: compares the catalog's services and checks of the node with the report's
   * hash; when they differ and the report carries the agent's view, writes it (`node-sync`).
   * Without a view the agent is told to send it (servicesInSync false).
   */
  async #syncServices(report: StatusReport): Promise<ReportReply> {
    if (report.servicesHash === undefined) return { servicesInSync: null };
    const fsm = this.#server.fsm;
    if (hashNodeServices(catalogViewOf(fsm, report.node)) === report.servicesHash) return { servicesInSync: true };
    if (report.sync === undefined || fsm.getNode(report.node) === undefined) return { servicesInSync: false };
    await this.#propose({ type: 'node-sync', nowMs: 0, node: report.node, services: report.sync.services, checks: report.sync.checks }, `services ${report.node}`);
    return { servicesInSync: hashNodeServices(catalogViewOf(fsm, report.node)) === report.servicesHash };
  }

  /** Writes the node (and a passing serfHealth) when the report differs from the catalog. */
  async #registerNode(report: StatusReport): Promise<void> {
    const fsm = this.#server.fsm;
    const node = fsm.getNode(report.node);
    const check = fsm.getCheck(report.node, SERF_CHECK_ID);
    const same =
      node !== undefined &&
      node.ID === report.id &&
      node.Address === report.address &&
      sameRecord(node.Meta, report.meta) &&
      check?.Status === 'passing';
    if (same) return;
    await this.#propose(
      {
        type: 'node-register',
        nowMs: 0,
        node: report.node,
        id: report.id,
        address: report.address,
        datacenter: report.datacenter,
        taggedAddresses: { lan: report.address, lan_ipv4: report.address, wan: report.address, wan_ipv4: report.address },
        meta: report.meta,
        checks: [serfHealthCheck('passing')],
      },
      `node ${report.node}`,
    );
  }

  #tick(): void {
    if (!this.#active) return;
    const now = performance.now();
    const timeout = this.#server.config.nodeTimeoutMs;
    for (const node of this.#server.fsm.listNodes()) {
      const check = this.#server.fsm.getCheck(node.Node, SERF_CHECK_ID);
      if (check === undefined || check.Status !== 'passing') continue;
      const heard = this.#lastHeard.get(node.Node) ?? this.#startedAt;
      if (now - heard > timeout) {
        this.#log.warn({ node: node.Node, silentMs: now - heard }, 'node not heard from: marking it critical');
        void this.#propose({ type: 'check-update', nowMs: 0, node: node.Node, checkId: SERF_CHECK_ID, status: 'critical', output: 'Agent not live or unreachable' }, `node ${node.Node}`);
      }
    }
    void this.#promoteCaughtUpServers();
  }

  async #promoteCaughtUpServers(): Promise<void> {
    const node = this.#server.node;
    const progress = new Map(node.progress().map((p) => [p.id, p]));
    for (const server of node.configuration.servers) {
      if (server.voter) continue;
      const pr = progress.get(server.id);
      if (pr === undefined || pr.match + PROMOTION_LAG_ENTRIES_MAX < node.commitIndex) continue;
      const key = `promote ${server.id}`;
      if (this.#inFlight.has(key)) continue;
      this.#inFlight.add(key);
      try {
        await node.changeMembership({ type: 'add-voter', id: server.id, address: server.address });
        this.#log.info({ server: server.id }, 'promoted a caught-up server to voter');
      } catch (error) {
        this.#log.debug({ err: error, server: server.id }, 'promotion not done yet');
      } finally {
        this.#inFlight.delete(key);
      }
    }
  }

  /** One proposal per subject at a time: reports arrive every second, writes may take longer. */
  async #propose(command: Command, subject: string): Promise<void> {
    if (this.#inFlight.has(subject)) return;
    this.#inFlight.add(subject);
    try {
      await this.#server.proposeAsLeader(command);
    } catch (error) {
      this.#log.debug({ err: error, subject }, 'leader duty write failed');
    } finally {
      this.#inFlight.delete(subject);
    }
  }
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keysA = Object.keys(a);
  if (keysA.length !== Object.keys(b).length) return false;
  return keysA.every((key) => a[key] === b[key]);
}
