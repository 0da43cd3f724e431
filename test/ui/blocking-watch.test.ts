/**
 * The live-update loop on a fake clock: blocking queries with the last index, nothing handed on
 * when the index did not move, a reset when it went backwards, exponential back-off on failures
 * with a non-blocking retry, polling for endpoints that cannot block, one request in flight at
 * most, and a bounded request rate whatever the server does.
 */
import t from 'tap';
import { ApiClient } from '../../src/ui/lib/api-client.js';
import type { FetchLike } from '../../src/ui/lib/api-client.js';
import { Watch, backoffMs, withQuery } from '../../src/ui/lib/blocking-watch.js';
import type { WatchState, WatchTimers } from '../../src/ui/lib/blocking-watch.js';

/** Timers that run only when the test advances time. */
class FakeClock implements WatchTimers {
  #now = 0;
  #nextId = 1;
  readonly #timers = new Map<number, { at: number; callback: () => void }>();
  setTimeout(callback: () => void, delayMs: number): unknown {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + delayMs, callback });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  now(): number {
    return this.#now;
  }
  random(): number {
    return 0.5; // jitter factor 1.0
  }
  /** Runs every timer due within `ms`, in order, letting promise chains settle in between. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      await settle();
      const due = [...this.#timers.entries()].filter(([, timer]) => timer.at <= target).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.#now = due[1].at;
      due[1].callback();
    }
    this.#now = target;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
}

/** A request the test answers by hand. */
interface PendingRequest {
  readonly url: string;
  readonly signal: AbortSignal | undefined;
  answer(status: number, body: string, index?: number, knownLeader?: boolean): void;
  fail(error: Error): void;
}

function fakeServer(): { fetch: FetchLike; requests: PendingRequest[] } {
  const requests: PendingRequest[] = [];
  const fetchFake: FetchLike = (url, init) => new Promise((resolve, reject) => {
    init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
    requests.push({
      url,
      signal: init.signal,
      answer: (status, body, index, knownLeader = true) => {
        const headers = new Headers();
        if (index !== undefined) headers.set('x-consul-index', String(index));
        headers.set('x-consul-knownleader', String(knownLeader));
        resolve({ status, headers, text: async () => body });
      },
      fail: (error) => reject(error),
    });
  });
  return { fetch: fetchFake, requests };
}

function setup(overrides: { mode?: 'blocking' | 'poll' } = {}) {
  const clock = new FakeClock();
  const server = fakeServer();
  const data: unknown[] = [];
  const states: WatchState[] = [];
  const watch = new Watch<unknown>({
    client: new ApiClient(server.fetch),
    path: '/v1/kv/a/?keys&separator=/',
    mode: overrides.mode ?? 'blocking',
    accept: [200, 404],
    pollIntervalMs: 1000,
    decode: ({ body }) => body,
    onData: (value) => data.push(value),
    onState: (state) => states.push(state),
    timers: clock,
  });
  return { clock, requests: server.requests, data, states, watch };
}

t.test('blocks on the last index and hands on only changes', async (t) => {
  const { clock, requests, data, states, watch } = setup();
  watch.start();
  await clock.advance(0);
  t.equal(requests.length, 1);
  t.equal(requests[0]?.url, '/v1/kv/a/?keys&separator=/', 'the first request answers at once');
  requests[0]?.answer(200, '["a/x"]', 5);
  await clock.advance(0);
  t.same(data, [['a/x']]);
  t.equal(requests.length, 1, 'the next request waits for the spacing');
  await clock.advance(250);
  t.equal(requests[1]?.url, '/v1/kv/a/?keys&separator=/&index=5&wait=30s');
  requests[1]?.answer(200, '["a/x"]', 5); // the wait ended with nothing new
  await clock.advance(250);
  t.equal(data.length, 1, 'same index: nothing handed on');
  t.equal(requests[2]?.url, '/v1/kv/a/?keys&separator=/&index=5&wait=30s');
  requests[2]?.answer(404, '', 7);
  await clock.advance(250);
  t.same(data, [['a/x'], null], 'a 404 (accepted) with a new index is data');
  t.equal(requests.length, 4);
  t.match(states.at(-1), { kind: 'live', index: 7, knownLeader: true });
  watch.stop();
  t.ok(requests[3]?.signal?.aborted, 'stop aborts the request in flight');
  await clock.advance(60_000);
  t.equal(requests.length, 4, 'nothing after stop');
});

t.test('an index that went backwards starts over', async (t) => {
  const { clock, requests, data, watch } = setup();
  watch.start();
  await clock.advance(0);
  requests[0]?.answer(200, '[1]', 50);
  await clock.advance(250);
  requests[1]?.answer(200, '[2]', 12); // a snapshot restore
  await clock.advance(250);
  t.same(data, [[1], [2]]);
  t.equal(requests[2]?.url, '/v1/kv/a/?keys&separator=/', 'asks again without an index');
  requests[2]?.answer(200, '[2]', 12);
  await clock.advance(250);
  t.equal(data.length, 2, 'the same data is not handed on twice');
  t.equal(requests[3]?.url, '/v1/kv/a/?keys&separator=/&index=12&wait=30s');
  watch.stop();
});

