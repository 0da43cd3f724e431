/**
 * The one error map (STYLE §6, RELIABILITY.md B1), consul-api.md §9 (status) and §10
 * (`/v1/agent/self`).
 */
import t from 'tap';
import { AssertionError } from '../../src/lib/assert.js';
import { BadRequestError, NoLeaderError, NotFoundError, OverloadedError, TooLargeError } from '../../src/lib/errors.js';
import { buildHttpApp } from '../../src/http/app.js';
import { statusOf } from '../../src/http/errors.js';
import type { Logger } from '../../src/lib/logger.js';
import { delegate, json, put, setup } from './helpers.js';
import { LocalAgent } from './local-agent.js';

t.test('AgentErrors answer with their status and text; write outcomes set X-Conclave-Outcome', async (t) => {
  let next: Error = new Error('unset');
  const f = await setup(t, {}, {}, (agent) => delegate(agent, {
    write: async () => { throw next; },
    query: async () => { throw next; },
  }));
  const cases: [Error, number, string | undefined][] = [
    [Object.assign(new NoLeaderError(), { outcome: 'not-applied' }), 500, 'not-applied'],
    [Object.assign(new NoLeaderError(), { outcome: 'unknown' }), 500, 'unknown'],
    [new NoLeaderError(), 500, undefined],
    [new OverloadedError('Too many requests'), 429, undefined],
    [new BadRequestError('bad'), 400, undefined],
    [new NotFoundError('gone'), 404, undefined],
  ];
  for (const [error, status, outcome] of cases) {
    next = error;
    const write = await f.request(put('k', 'v'));
    t.equal(write.statusCode, status, error.message);
    t.equal(write.body, error.message);
    t.equal(write.headers['content-type'], 'text/plain; charset=utf-8');
    t.equal(write.headers['x-conclave-outcome'], outcome, `${error.message}: outcome ${String(outcome)}`);
    const read = await f.request('/v1/kv/k');
    t.equal(read.statusCode, status);
    t.equal(read.headers['x-consul-index'], undefined, 'no meta headers on an error');
  }
  next = new TooLargeError('too big');
  const tooLarge = await f.request(put('k', 'v'));
  t.equal(tooLarge.statusCode, 413);
  t.equal(tooLarge.headers['connection'], 'close');
});

t.test('an unexpected error is a logged 500 with its text', async (t) => {
  const lines: string[] = [];
  const record = (message: string) => void lines.push(message);
  const logger: Logger = { debug: (_f, m) => record(m), info: (_f, m) => record(m), warn: (_f, m) => record(m), error: (_f, m) => record(m) };
  const agent = new LocalAgent();
  const app = buildHttpApp({
    agent: delegate(agent, { query: async () => { throw new TypeError('boom'); } }),
    logger,
    options: { onBug: () => undefined },
  });
  t.teardown(() => app.close());
  const response = await app.inject('/v1/kv/k');
  t.equal(response.statusCode, 500);
  t.equal(response.body, 'boom');
  t.ok(lines.includes('unexpected error'), 'logged at error level');
});

t.test('an AssertionError is a bug: onBug, no answer at all, never a 500', async (t) => {
  const bugs: Error[] = [];
  const agent = new LocalAgent();
  const app = buildHttpApp({
    agent: delegate(agent, { write: async () => { throw new AssertionError('broken invariant'); } }),
    options: { onBug: (error) => void bugs.push(error) },
  });
  t.teardown(() => app.close());
  let status: number | 'no answer' = 'no answer';
  try {
    status = (await app.inject(put('k', 'v'))).statusCode;
  } catch {
    status = 'no answer';
  }
  t.equal(status, 'no answer', 'the connection is dropped');
  t.same(bugs.map((bug) => bug.message), ['broken invariant']);
});

t.test('statusOf: validation errors are 400; Fastify client errors keep their 4xx; the rest is 500', async (t) => {
  t.equal(statusOf(Object.assign(new Error('body/x must be string'), { validation: [] })), 400);
  t.equal(statusOf(Object.assign(new Error('bad length'), { code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', statusCode: 400 })), 400);
  t.equal(statusOf(Object.assign(new Error('server'), { code: 'FST_ERR_SOMETHING', statusCode: 503 })), 500);
  t.equal(statusOf(Object.assign(new Error('not ours'), { statusCode: 404 })), 500);
  t.equal(statusOf(new NotFoundError('x')), 404);
});

t.test('status: the leader\'s Raft address ("" without one) and the peers; no meta; query-option 400s', async (t) => {
  const f = await setup(t);
  const leader = await f.request('/v1/status/leader');
  t.equal(leader.body, '"127.0.0.1:8300"');
  t.equal(leader.headers['content-type'], 'application/json');
  t.equal((await f.request('/v1/status/peers')).body, '["127.0.0.1:8300"]');
  t.equal((await f.request('/v1/status/leader?stale&consistent')).statusCode, 400);
  const leaderless = await setup(t, {}, {}, (agent) => delegate(agent, { leaderAddress: async () => '' }));
  t.equal((await leaderless.request('/v1/status/leader')).body, '""');
});

t.test('/v1/agent/self: Config, Member, Coord, Stats, Meta as clients read them', async (t) => {
  const f = await setup(t);
  const self = json<Record<string, Record<string, unknown>>>(await f.request('/v1/agent/self'));
  t.same(self['Config'], {
    Datacenter: 'dc1', PrimaryDatacenter: 'dc1', NodeName: 'local-node', NodeID: '0b9a3f6e-3c7a-4d3e-9a59-5f3f1d0c8e11',
    Revision: 'conclave', Server: true, Version: '1.16.4', BuildDate: '2026-11-27T00:00:00Z',
  });
  t.match(self['Member'], {
    Name: 'local-node', Addr: '127.0.0.1', Port: 8301, Status: 1,
    Tags: { role: 'consul', dc: 'dc1', port: '8300', id: '0b9a3f6e-3c7a-4d3e-9a59-5f3f1d0c8e11' },
    ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4,
  });
  t.same(self['DebugConfig'], {});
  t.match(self['Stats'], { build: { version: '1.16.4', revision: 'conclave' }, consul: { acl: 'disabled', server: 'true' } });
  t.same(self['Meta'], {});
  t.match(self['Coord'], { Vec: [0, 0, 0, 0, 0, 0, 0, 0] });
  const client = await setup(t, {}, {}, (agent) => delegate(agent, { info: { ...agent.info, server: false } }));
  const member = json<{ Member: { Tags: Record<string, string> } }>(await client.request('/v1/agent/self')).Member;
  t.equal(member.Tags['role'], 'node');
  t.equal(member.Tags['port'], undefined, 'only servers advertise a server port');
});
