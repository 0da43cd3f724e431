import { agentCommand } from './agent-command.js';

const USAGE = `Usage: conclave <command> [args]

Commands:
  agent     Runs a Conclave agent (Consul's flags: -server, -bootstrap-expect, -retry-join, -dev, ...)
  version   Prints the version
`;

/** Dispatches `conclave <command>`; returns the exit status. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'agent':
      return agentCommand(rest);
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
