/**
 * What the page knows about its agent and the cluster: reachable or not, leader or not, and
 * who the agent is. It learns from every API call (an ApiClient observer: a network failure
 * anywhere means "unreachable", `X-Consul-KnownLeader: false` or `500 No cluster leader`
 * means "no leader") and from a slow poll of `/v1/status/leader` (every 5 s) that also names
 * the leader. When the agent comes back, every live watch is asked to retry at once instead of
 * waiting out its back-off.
 */
import type { ApiClient } from '../lib/api-client.js';
import { Watch } from '../lib/blocking-watch.js';
import { membersOf } from '../lib/catalog-model.js';
import type { Member } from '../lib/catalog-model.js';

/** How often the leader is asked for (it cannot block). */
const LEADER_POLL_MS = 5000;
/** How often the agent's own description is refreshed. */
const SELF_POLL_MS = 60_000;

/** This agent, from `/v1/agent/self`. */
export interface AgentSelf {
  readonly nodeName: string;
  readonly datacenter: string;
  readonly server: boolean;
  readonly version: string;
}

/** What the banner and header show. */
export interface ConnectionState {
  /** null until the first answer. */
  readonly reachable: boolean | null;
  /** true / false, or null while unknown. */
  readonly hasLeader: boolean | null;
  /** The leader's Raft address (`/v1/status/leader`), when known. */
  readonly leaderAddress: string | null;
  /** The leader's node name, when the members list has it. */
  readonly leaderName: string | null;
  readonly agent: AgentSelf | null;
  /** The latest failure's message, for the banner. */
  readonly lastError: string | null;
}

/** See the file comment. */
export class Connection {
  readonly #api: ApiClient;
  readonly #listeners: ((state: ConnectionState) => void)[] = [];
  readonly #watches = new Set<Watch<unknown>>();
  #state: ConnectionState = { reachable: null, hasLeader: null, leaderAddress: null, leaderName: null, agent: null, lastError: null };
  #members: Member[] = [];
  #hidden = false;
  readonly #leaderWatch: Watch<string>;
  readonly #selfWatch: Watch<AgentSelf>;

  constructor(api: ApiClient) {
    this.#api = api;
    api.observe((outcome) => {
      if (outcome.ok) {
        const wasDown = this.#state.reachable === false;
        const update: { -readonly [K in keyof ConnectionState]?: ConnectionState[K] } = { reachable: true };
        if (outcome.meta.knownLeader === false) update.hasLeader = false;
        else if (outcome.meta.knownLeader === true && this.#state.hasLeader !== true) {
          update.hasLeader = true;
          this.#leaderWatch.retryNow(); // learn the new leader's name now, not in 5 s
        }
        this.#set(update);
        if (wasDown) this.retryAll();
      } else if (outcome.error.kind === 'unreachable') {
        this.#set({ reachable: false, lastError: outcome.error.message });
      } else if (outcome.error.kind === 'no-leader') {
        this.#set({ reachable: true, hasLeader: false, leaderAddress: null, leaderName: null, lastError: outcome.error.message });
      }
    });
    this.#leaderWatch = new Watch<string>({
      client: api,
      path: '/v1/status/leader',
      mode: 'poll',
      pollIntervalMs: LEADER_POLL_MS,
      decode: ({ body }) => (typeof body === 'string' ? body : ''),
      onData: (address) => {
        if (address === '') {
          this.#set({ hasLeader: false, leaderAddress: null, leaderName: null });
          return;
        }
        const changed = address !== this.#state.leaderAddress;
        this.#set({ hasLeader: true, leaderAddress: address, leaderName: this.#nameOf(address) });
        if (changed && this.#nameOf(address) === null) void this.#refreshMembers();
      },
    });
    this.#selfWatch = new Watch<AgentSelf>({
      client: api,
      path: '/v1/agent/self',
      mode: 'poll',
      pollIntervalMs: SELF_POLL_MS,
      decode: ({ body }) => agentSelfOf(body),
      onData: (agent) => this.#set({ agent }),
    });
  }

  /** Starts the polls. */
  start(): void {
    this.#leaderWatch.start();
    this.#selfWatch.start();
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Calls `listener` now and on every change; returns the unsubscribe function. */
  subscribe(listener: (state: ConnectionState) => void): () => void {
    this.#listeners.push(listener);
    listener(this.#state);
    return () => {
      const at = this.#listeners.indexOf(listener);
      if (at >= 0) this.#listeners.splice(at, 1);
    };
  }

  /** A view's watch, retried with the others when the agent comes back, paused with the tab. */
  remember(watch: Watch<unknown>): void {
    this.#watches.add(watch);
    if (this.#hidden) watch.pause();
  }

  /**
   * The tab was hidden or shown: a hidden tab asks nothing (its blocking queries would hold
   * connections the browser shares between all tabs of this origin); a shown one catches up.
   */
  setHidden(hidden: boolean): void {
    if (hidden === this.#hidden) return;
    this.#hidden = hidden;
    for (const watch of [this.#leaderWatch, this.#selfWatch, ...this.#watches]) {
      if (hidden) watch.pause();
      else watch.resume();
    }
  }

  forget(watch: Watch<unknown>): void {
    this.#watches.delete(watch);
  }

  /** Ends every back-off now ("Retry now", or the agent answered again). */
  retryAll(): void {
    this.#leaderWatch.retryNow();
    this.#selfWatch.retryNow();
    for (const watch of this.#watches) watch.retryNow();
  }

  /** The members last fetched (the views use them to name servers). */
  get members(): readonly Member[] {
    return this.#members;
  }

  async #refreshMembers(): Promise<void> {
    try {
      const answer = await this.#api.getJson('/v1/agent/members');
      this.#members = membersOf(answer.body);
      const address = this.#state.leaderAddress;
      if (address !== null) this.#set({ leaderName: this.#nameOf(address) });
    } catch {
      // the observer has already reported it; names are a nicety
    }
  }

  #nameOf(address: string): string | null {
    return this.#members.find((member) => member.role === 'server' && `${member.address}:${member.serverPort ?? ''}` === address)?.name ?? null;
  }

  #set(update: Partial<ConnectionState>): void {
    const next = { ...this.#state, ...update };
    const changed = (Object.keys(next) as (keyof ConnectionState)[]).some((key) => next[key] !== this.#state[key]);
    this.#state = next;
    if (changed) for (const listener of this.#listeners) listener(next);
  }
}

/** Reads `/v1/agent/self`. */
export function agentSelfOf(json: unknown): AgentSelf {
  const config = typeof json === 'object' && json !== null ? (json as { Config?: Record<string, unknown> }).Config ?? {} : {};
  return {
    nodeName: typeof config.NodeName === 'string' ? config.NodeName : '?',
    datacenter: typeof config.Datacenter === 'string' ? config.Datacenter : '',
    server: config.Server === true,
    version: typeof config.Version === 'string' ? config.Version : '',
  };
}
