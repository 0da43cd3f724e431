/**
 * What every agent-talking command shares: building the client from its flags (and printing
 * Consul's connection error when the address is unusable), closing it afterwards, and the text
 * of a failed call.
 */
import type { CliIo } from './cli-io.js';
import { ApiError, ConsulClient } from './http-client.js';
import type { ClientSettings } from './http-client.js';

/** The flag values the client settings come from (`-datacenter` only where Consul has it). */
export interface ClientFlagValues {
  readonly 'http-addr': string;
  readonly token: string;
  readonly datacenter?: string;
}

/** The client settings of a command's flags. */
export function settingsOf(values: ClientFlagValues): ClientSettings {
  return { httpAddr: values['http-addr'], token: values.token, datacenter: values.datacenter ?? '' };
}

/**
 * Runs `body` with a client; an unusable address prints `<connectError>: <reason>` (Consul's
 * "Error connecting to Consul agent" or "Error initializing client") and exits 1.
 */
export async function withClient(values: ClientFlagValues, io: CliIo, connectError: string,
  body: (client: ConsulClient) => Promise<number>): Promise<number> {
  let client: ConsulClient;
  try {
    client = ConsulClient.create(settingsOf(values), io.env);
  } catch (error) {
    io.err(`${connectError}: ${messageOf(error)}`);
    return 1;
  }
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

/** The text of a failed call. Anything but an ApiError is a bug and is rethrown. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  throw error;
}

/** Consul's `Error connecting to Consul agent` prefix, used by most commands. */
export const CONNECT_ERROR = 'Error connecting to Consul agent';
