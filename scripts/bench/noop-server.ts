import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

/**
 * The no-op server: node:http answering every request with the constant JSON body `true`
 * (what a Consul PUT answers), after reading the request. Driving it with the PUT workload
 * measures the load generator plus the cheapest possible Node HTTP server on this machine:
 * no result here can be faster than that. Run alone: node build/scripts/bench/noop-server.js --port P
 */

const BODY = Buffer.from('true');

/** A running no-op server. */
export interface NoopServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the no-op server in this process (tests); the runner starts it as its own process. */
export async function startNoopServer(port = 0): Promise<NoopServer> {
  const server = createServer((request, response) => {
    request.resume(); // drain the body; keep-alive needs it consumed
    request.on('end', () => {
      response.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': BODY.length });
      response.end(BODY);
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    port: actual,
    url: `http://127.0.0.1:${actual}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const at = process.argv.indexOf('--port');
  const server = await startNoopServer(at === -1 ? 0 : Number(process.argv[at + 1]));
  process.stdout.write(`listening ${server.port}\n`);
  const stop = (): void => { void server.close().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
