import { catalogCommand } from './catalog-command.js';
import { processIo } from './cli-io.js';
import type { CliIo } from './cli-io.js';
import { forceLeaveCommand } from './force-leave-command.js';
import { infoCommand } from './info-command.js';
import { joinCommand } from './join-command.js';
import { kvCommand } from './kv-command.js';
import { leaveCommand } from './leave-command.js';
import { membersCommand } from './members-command.js';
import { operatorCommand } from './operator-command.js';
import { servicesCommand } from './services-command.js';
import { sessionCommand } from './session-command.js';
import type { CommandRun } from './subcommands.js';
import { snapshotCommand } from './snapshot-command.js';
import { watchCommand } from './watch-command.js';

const USAGE = `Usage: conclave <command> [args]

Commands:
  agent        Runs a Conclave agent (Consul's flags: -server, -bootstrap-expect, -retry-join, -dev, ...)
  catalog      Interacts with the catalog (datacenters, nodes, services)
  force-leave  Forces a member of the cluster to enter the "left" state
  info         Provides debugging information for operators
  join         Tells a running agent to join the cluster
  kv           Interacts with the key-value store (get, put, delete, export, import)
  leave        Gracefully leaves the cluster and shuts down
  members      Lists the members of the cluster
  operator     Provides cluster-level tools for operators (raft list-peers, remove-peer, transfer-leader)
  services     Registers or deregisters services with the local agent
  session      Inspects sessions (list)
  snapshot     Saves and restores snapshots of the server state
  version      Prints the version
  watch        Watches a view of the catalog (-type service|services|nodes|checks)

Commands other than agent talk to an agent's HTTP API: -http-addr (or CONSUL_HTTP_ADDR),
default http://127.0.0.1:8500.
`;

/** The commands that talk to an agent's HTTP API (STYLE §2: argv → undici → output). */
const API_COMMANDS: Readonly<Record<string, CommandRun>> = {
  catalog: catalogCommand,
  'force-leave': forceLeaveCommand,
  info: infoCommand,
  join: joinCommand,
  kv: kvCommand,
  leave: leaveCommand,
  members: membersCommand,
  operator: operatorCommand,
  services: servicesCommand,
  session: sessionCommand,
  snapshot: snapshotCommand,
  watch: watchCommand,
};

/** Dispatches `conclave <command>`; returns the exit status. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== undefined && Object.hasOwn(API_COMMANDS, command)) return (API_COMMANDS[command] as CommandRun)(rest, io);
  switch (command) {
    case 'agent': {
      // Loaded on demand: the agent pulls in Raft, storage and Fastify, which would triple the
      // start-up time of every short API command.
      const { agentCommand } = await import('./agent-command.js');
      return agentCommand(rest);
    }
    case 'version':
    case '-version':
    case '--version':
      process.stdout.write('Conclave v0.1.0 (Consul API 1.16 compatible)\n');
      return 0;
    case undefined:
    case 'help':
    case '-h':
    case '--help':
      process.stdout.write(USAGE);
      return command === undefined ? 1 : 0;
    default:
      process.stderr.write(`Unknown command: ${command}\n\n${USAGE}`);
      return 1;
  }
}
