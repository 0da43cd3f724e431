import { assert } from '../../lib/assert.js';
import type { Configuration, Entry, ServerEntry, ServerId } from './types.js';
import { decodeConfiguration } from './types.js';

/** A single-server membership change (Raft thesis §4.1): one server in or out at a time. */
export type ConfigChange =
  | { readonly type: 'add-voter' | 'add-nonvoter'; readonly id: ServerId; readonly address: string }
  | { readonly type: 'remove'; readonly id: ServerId };

interface ConfigAt {
  readonly index: number;
  readonly configuration: Configuration;
}

/**
 * The configurations in the log. A server uses the latest one in its log, committed or not
 * (Raft thesis §4.1), so a truncated config entry must restore the one before it; the history
 * from the last compaction point on is kept for that.
 */
export class Membership {
  #history: ConfigAt[];
  #voters: ServerId[] = [];

  constructor(baseIndex: number, base: Configuration) {
    this.#history = [{ index: baseIndex, configuration: base }];
    this.#refresh();
  }

  get current(): Configuration {
    return (this.#history[this.#history.length - 1] as ConfigAt).configuration;
  }

  /** Index of the entry that set the current configuration (the base index if none since). */
  get latestIndex(): number {
    return (this.#history[this.#history.length - 1] as ConfigAt).index;
  }

  /** The configuration in force at `index`. */
  at(index: number): Configuration {
    for (let k = this.#history.length - 1; k >= 0; k--) {
      const item = this.#history[k] as ConfigAt;
      if (item.index <= index) return item.configuration;
    }
    return (this.#history[0] as ConfigAt).configuration;
  }

  voters(): readonly ServerId[] {
    return this.#voters;
  }

  isVoter(id: ServerId): boolean {
    return this.#voters.includes(id);
  }

  has(id: ServerId): boolean {
    return this.current.servers.some((server) => server.id === id);
  }

  append(entry: Entry): void {
    assert(entry.type === 'config', 'only config entries change membership');
    assert(entry.index > this.latestIndex, 'config entries arrive in log order');
    this.#history.push({ index: entry.index, configuration: decodeConfiguration(entry.data) });
    this.#refresh();
  }

  /** Forgets configurations from entries at or after `index` (the log was truncated there). */
  truncateFrom(index: number): void {
    while (this.#history.length > 1 && (this.#history[this.#history.length - 1] as ConfigAt).index >= index) this.#history.pop();
    this.#refresh();
  }

  /** Entries up to `index` are compacted: the configuration at `index` becomes the base. */
  compactTo(index: number): void {
    let keepFrom = 0;
    for (let k = 0; k < this.#history.length; k++) if ((this.#history[k] as ConfigAt).index <= index) keepFrom = k;
    this.#history = this.#history.slice(keepFrom);
  }

  /** A snapshot replaced the log. */
  restore(index: number, configuration: Configuration): void {
    this.#history = [{ index, configuration }];
    this.#refresh();
  }

  /** The configuration after `change`, or null when the change makes no sense. */
  apply(change: ConfigChange): Configuration | null {
    const servers = this.current.servers;
    const existing = servers.find((server) => server.id === change.id);
    let next: ServerEntry[];
    if (change.type === 'remove') {
      if (existing === undefined) return null;
      next = servers.filter((server) => server.id !== change.id);
    } else {
      const voter = change.type === 'add-voter';
      if (existing !== undefined && (existing.voter === voter || (existing.voter && !voter)) && existing.address === change.address) return null;
      const entry: ServerEntry = { id: change.id, address: change.address, voter: voter || (existing?.voter ?? false) };
      next = existing === undefined ? [...servers, entry] : servers.map((server) => (server.id === change.id ? entry : server));
    }
    if (!next.some((server) => server.voter)) return null;
    return { servers: next };
  }

  #refresh(): void {
    this.#voters = this.current.servers.filter((server) => server.voter).map((server) => server.id);
  }
}
