/**
 * `conclave services register|deregister`: Consul's `consul services` commands. A service comes
 * from flags (`-name -id -address -port -tag -meta`) or from JSON files in Consul's config format
 * (`{"service": {...}}` or `{"services": [...]}`, snake_case or CamelCase keys; HCL is not read),
 * and is sent to the agent's `/v1/agent/service/register`, which validates it.
 */
import type { CliIo } from './cli-io.js';
import { CONNECT_ERROR, messageOf, withClient } from './command.js';
import { parseCommandFlags } from './flags.js';
import type { FlagSpecs } from './flags.js';
import { ApiError, CLIENT_FLAGS, requireStatus } from './http-client.js';
import { dispatcher } from './subcommands.js';

const REGISTER_FLAGS = {
  ...CLIENT_FLAGS,
  name: { kind: 'string', usage: 'Name of the service to register.' },
  id: { kind: 'string', usage: 'ID of the service to register; the default is the name.' },
  address: { kind: 'string', usage: 'Address of the service; the default is the node\'s address.' },
  port: { kind: 'string', usage: 'Port of the service.' },
  tag: { kind: 'list', usage: 'Tag to add to the service; repeatable.' },
  meta: { kind: 'list', usage: 'Metadata as key=value; repeatable.' },
} as const satisfies FlagSpecs;

const DEREGISTER_FLAGS = {
  ...CLIENT_FLAGS,
  id: { kind: 'string', usage: 'ID of the service to deregister.' },
} as const satisfies FlagSpecs;

const REGISTER_HELP = `Usage: conclave services register [options] [FILE...]

  Registers a service with the local agent, from flags or from JSON service definition files
  (Consul's {"service": {...}} or {"services": [...]} format). The service is synced to the
  catalog by the agent's anti-entropy.`;

const DEREGISTER_HELP = `Usage: conclave services deregister [options] [FILE...]

  Deregisters a service from the local agent, by -id or by the services of definition files.`;

/** The service objects of a definition file (its `service`, `services`, or itself if it has a name). */
export function servicesOfFile(json: unknown, path: string): Record<string, unknown>[] {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${path}: expected a JSON object`);
  const entries = Object.entries(json as Record<string, unknown>);
  const found: Record<string, unknown>[] = [];
  for (const [key, value] of entries) {
    const lower = key.toLowerCase();
    if (lower === 'service' && typeof value === 'object' && value !== null && !Array.isArray(value)) found.push(value as Record<string, unknown>);
    if (lower === 'services' && Array.isArray(value)) {
      for (const item of value) if (typeof item === 'object' && item !== null && !Array.isArray(item)) found.push(item as Record<string, unknown>);
    }
  }
  if (found.length === 0 && entries.some(([key]) => key.toLowerCase() === 'name')) found.push(json as Record<string, unknown>);
  if (found.length === 0) throw new Error(`${path}: no "service" or "services" in the file`);
  return found;
}

/** A member of a definition, matched case-insensitively (as the agent matches it). */
function member(service: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(service).find((candidate) => candidate.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : service[key];
}

async function readDefinitions(io: CliIo, paths: readonly string[]): Promise<Record<string, unknown>[]> {
  const services: Record<string, unknown>[] = [];
  for (const path of paths) {
    if (!path.endsWith('.json')) throw new Error(`${path}: only JSON service definitions are supported (the name must end in .json)`);
    let json: unknown;
    try {
      json = JSON.parse((await io.readFile(path)).toString('utf8')) as unknown;
    } catch (error) {
      throw new Error(`${path}: ${(error as Error).message}`);
    }
    services.push(...servicesOfFile(json, path));
  }
  return services;
}

function definitionOfFlags(values: { name: string; id: string; address: string; port: string; tag: string[]; meta: string[] }): Record<string, unknown> | string {
  const meta: Record<string, string> = {};
  for (const pair of values.meta) {
    const equals = pair.indexOf('=');
    if (equals < 0) return `invalid value ${JSON.stringify(pair)} for flag -meta: Missing "=" value in argument: ${pair}`;
    meta[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  if (values.port !== '' && !/^\d+$/.test(values.port)) return `invalid value ${JSON.stringify(values.port)} for flag -port: parse error`;
  const service: Record<string, unknown> = { Name: values.name, Tags: values.tag, Meta: meta };
  if (values.id !== '') service['ID'] = values.id;
  if (values.address !== '') service['Address'] = values.address;
  if (values.port !== '') service['Port'] = Number(values.port);
  return service;
}

async function register(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, REGISTER_FLAGS, REGISTER_HELP, io);
  if (typeof parsed === 'number') return parsed;
  const { values, args } = parsed;
  if (args.length === 0 && values.name === '') {
    io.err('Service name must be specified via the -name flag or a service definition file');
    return 1;
  }
  if (args.length > 0 && values.name !== '') {
    io.err('Use either flags or service definition files, not both');
    return 1;
  }
  let services: Record<string, unknown>[];
  try {
    if (args.length > 0) services = await readDefinitions(io, args);
    else {
      const fromFlags = definitionOfFlags(values);
      if (typeof fromFlags === 'string') {
        io.err(fromFlags);
        return 1;
      }
      services = [fromFlags];
    }
  } catch (error) {
    io.err(`Error: ${(error as Error).message}`);
    return 1;
  }
  return withClient(values, io, CONNECT_ERROR, async (client) => {
    for (const service of services) {
      const name = String(member(service, 'name') ?? '');
      try {
        requireStatus(await client.call('PUT', '/v1/agent/service/register', [], JSON.stringify(service)));
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        io.err(`Error registering service ${JSON.stringify(name)}: ${messageOf(error)}`);
        return 1;
      }
      io.out(`Registered service: ${name}`);
    }
    return 0;
  });
}

async function deregister(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCommandFlags(argv, DEREGISTER_FLAGS, DEREGISTER_HELP, io);
  if (typeof parsed === 'number') return parsed;
  const { values, args } = parsed;
  if ((args.length === 0) === (values.id === '')) {
    io.err('Either a service ID (-id) or service definition files must be given, not both');
    return 1;
  }
  let ids: string[];
  try {
    ids = values.id !== '' ? [values.id] : (await readDefinitions(io, args)).map((service) => String(member(service, 'id') ?? member(service, 'name') ?? ''));
  } catch (error) {
    io.err(`Error: ${(error as Error).message}`);
    return 1;
  }
  return withClient(values, io, CONNECT_ERROR, async (client) => {
    for (const id of ids) {
      try {
        requireStatus(await client.call('PUT', `/v1/agent/service/deregister/${id}`));
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        io.err(`Error deregistering service ${JSON.stringify(id)}: ${messageOf(error)}`);
        return 1;
      }
      io.out(`Deregistered service: ${id}`);
    }
    return 0;
  });
}

/** `conclave services <subcommand>`. */
export const servicesCommand = dispatcher('services', 'Interacts with services registered with the local agent.', {
  register: { run: register, synopsis: 'Registers a service with the local agent' },
  deregister: { run: deregister, synopsis: 'Deregisters a service from the local agent' },
});
