/**
 * Every bound of the DNS server, named, with its reason (STYLE §5). A query that hits one is
 * dropped (UDP), closed (TCP) or answered SERVFAIL; it never grows memory or stalls the agent.
 */
import { assert } from '../lib/assert.js';

/** RFC 1035 §4.2.1: a UDP answer without EDNS fits 512 bytes, else it is truncated (TC). */
export const DNS_UDP_BYTES_DEFAULT = 512;

/** The largest UDP answer we send to an EDNS client (its advertised size is capped at this). */
export const DNS_UDP_BYTES_MAX = 4096;

/** Consul's `udp_answer_limit` default: instances per UDP answer; more set the TC flag. */
export const DNS_UDP_ANSWERS_MAX = 3;

/**
 * Instances per TCP answer: a service with thousands of instances must not make a 64 KiB
 * message fail to encode. An SRV record and its A record take about 70 bytes.
 */
export const DNS_TCP_ANSWERS_MAX = 256;

/** RFC 1035 §4.2.2: a TCP message is prefixed by a 16-bit length. */
export const DNS_TCP_MESSAGE_BYTES_MAX = 65_535;

/** UDP queries being answered at once; more are dropped (the client retries). */
export const DNS_UDP_INFLIGHT_MAX = 1024;

/** TCP connections at once; more are closed at accept. */
export const DNS_TCP_CONNECTIONS_MAX = 256;

/** Messages waiting on one TCP connection (answered in order); more close the connection. */
export const DNS_TCP_PENDING_MAX = 16;

/** A TCP connection idle this long is closed (RFC 7766 §6.2.3 suggests seconds). */
export const DNS_TCP_IDLE_MS = 10_000;

/** A lookup that takes longer (no leader, a slow forward) is answered SERVFAIL. */
export const DNS_QUERY_TIMEOUT_MS = 5000;

assert(DNS_UDP_BYTES_DEFAULT <= DNS_UDP_BYTES_MAX, 'the default UDP size is within the maximum');
assert(DNS_TCP_ANSWERS_MAX * 2 * 80 < DNS_TCP_MESSAGE_BYTES_MAX, 'a maximal TCP answer fits one message');
