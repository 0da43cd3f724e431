import t from 'tap';
import { FaultCluster } from './fault-cluster.js';
import { delay, httpCall } from './http-ops.js';
import { ELECTION_TIMEOUT_MAX_MS, readValue, writeUntilOk } from './scenarios.js';
import { reportSuiteTotals } from './suite-summary.js';

/**
 * BUG (found by the zombie-leader test; the lead fixes src/): a leader resumed after SIGSTOP
 * answers a default GET from its stale state when the request is already waiting in its socket.
 *
 * Mechanism (src/raft/node.ts): on wake-up the timers phase runs #onTimer first, which adds the
 * owed ticks to #pendingTicks and moves #lastTickAt up to now, then schedules the turn that steps
 * those ticks with setImmediate (check phase). The poll phase comes in between: the HTTP request
 * is read, `read(lease=true)` calls #leaseUsable(), where core.isLeaseValid() still counts the
 * ticks from before the pause and `performance.now() - #lastTickAt < 1.5 ticks` now holds — so
 * the read returns at once, with a value the new leader has overwritten seconds ago. The guard
 * meant for exactly this case (the comment above #leaseUsable) is defeated by #onTimer.
 * A fix: #leaseUsable() must also require #pendingTicks === 0 (or step the owed ticks before
 * the lease is consulted).
 *
 * Steps: 3 servers; PUT k=before through the leader L; SIGSTOP L for 3 election timeouts while
 * PUT k=after goes through the others (a new leader commits it); send GET /v1/kv/k to L while it
 * is still stopped; SIGCONT L. Expected: "after" or an error. Seen: "before" (most trials, more
 * often on a loaded machine).
 */
reportSuiteTotals(t, 'bug-lease-after-pause');
t.setTimeout(600_000);

/** `CONCLAVE_SHOW_BUGS=1` runs known-bug tests as plain tests (they fail until fixed). */
const todo = false; // fixed: kept as a regression test

t.test('a resumed old leader does not answer a default GET from stale state', { todo, timeout: 300_000 }, async (t) => {
  const fc = await FaultCluster.create({ servers: 3 });
  t.teardown(() => fc.destroy());
  fc.startAll();
  for (let trial = 1; trial <= 6; trial++) {
    const leader = await fc.settle(60_000);
    const key = `lease-bug/${trial}`;
    await writeUntilOk(fc, key, 'before', [leader]);
    const others = fc.names.filter((n) => n !== leader);
    await fc.cluster.kill(leader, 'SIGSTOP');
    let reply;
    try {
      await delay(3 * ELECTION_TIMEOUT_MAX_MS);
      await writeUntilOk(fc, key, 'after', others, 60_000);
      reply = httpCall(fc.dispatcher, `${fc.url(leader)}/v1/kv/${key}`, 'GET', null, 10_000);
      await delay(100);
    } finally {
      await fc.cluster.kill(leader, 'SIGCONT');
    }
    const value = readValue(await reply);
    t.not(value, 'before', `trial ${trial}: the old leader ${leader} does not return the overwritten value (got ${String(value)})`);
  }
});
