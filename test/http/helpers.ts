/**
 * Shared set-up of the HTTP tests: an app over a LocalAgent (the test double), torn down with
 * the test, plus small helpers to reach states without sleeping.
 */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { AgentApi } from '../../src/agent/agent-api.js';
import { buildHttpApp } from '../../src/http/app.js';
import type { HttpAppOptions } from '../../src/http/app.js';
import { LocalAgent } from './local-agent.js';
import type { LocalAgentOptions } from './local-agent.js';

/** The part of a tap test the helpers use. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** An app and the test double behind it. */
export interface Fixture {
  readonly app: FastifyInstance;
  readonly agent: LocalAgent;
  /** `app.inject` shorthand. */
  request(options: InjectOptions | string): Promise<LightMyRequestResponse>;
}

/** Builds an app over a fresh LocalAgent; both are closed when `t` ends. */
export async function setup(t: Teardown, options: HttpAppOptions = {}, agentOptions: LocalAgentOptions = {},
  wrap?: (agent: LocalAgent) => AgentApi): Promise<Fixture> {
  const agent = new LocalAgent(agentOptions);
  const bugs: Error[] = [];
  const app = buildHttpApp({
    agent: wrap === undefined ? agent : wrap(agent),
    options: { sessionTtlMinMs: 1000, onBug: (error) => bugs.push(error), ...options },
  });
  await app.ready();
  t.teardown(async () => {
    agent.close();
    await app.close();
    if (bugs.length > 0) throw new Error(`unexpected assertion failures: ${bugs.map((bug) => bug.message).join('; ')}`);
  });
  return { app, agent, request: (request) => app.inject(request) };
}

/**
 * Resolves once `count` blocking queries are parked in the state machine's watch index: lets a
 * test write only after its GET is waiting, with event-loop turns rather than sleeps.
 */
export async function waitForWaiters(agent: LocalAgent, count: number): Promise<void> {
  for (let turn = 0; turn < 10_000; turn++) {
    if (agent.fsm.waiterCount >= count) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`never saw ${count} blocking queries waiting`);
}

/** A PUT of a raw value; `query` is appended as is. */
export function put(key: string, value: string | Buffer, query = ''): InjectOptions {
  return { method: 'PUT', url: `/v1/kv/${key}${query}`, payload: value };
}

/** Creates a session (body as given) and returns its id. */
export async function createSession(fixture: Fixture, body: Record<string, unknown> = {}): Promise<string> {
  const response = await fixture.request({ method: 'PUT', url: '/v1/session/create', payload: body });
  if (response.statusCode !== 200) throw new Error(`session create failed: ${response.statusCode} ${response.body}`);
  return (JSON.parse(response.body) as { ID: string }).ID;
}

/** The parsed JSON body. */
export function json<T = unknown>(response: LightMyRequestResponse): T {
  return JSON.parse(response.body) as T;
}

/** An AgentApi that forwards to `agent`, except for what `overrides` replaces. */
export function delegate(agent: LocalAgent, overrides: Partial<AgentApi> = {}): AgentApi {
  return {
    info: agent.info,
    local: agent.local,
    write: (command) => agent.write(command),
    query: (query, options) => agent.query(query, options),
    renewSession: (id) => agent.renewSession(id),
    leaderAddress: () => agent.leaderAddress(),
    peerAddresses: () => agent.peerAddresses(),
    members: () => agent.members(),
    join: () => agent.join(),
    leave: () => agent.leave(),
    forceLeave: (node) => agent.forceLeave(node),
    raftConfiguration: () => agent.raftConfiguration(),
    removeRaftPeer: (id) => agent.removeRaftPeer(id),
    transferLeader: () => agent.transferLeader(),
    snapshotSave: () => agent.snapshotSave(),
    snapshotRestore: (archive) => agent.snapshotRestore(archive),
    stateDigest: () => agent.stateDigest(),
    raftStatus: () => agent.raftStatus(),
    ...overrides,
  };
}
