/**
 * Commands with subcommands (`kv get`, `catalog nodes`, `operator raft list-peers`): dispatch
 * by the first argument; no subcommand or an unknown one prints the list on stderr and exits 1,
 * help (`-h`) prints it on stdout and exits 0.
 */
import type { CliIo } from './cli-io.js';

/** A command: argv (after its name) → exit code. */
export type CommandRun = (argv: readonly string[], io: CliIo) => Promise<number>;

/** A subcommand and its one-line synopsis. */
export interface Subcommand {
  readonly run: CommandRun;
  readonly synopsis: string;
}

/** The usage text listing `subcommands` of `name`. */
function listing(name: string, synopsis: string, subcommands: Readonly<Record<string, Subcommand>>): string {
  const names = Object.keys(subcommands).sort();
  const width = Math.max(...names.map((sub) => sub.length));
  const lines = names.map((sub) => `    ${sub.padEnd(width)}    ${(subcommands[sub] as Subcommand).synopsis}`);
  return `Usage: conclave ${name} <subcommand> [options] [args]\n\n  ${synopsis}\n\nSubcommands:\n${lines.join('\n')}`;
}

/** A command made of subcommands. */
export function dispatcher(name: string, synopsis: string, subcommands: Readonly<Record<string, Subcommand>>): CommandRun {
  return async (argv, io) => {
    const [sub, ...rest] = argv;
    if (sub === '-h' || sub === '-help' || sub === '--help') {
      io.out(listing(name, synopsis, subcommands));
      return 0;
    }
    const subcommand = sub !== undefined && Object.hasOwn(subcommands, sub) ? subcommands[sub] : undefined;
    if (subcommand === undefined) {
      io.err(listing(name, synopsis, subcommands));
      return 1;
    }
    return subcommand.run(rest, io);
  };
}
