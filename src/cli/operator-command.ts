/**
 * `conclave operator raft list-peers|remove-peer`: Consul's operator commands
 * (command/operator/raft): the peer table (Node, ID, Address, State, Voter, RaftProtocol,
 * Commit Index, Trails Leader By) and removing a server from the Raft configuration by
 * `-id` or `-address`.
 */
import { goQuote } from '../state/go-quote.js';
import type { CliIo } from './cli-io.js';
import { columnize } from './columns.js';
import { messageOf, withClient } from './command.js';
import { parseCommandFlags } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { ApiError, CLIENT_FLAGS, SERVER_FLAGS, jsonOf, requireStatus } from './http-client.js';
import type { ConsulClient } from './http-client.js';
import { dispatcher } from './subcommands.js';

/** Consul's operator commands say this when the client cannot be built. */
const INIT_ERROR = 'Error initializing client';

const LIST_FLAGS = { ...CLIENT_FLAGS, ...SERVER_FLAGS } as const satisfies FlagSpecs;

const REMOVE_FLAGS = {
  ...CLIENT_FLAGS,
  ...SERVER_FLAGS,
  address: { kind: 'string', usage: 'The address to remove from the Raft configuration.' },
  id: { kind: 'string', usage: 'The ID to remove from the Raft configuration.' },
} as const satisfies FlagSpecs;

/** A server of `/v1/operator/raft/configuration`. */
interface RaftServer {
  readonly ID: string;
  readonly Node: string;
  readonly Address: string;
  readonly Leader: boolean;
  readonly Voter: boolean;
  readonly ProtocolVersion: string;
  readonly LastIndex?: number;
}

/** Consul's raftListPeers table. */
async function peerTable(client: ConsulClient, stale: boolean): Promise<string> {
  let reply: { Servers: RaftServer[] };
  try {
    reply = jsonOf(await client.call('GET', '/v1/operator/raft/configuration', stale ? [['stale', '']] : [])) as { Servers: RaftServer[] };
  } catch (error) {
    throw new ApiError(`Failed to retrieve raft configuration: ${messageOf(error)}`, { cause: error });
  }
  const leaderIndex = reply.Servers.find((server) => server.Leader)?.LastIndex ?? 0;
  const rows = reply.Servers.map((server) => {
    const lastIndex = server.LastIndex ?? 0;
    const trails = leaderIndex - lastIndex;
    let trailsText = server.LastIndex === undefined || server.Leader ? '-' : `${trails} commits`;
    if (!server.Leader && server.LastIndex !== undefined && trails === 1) trailsText = '1 commit';
    return [server.Node, server.ID, server.Address, server.Leader ? 'leader' : 'follower', String(server.Voter),
      server.ProtocolVersion === '' ? '<=1' : server.ProtocolVersion, String(lastIndex), trailsText];
  });
  return columnize([['Node', 'ID', 'Address', 'State', 'Voter', 'RaftProtocol', 'Commit Index', 'Trails Leader By'], ...rows]);
}

async function listPeers(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, LIST_FLAGS, 'Usage: conclave operator raft list-peers [options]\n\n  Displays the current Raft peer configuration.', io);
  if (typeof parsed === 'number') return parsed;
  return withClient(parsed.values, io, INIT_ERROR, async (client) => {
    try {
      io.out(await peerTable(client, parsed.values.stale));
      return 0;
    } catch (error) {
      io.err(`Error getting peers: ${messageOf(error)}`);
      return 1;
    }
  });
}

async function removePeer(argv: readonly string[], io: CliIo): Promise<number> {
  const help = 'Usage: conclave operator raft remove-peer [options]\n\n  Remove the server with the given -address or -id from the Raft configuration.';
  const parsed = parseCommandFlags(argv, REMOVE_FLAGS, help, io);
  if (typeof parsed === 'number') return parsed;
  const { address, id } = parsed.values;
  return withClient(parsed.values, io, INIT_ERROR, async (client) => {
    try {
      if (address === '' && id === '') throw new ApiError('an address or id is required for the peer to remove');
      if (address !== '' && id !== '') throw new ApiError('cannot give both an address and id');
      requireStatus(await client.call('DELETE', '/v1/operator/raft/peer', address !== '' ? [['address', address]] : [['id', id]]));
    } catch (error) {
      io.err(`Error removing peer: ${messageOf(error)}`);
      return 1;
    }
    io.out(address !== '' ? `Removed peer with address ${goQuote(address)}` : `Removed peer with id ${goQuote(id)}`);
    return 0;
  });
}

const TRANSFER_FLAGS = {
  ...CLIENT_FLAGS,
  ...SERVER_FLAGS,
  id: { kind: 'string', usage: 'The ID of the server to transfer leadership to (default: the most up-to-date one).' },
} as const satisfies FlagSpecs;

async function transferLeader(argv: readonly string[], io: CliIo): Promise<number> {
  const help = 'Usage: conclave operator raft transfer-leader [options]\n\n  Transfer Raft leadership to another server.';
  const parsed = parseCommandFlags(argv, TRANSFER_FLAGS, help, io);
  if (typeof parsed === 'number') return parsed;
  const { id } = parsed.values;
  return withClient(parsed.values, io, INIT_ERROR, async (client) => {
    try {
      requireStatus(await client.call('PUT', '/v1/operator/raft/transfer-leader', id !== '' ? [['id', id]] : []));
    } catch (error) {
      io.err(`Error transferring leadership: ${messageOf(error)}`);
      return 1;
    }
    io.out('Success');
    return 0;
  });
}

const raftCommand = dispatcher('operator raft', 'Provides cluster-level tools for Raft.', {
  'list-peers': { run: listPeers, synopsis: 'Display the current Raft peer configuration' },
  'remove-peer': { run: removePeer, synopsis: 'Remove a server from the Raft configuration' },
  'transfer-leader': { run: transferLeader, synopsis: 'Transfer Raft leadership to another server' },
});

/** `conclave operator <subcommand>`. */
export const operatorCommand = dispatcher('operator', 'Provides cluster-level tools for operators.', {
  raft: { run: raftCommand, synopsis: 'Provides cluster-level tools for Raft' },
});
