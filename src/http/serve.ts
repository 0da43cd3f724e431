/**
 * Listening is the caller's choice, kept out of buildHttpApp (tests use `inject()`). Consul
 * listens on :8500; tests pass port 0 and read the port back.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** Where the API is reachable once listening. */
export interface HttpListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Starts listening on `host:port` (port 0 = any free port) and returns the bound address. */
export async function listenHttp(app: FastifyInstance, host: string, port: number): Promise<HttpListenAddress> {
  await app.listen({ host, port });
  const address = app.server.address() as AddressInfo;
  return { host: address.address, port: address.port };
}
