import type { Logger } from '../lib/logger.js';
import { NoLeaderError } from '../lib/errors.js';
import type { Configuration } from '../raft/core/types.js';
import { RPC_METHODS, parseHelloReply, parseJoinRequest } from '../rpc/methods.js';
import type { HelloReply } from '../rpc/methods.js';
import { fromRpcError } from '../rpc/errors.js';
import type { TcpTransport } from '../transport/tcp-transport.js';
import type { ServerAgent } from './server.js';

/**
 * How servers form a cluster (ARCHITECTURE.md "Bootstrapping a cluster"):
 * - `-bootstrap`: a lone server bootstraps itself at once;
 * - `-bootstrap-expect N` with `-retry-join`: servers exchange hellos; once one sees exactly N
 *   servers, all pristine and all expecting N, it bootstraps with that configuration (sorted by
 *   id — every founder computes the same one, so it does not matter who goes first);
 * - a pristine server that meets a server of an existing cluster asks to join instead, and the
 *   leader adds it as a non-voter (promoted once caught up) — unless that cluster's id is the one
 *   it would found itself with the servers it sees (a founder that came late to the round):
 *   then it bootstraps with the same configuration, as it would have a moment earlier;
 * A server with any Raft state never bootstraps again.
 */
const RETRY_INTERVAL_MS = 1000;
/** How often a server with state re-learns its peers' addresses from retry_join. */
const ADDRESS_REFRESH_MS = 5000;
const HELLO_TIMEOUT_MS = 2000;
/** Default server port appended to a retry_join address without one. */
const DEFAULT_SERVER_PORT = 8300;

export class ClusterFormation {
  readonly #server: ServerAgent;
  readonly #transport: TcpTransport;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #attempting = false;
  #joinedVia: string | null = null;