t.test('failures back off exponentially and retry without blocking', async (t) => {
  const { clock, requests, states, watch } = setup();
  watch.start();
  await clock.advance(0);
  requests[0]?.answer(200, '[]', 9);
  await clock.advance(250);
  requests[1]?.fail(new TypeError('fetch failed'));
  await clock.advance(0);
  t.match(states.at(-1), { kind: 'retrying', attempt: 1, retryInMs: 1000, error: { kind: 'unreachable' } });
  await clock.advance(999);
  t.equal(requests.length, 2, 'nothing during the back-off');
  await clock.advance(1);
  t.equal(requests[2]?.url, '/v1/kv/a/?keys&separator=/', 'the retry does not block: recovery shows at once');
  requests[2]?.answer(500, 'No cluster leader');
  await clock.advance(0);
  t.match(states.at(-1), { kind: 'retrying', attempt: 2, retryInMs: 2000, error: { kind: 'no-leader' } });
  await clock.advance(2000);
  requests[3]?.answer(500, 'rpc error making call: No cluster leader');
  await clock.advance(0);
  t.match(states.at(-1), { kind: 'retrying', attempt: 3, retryInMs: 4000 });
  watch.retryNow();
  await clock.advance(0);
  t.equal(requests.length, 5, 'retryNow cuts the back-off short');
  requests[4]?.answer(200, '[]', 9);
  await clock.advance(0);
  t.match(states.at(-1), { kind: 'live', index: 9 });
  await clock.advance(250);
  requests[5]?.fail(new TypeError('fetch failed'));
  await clock.advance(0);
  t.match(states.at(-1), { kind: 'retrying', attempt: 1 }, 'a success resets the back-off');
  watch.stop();
});

t.test('back-off grows to 30 s and stays there', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 7, 50].map((attempt) => backoffMs(attempt, 0.5)), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  t.equal(backoffMs(1, 0), 800, '-20 % jitter');
  t.equal(backoffMs(1, 0.999999), 1200, '+20 % jitter');
  t.equal(withQuery('/v1/x', 'index=1'), '/v1/x?index=1');
  t.equal(withQuery('/v1/x?keys', 'index=1'), '/v1/x?keys&index=1');
});

t.test('a request that never answers is given up after wait × 1.0625 plus grace', async (t) => {
  const { clock, requests, states, watch } = setup();
  watch.start();
  await clock.advance(0);
  requests[0]?.answer(200, '[]', 3);
  await clock.advance(250);
  await clock.advance(30 * 1062.5 + 15_000 - 1);
  t.notOk(requests[1]?.signal?.aborted);
  await clock.advance(1);
  t.ok(requests[1]?.signal?.aborted);
  t.match(states.at(-1), { kind: 'retrying', error: { kind: 'unreachable', message: /did not answer in time/ } });
  watch.stop();
});

t.test('no storm: a server answering at once with ever new indexes gets at most 4 requests a second', async (t) => {
  const { clock, requests, watch } = setup();
  watch.start();
  let answered = 0;
  for (let step = 0; step < 400; step++) { // 10 s of fake time in 25 ms steps
    while (answered < requests.length) {
      requests[answered]?.answer(200, '[]', 100 + answered);
      answered++;
    }
    await clock.advance(25);
  }
  t.ok(requests.length <= 41, `${requests.length} requests in 10 s`);
  t.ok(requests.length >= 35, 'but it keeps up');
  watch.stop();
});

t.test('one request in flight at most, whatever happens', async (t) => {
  const { clock, requests, watch } = setup();
  watch.start();
  await clock.advance(0);
  watch.retryNow();
  watch.retryNow();
  await clock.advance(10_000);
  t.equal(requests.length, 1, 'retryNow does not start a second request while one waits');
  watch.stop();
});

t.test('an endpoint without X-Consul-Index is polled, not hammered', async (t) => {
  const { clock, requests, data, watch } = setup();
  watch.start();
  await clock.advance(0);
  requests[0]?.answer(200, '"10.0.0.1:8300"');
  await clock.advance(999);
  t.equal(requests.length, 1);
  await clock.advance(1);
  t.equal(requests.length, 2);
  t.equal(requests[1]?.url, '/v1/kv/a/?keys&separator=/', 'never an index=0 blocking query');
  requests[1]?.answer(200, '"10.0.0.1:8300"');
  await clock.advance(0);
  t.equal(data.length, 2, 'without an index every answer is handed on');
  watch.stop();
});

t.test('poll mode: one request per interval, every answer handed on', async (t) => {
  const { clock, requests, data, watch } = setup({ mode: 'poll' });
  watch.start();
  await clock.advance(0);
  requests[0]?.answer(200, '{"term":2}', 40);
  await clock.advance(1000);
  requests[1]?.answer(200, '{"term":2}', 40);
  await clock.advance(0);
  t.equal(data.length, 2, 'poll mode hands on every answer');
  t.notOk(requests[1]?.url.includes('index='), 'poll mode never blocks');
  watch.stop();
});

t.test('a paused watch (hidden tab) asks nothing and catches up on resume', async (t) => {
  const { clock, requests, data, states, watch } = setup();
  watch.start();
  await clock.advance(0);
  requests[0]?.answer(200, '["a"]', 5);
  await clock.advance(250);
  t.equal(requests.length, 2, 'blocking on index 5');
  watch.pause();
  await clock.advance(0);
  t.ok(requests[1]?.signal?.aborted, 'pausing hangs up the blocking query: its connection is freed');
  t.notMatch(states.at(-1), { kind: 'retrying' }, 'hanging up is not a failure');
  await clock.advance(10 * 60_000);
  t.equal(requests.length, 2, 'nothing is asked while paused');
  watch.resume();
  await clock.advance(0);
  t.equal(requests[2]?.url, '/v1/kv/a/?keys&separator=/', 'resume asks at once, without blocking');
  requests[2]?.answer(200, '["a","b"]', 9);
  await clock.advance(0);
  t.same(data, [['a'], ['a', 'b']], 'what changed meanwhile shows');
  watch.stop();
  const early = setup();
  early.watch.pause();
  early.watch.start();
  await early.clock.advance(5000);
  t.equal(early.requests.length, 0, 'a watch paused before it starts waits for resume');
  early.watch.resume();
  await early.clock.advance(0);
  t.equal(early.requests.length, 1);
  early.watch.stop();
});
