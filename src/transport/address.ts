import { IDENTIFIER_LENGTH_MAX } from './limits.js';

/** A dialable TCP endpoint. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses "host:port", "1.2.3.4:8300" or "[::1]:8300" (Consul's spelling of server addresses).
 * Returns null for anything else, including port 0, which cannot be dialled.
 */
export function parseAddress(address: string): HostPort | null {
  if (address.length > IDENTIFIER_LENGTH_MAX) return null;
  const colon = address.lastIndexOf(':');
  if (colon <= 0) return null;
  let host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (!/^[0-9]{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > 65_535) return null;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  else if (host.includes(':')) return null; // a bare IPv6 address is ambiguous: brackets required
  if (host.length === 0) return null;
  return { host, port };
}

/** Formats a host and port the way parseAddress reads them back. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