  constructor(server: ServerAgent, transport: TcpTransport, log: Logger) {
    this.#server = server;
    this.#transport = transport;
    this.#log = log;
    transport.handle(RPC_METHODS.hello, async () => this.#hello());
    transport.handle(RPC_METHODS.join, async (payload) => this.#onJoin(parseJoinRequest(payload)));
  }

  async start(): Promise<void> {
    const server = this.#server;
    const config = server.config;
    if (!server.node.isPristine) {
      // A restarted server never bootstraps, but its peers (or itself) may have come back on
      // other addresses (containers after `down`/`up`): keep learning where they are.
      if (config.retryJoin.length > 0 || config.startJoin.length > 0) {
        this.#timer = setInterval(() => void this.#refreshAddresses(), ADDRESS_REFRESH_MS);
        void this.#refreshAddresses();
      }
      return;
    }
    if (config.bootstrap) {
      await this.#bootstrap({ servers: [{ id: server.info.nodeId, address: server.advertisedRpcAddress, voter: true }] });
      return;
    }
    if (config.retryJoin.length === 0 && config.startJoin.length === 0 && config.bootstrapExpect === 0) return;
    this.#timer = setInterval(() => void this.#attempt(), RETRY_INTERVAL_MS);
    void this.#attempt();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** `PUT /v1/agent/join/<address>` and `-join`: asks the cluster at `address` to add us. */
  async joinVia(address: string): Promise<void> {
    const hello = await this.#callHello(withPort(address));
    if (hello === null) throw new Error(`cannot reach ${address}`);
    if (hello.clusterId === null) throw new Error(`${address} is not part of a cluster yet`);
    await this.#requestJoin(withPort(address), hello);
  }

  #hello(): HelloReply {
    const server = this.#server;
    return {
      id: server.info.nodeId,
      address: server.advertisedRpcAddress,
      clusterId: server.clusterId,
      pristine: server.node.isPristine,
      bootstrapExpect: server.config.bootstrapExpect,
      term: server.node.term,
    };
  }

  /**
   * For a server with state: asks every retry_join address who is there, and points the
   * transport at each known server's current address (learned addresses win over the Raft
   * configuration's). If our own entry in the configuration is stale, asks the leader to
   * update it, as a membership change that keeps our vote.
   */
  async #refreshAddresses(): Promise<void> {
    if (this.#attempting || this.#stopped) return;
    this.#attempting = true;
    try {
      const server = this.#server;
      const addresses = [...new Set([...server.config.retryJoin, ...server.config.startJoin].map(withPort))];
      const replies = await Promise.all(addresses.map((address) => this.#callHello(address)));
      for (const hello of replies) {
        if (hello === null || hello.id === server.info.nodeId) continue;
        if (hello.clusterId !== null && server.clusterId !== null && hello.clusterId !== server.clusterId) continue;
        server.learnPeerAddress(hello.id, hello.address);
      }
      // Data dirs of founders that missed the id before #attempt learned it.
      if (server.clusterId === null) await this.#learnClusterId();
      const self = server.node.configuration.servers.find((entry) => entry.id === server.info.nodeId);
      const leaderId = server.node.leaderId;
      if (self !== undefined && self.address !== server.advertisedRpcAddress && leaderId !== null && leaderId !== server.info.nodeId) {
        const leader = server.peerAddress(leaderId);
        if (leader !== null) {
          this.#log.info({ from: self.address, to: server.advertisedRpcAddress }, 'our address changed: asking the leader to update the configuration');
          await this.#transport.call(leader, RPC_METHODS.join, { id: server.info.nodeId, address: server.advertisedRpcAddress }, { timeoutMs: 10_000 });
        }
      } else if (self !== undefined && self.address !== server.advertisedRpcAddress && leaderId === server.info.nodeId) {
        await this.#onJoin({ id: server.info.nodeId, address: server.advertisedRpcAddress });
      }
    } catch (error) {
      this.#log.debug({ err: error }, 'address refresh failed');
    } finally {
      this.#attempting = false;
    }
  }

  async #attempt(): Promise<void> {
    if (this.#attempting || this.#stopped) return;
    const server = this.#server;
    if (!server.node.isPristine && server.clusterId !== null) {
      this.stop();
      return;
    }
    this.#attempting = true;
    try {
      if (!server.node.isPristine) {
        // A founder whose own bootstrap came too late (another founder's messages gave it state
        // first), or a server that joined through a leader without an id: it is a member, but
        // must still learn the cluster id, or its hellos tell a wiped server rejoining that
        // there is no cluster to join (found by test/faults/bitflip.test.ts).
        await this.#learnClusterId();
        if (server.clusterId !== null) this.stop();
        return;
      }
      const addresses = [...new Set([...server.config.retryJoin, ...server.config.startJoin].map(withPort))];
      const replies = await Promise.all(addresses.map(async (address) => ({ address, hello: await this.#callHello(address) })));
      // A pristine server has no configuration yet, so it would not know where to answer a
      // founder's vote requests: learn every peer's address from its hello.
      for (const reply of replies) {
        if (reply.hello !== null && reply.hello.id !== server.info.nodeId) this.#transport.setPeerAddress(reply.hello.id, reply.hello.address);
      }
      // The other servers, once each (two retry_join addresses may reach the same one).
      const hellos = [...new Map(replies.flatMap((reply) => (reply.hello === null || reply.hello.id === server.info.nodeId ? [] : [[reply.hello.id, reply.hello] as const]))).values()];
      const existing = replies.find((reply) => reply.hello !== null && reply.hello.clusterId !== null && reply.hello.id !== server.info.nodeId);
      if (existing?.hello != null) {
        const clusterId = existing.hello.clusterId as string;
        const late = this.#lateFounding(clusterId, hellos);
        if (late !== null) {
          // Another founder bootstrapped a moment before our attempt: we would have founded the
          // same cluster with the same servers, so we bootstrap the same configuration (the
          // same first entry). Asking to join instead waits for a leader, and if the only
          // founder with state does not campaign soon (a long election timeout), for ever.
          this.#log.info({ clusterId }, 'a founder bootstrapped just before us: bootstrapping the same configuration');
          await this.#bootstrap(late);
          return;
        }
        if (this.#joinedVia === null) await this.#requestJoin(existing.address, existing.hello);
        return;
      }
      const expect = server.config.bootstrapExpect;
      if (expect === 0) return;
      const founders = hellos.filter((hello) => hello.pristine);
      if (founders.length + 1 < expect) {
        this.#log.info({ seen: founders.length + 1, expect }, 'waiting for servers before bootstrapping');
        return;
      }
      const mismatched = founders.filter((hello) => hello.bootstrapExpect !== expect);
      if (founders.length + 1 > expect || mismatched.length > 0) {
        this.#log.error({ seen: founders.length + 1, expect, mismatched: mismatched.map((h) => h.address) }, 'servers disagree on bootstrap_expect: not bootstrapping');
        return;
      }
      await this.#bootstrap(this.#foundingConfiguration(founders));
    } catch (error) {
      this.#log.warn({ err: error }, 'cluster formation attempt failed');
    } finally {
      this.#attempting = false;
    }
  }

  /** The configuration founders bootstrap with: us and the other founders, sorted by id. */
  #foundingConfiguration(others: readonly HelloReply[]): Configuration {
    const founders = [this.#hello(), ...others].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { servers: founders.map((hello) => ({ id: hello.id, address: hello.address, voter: true })) };
  }

  /**
   * The configuration to bootstrap with when a founder has just bootstrapped `clusterId` without
   * us, or null. Only if we expect N servers, see exactly N expecting N (pristine, or founded
   * `clusterId` and still in term 1: no election yet, so the cluster is as it was founded), and
   * founding with them gives `clusterId` — the id is a hash of the founders' ids, so those are
   * the servers it was founded with, and the first entry is the same. A cluster that has moved
   * on (a later term) is joined instead: a wiped founder that kept its node id must not come
   * back as a founder of a configuration that may have changed since.
   */
  #lateFounding(clusterId: string, hellos: readonly HelloReply[]): Configuration | null {
    const expect = this.#server.config.bootstrapExpect;
    if (expect === 0) return null;
    const founders = hellos.filter((hello) => hello.bootstrapExpect === expect && (hello.pristine || (hello.clusterId === clusterId && hello.term <= 1)));
    if (founders.length + 1 !== expect) return null;
    const configuration = this.#foundingConfiguration(founders);
    return (this.#server.constructor as typeof ServerAgent).clusterIdFor(configuration) === clusterId ? configuration : null;
  }

  async #bootstrap(configuration: Configuration): Promise<void> {
    const server = this.#server;
    const clusterId = (server.constructor as typeof ServerAgent).clusterIdFor(configuration);
    if (await server.node.bootstrap(configuration)) {
      server.adoptClusterId(clusterId);
      server.refreshPeers();
      this.stop();
    }
    // Refused: another founder's messages gave us state first; the next attempt learns the id.
  }

  /**
   * A member without a cluster id adopts the one a server of its configuration reports (that
   * server is in the same cluster by definition). Checked by id: an address may have changed hands.
   */
  async #learnClusterId(): Promise<void> {
    const server = this.#server;
    const peers = server.node.configuration.servers.filter((entry) => entry.id !== server.info.nodeId);
    // A peer of our configuration that already told us in a handshake (it may be gone since:
    // the founder whose bootstrap gave us our state, then wiped).
    for (const peer of peers) {
      const reported = this.#transport.clusterIdReportedBy(peer.id);
      if (reported === null) continue;
      this.#log.info({ clusterId: reported, from: peer.id }, 'learned the cluster id from a peer\'s handshake');
      server.adoptClusterId(reported);
      return;
    }
    const replies = await Promise.all(peers.map(async (peer) => ({ peer, hello: await this.#callHello(server.peerAddress(peer.id) ?? peer.address) })));
    for (const { peer, hello } of replies) {
      if (hello === null || hello.id !== peer.id || hello.clusterId === null) continue;
      this.#log.info({ clusterId: hello.clusterId, from: peer.id }, 'learned the cluster id from a peer');
      server.adoptClusterId(hello.clusterId);
      return;
    }
  }

  async #requestJoin(address: string, hello: HelloReply): Promise<void> {
    const server = this.#server;
    this.#log.info({ via: address, clusterId: hello.clusterId }, 'joining an existing cluster');
    const reply = (await this.#transport.call(address, RPC_METHODS.join, { id: server.info.nodeId, address: server.advertisedRpcAddress }, { timeoutMs: 15_000 })) as { clusterId?: unknown };
    if (typeof reply.clusterId === 'string') server.adoptClusterId(reply.clusterId);
    this.#joinedVia = address;
  }

  /** A server asks to join: the leader adds it as a non-voter (forwarded there if we follow). */
  async #onJoin(request: { id: string; address: string }): Promise<{ clusterId: string | null }> {
    const server = this.#server;
    const node = server.node;
    if (node.role !== 'leader') {
      const leaderId = node.leaderId;
      const leader = leaderId === null ? undefined : node.configuration.servers.find((s) => s.id === leaderId);
      if (leader === undefined) throw new NoLeaderError();
      try {
        return (await this.#transport.call(leader.address, RPC_METHODS.join, request, { timeoutMs: 10_000 })) as { clusterId: string | null };
      } catch (error) {
        throw fromRpcError(error);
      }
    }
    const member = node.configuration.servers.find((s) => s.id === request.id);
    const predecessor = node.configuration.servers.find((s) => s.id !== request.id && s.address === request.address);
    if (member === undefined && predecessor !== undefined) {
      // A server at the same address with another id: the same machine with a wiped data
      // directory. Its old identity can never come back, so it goes first (Consul's leader
      // removes a dead server replaced by a new one the same way).
      this.#log.info({ old: predecessor.id, new: request.id, address: request.address }, 'replacing a server whose data was wiped');
      await node.changeMembership({ type: 'remove', id: predecessor.id });
    }
    if (member === undefined) {
      this.#log.info({ server: request.id, address: request.address }, 'adding a server as non-voter');
      this.#server.learnPeerAddress(request.id, request.address);
      await node.changeMembership({ type: 'add-nonvoter', id: request.id, address: request.address });
    } else if (member.address !== request.address) {
      // A known server came back elsewhere: same id, same vote, new address.
      this.#log.info({ server: request.id, from: member.address, to: request.address }, 'updating a server\'s address');
      this.#server.learnPeerAddress(request.id, request.address);
      await node.changeMembership({ type: member.voter ? 'add-voter' : 'add-nonvoter', id: request.id, address: request.address });
    }
    return { clusterId: server.clusterId };
  }

  async #callHello(address: string): Promise<HelloReply | null> {
    try {
      return parseHelloReply(await this.#transport.call(address, RPC_METHODS.hello, {}, { timeoutMs: HELLO_TIMEOUT_MS }));
    } catch (error) {
      this.#log.debug({ err: error, address }, 'hello failed');
      return null;
    }
  }
}

/** `host` → `host:8300`; `host:port` and `[v6]:port` unchanged. */
export function withPort(address: string): string {
  if (/^\[.*\]:\d+$/.test(address) || /^[^:]+:\d+$/.test(address)) return address;
  return `${address}:${DEFAULT_SERVER_PORT}`;
}
