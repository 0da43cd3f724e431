import t from 'tap';
import type { Test } from 'tap';
import { request } from 'undici';
import { startAgent } from '../../src/index.js';
import type { EmbeddedAgent } from '../../src/index.js';

/**
 * Found by the Tier 3 clock nemesis with only the wall clock faked (`clockWallOnly` in
 * test/net/tier3-run.ts): lock-delay followed the leader's wall clock. Every command is stamped
 * with the leader's `Date.now()` (nowMs); invalidateSession() (src/state/sessions.ts) stores the
 * lock-delay as nowMs + LockDelay in the replicated state, and the FSM refuses an acquire whose
 * stamp is below that. A leader whose wall clock stepped forward by D granted the acquire D
 * early; a new leader whose clock was ahead of the old one's cut it short by the skew. Seen in
 * Tier 3 (180 s, 16 steps and strobes of +2 s): 98 acquisitions inside a 2 s lock-delay.
 *
 * FIXED: as Consul does (agent/consul/state/delay.go, kvs_endpoint.go), every server notes each
 * lock-delay on its monotonic clock when it applies the invalidation, and the leader refuses an
 * acquire against that note before proposing, after applying everything committed
 * (ServerAgent #refuseUnderLockDelay). The acquire carries the applied index it was checked at,
 * and the state machine refuses it only for a lock-delay set by a later entry (an invalidation
 * that raced it through the log): deterministic on every server, no wall clock involved.
 * Entries written before (no index) keep the old deadline comparison.
 *
 * Steps here: one dev agent; session A (LockDelay 30 s) acquires a key and is destroyed; session
 * B's acquire is refused. Step this process's `Date.now()` (the agent's) forward 60 s; B asks
 * again: refused (30 s have not passed). And: LockDelay 1 s, destroy, step back 1 h, wait 1.5 s:
 * granted (it was refused for an hour).
 */

const realNow = Date.now.bind(Date);
/** Steps the wall clock of this process — and so of the agent running in it — by `offsetMs`. */
function stepWallClock(t: Test, offsetMs: number): void {
  Date.now = () => realNow() + offsetMs;
  t.teardown(() => {
    Date.now = realNow;
  });
}

async function put(agent: EmbeddedAgent, path: string, body: string): Promise<string> {
  const reply = await request(`${agent.httpAddress}${path}`, { method: 'PUT', body });
  const text = await reply.body.text();
  if (reply.statusCode !== 200) throw new Error(`PUT ${path}: ${reply.statusCode} ${text}`);
  return text;
}

async function session(agent: EmbeddedAgent, lockDelay: string): Promise<string> {
  return (JSON.parse(await put(agent, '/v1/session/create', JSON.stringify({ LockDelay: lockDelay }))) as { ID: string }).ID;
}

/** A session acquires `key` and is destroyed: the key is free and under lock-delay. */
async function invalidateHolder(t: Test, agent: EmbeddedAgent, key: string, lockDelay: string): Promise<void> {
  const holder = await session(agent, lockDelay);
  t.equal(await put(agent, `/v1/kv/${key}?acquire=${holder}`, 'a'), 'true', 'the first session acquires the key');
  await put(agent, `/v1/session/destroy/${holder}`, '');
}

t.test('lock-delay is not cut short by a wall-clock step forward on the leader', async (t) => {
  const agent = await startAgent({ httpPort: 0, serverPort: 0, logger: 'silent' });
  t.teardown(() => agent.close());
  await invalidateHolder(t, agent, 'delayed/forward', '30s');
  const waiter = await session(agent, '0s');
  t.equal(await put(agent, `/v1/kv/delayed/forward?acquire=${waiter}`, 'b'), 'false', 'refused inside the 30 s lock-delay');
  stepWallClock(t, 60_000);
  t.equal(await put(agent, `/v1/kv/delayed/forward?acquire=${waiter}`, 'b'), 'false', 'still refused after a +60 s wall-clock step (30 s have not passed)');
});

t.test('lock-delay is not stretched by a wall-clock step back on the leader', async (t) => {
  const agent = await startAgent({ httpPort: 0, serverPort: 0, logger: 'silent' });
  t.teardown(() => agent.close());
  await invalidateHolder(t, agent, 'delayed/back', '1s');
  const waiter = await session(agent, '0s');
  stepWallClock(t, -3_600_000);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.equal(await put(agent, `/v1/kv/delayed/back?acquire=${waiter}`, 'b'), 'true', 'granted 1.5 s after a 1 s lock-delay, across a −1 h wall-clock step');
});
