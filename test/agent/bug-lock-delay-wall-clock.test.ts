import t from 'tap';
import type { Test } from 'tap';
import { request } from 'undici';
import { startAgent } from '../../src/index.js';
import type { EmbeddedAgent } from '../../src/index.js';

/**
 * BUG (found by the Tier 3 clock nemesis with only the wall clock faked, `clockWallOnly` in
 * test/net/tier3-run.ts): lock-delay follows the leader's wall clock, so an NTP step of the
 * leader's clock cuts it short or stretches it.
 *
 * Mechanism: ServerAgent.#propose stamps every command with the leader's `Date.now()` (nowMs);
 * invalidateSession() (src/state/sessions.ts) stores the lock-delay as nowMs + LockDelay in the
 * replicated KV state, and the FSM refuses an acquire while the acquire's own stamp is below
 * that (kv.isLockDelayed). A leader whose wall clock steps forward by D between the two grants
 * the acquire D early (D ≥ LockDelay: no lock-delay at all); a step back by D holds the key D
 * longer (an hour back: an hour); a new leader whose wall clock is ahead of the old one's cuts it
 * short by the skew.
 *
 * Consul (agent/consul/state/delay.go, kvs_endpoint.go) keeps lock-delay out of the replicated
 * state: each server notes `time.Now()` + delay in memory when it applies the invalidation, and
 * the leader checks that before it proposes an acquire. Go compares those times by their
 * monotonic readings, so wall-clock steps and skew between servers do not matter.
 *
 * Seen in Tier 3 (3 servers, 180 s, wall clock only, 16 steps and strobes of +2 s): 98
 * acquisitions inside a 2 s lock-delay, up to 1.9 s early, every one while the leader's wall
 * clock was stepped; 0 of any other anomaly.
 *
 * Steps here: one dev agent; session A (LockDelay 30 s) acquires a key and is destroyed; session
 * B's acquire is refused. Step this process's `Date.now()` (the agent's) forward 60 s; B asks
 * again. Expected: refused (30 s have not passed). Seen: granted. And: LockDelay 1 s, destroy,
 * step back 1 h, wait 1.5 s. Expected: granted. Seen: refused (for an hour).
 */

/** `CONCLAVE_SHOW_BUGS=1` runs known-bug tests as plain tests (they fail until fixed). */
const todo = process.env.CONCLAVE_SHOW_BUGS === '1' ? false : 'BUG: lock-delay follows the leader\'s wall clock';

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
  t.equal(await put(agent, `/v1/kv/delayed/forward?acquire=${waiter}`, 'b'), 'false', 'still refused after a +60 s wall-clock step (30 s have not passed)', { todo });
});

t.test('lock-delay is not stretched by a wall-clock step back on the leader', async (t) => {
  const agent = await startAgent({ httpPort: 0, serverPort: 0, logger: 'silent' });
  t.teardown(() => agent.close());
  await invalidateHolder(t, agent, 'delayed/back', '1s');
  const waiter = await session(agent, '0s');
  stepWallClock(t, -3_600_000);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.equal(await put(agent, `/v1/kv/delayed/back?acquire=${waiter}`, 'b'), 'true', 'granted 1.5 s after a 1 s lock-delay, across a −1 h wall-clock step', { todo });
});
