import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Child processes the harness starts (etcd members, Conclave servers, the stand-in, the no-op
 * server), each tracked by its own PID. Stopping only ever signals PIDs recorded here: other
 * engineers run their own servers on this machine, so nothing is killed by name.
 */

/** Every live child we started, so an interrupted run can still clean up exactly these. */
const livePids = new Set<number>();
let exitHandlersInstalled = false;

/** How long a polite SIGTERM gets before SIGKILL. */
const STOP_GRACE_MS = 5_000;

/** Kills (SIGKILL) every child still tracked: used on an interrupted or crashed run. */
export function killAllStarted(): void {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  livePids.clear();
}

/** On SIGINT/SIGTERM or exit, kill only the children this process started. */
export function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.on('exit', killAllStarted);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killAllStarted();
      process.exit(130);
    });
  }
}

/** One child process whose output goes to a log file, restartable with the same command. */
export class ManagedProcess {
  readonly name: string;
  readonly #command: string;
  readonly #args: readonly string[];
  readonly #logPath: string;
  readonly #env: NodeJS.ProcessEnv;
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();

  constructor(name: string, command: string, args: readonly string[], logPath: string, env: NodeJS.ProcessEnv = process.env) {
    this.name = name;
    this.#command = command;
    this.#args = args;
    this.#logPath = logPath;
    this.#env = env;
  }

  /** Spawns the process (appending to its log), and records its PID. */
  start(): void {
    if (this.#child !== null) throw new Error(`${this.name} is already running`);
    const log = openSync(this.#logPath, 'a');
    try {
      const child = spawn(this.#command, this.#args, { stdio: ['ignore', log, log], env: this.#env });
      if (child.pid === undefined) throw new Error(`${this.name}: spawn failed`);
      const pid = child.pid;
      livePids.add(pid);
      this.#child = child;
      this.#exited = new Promise<void>((resolve) => {
        child.once('exit', () => {
          livePids.delete(pid);
          if (this.#child === child) this.#child = null;
          resolve();
        });
      });
    } finally {
      closeSync(log);
    }
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  get logPath(): string {
    return this.#logPath;
  }

  /** SIGKILL, as a crash would: no chance to flush or say goodbye. Waits for the exit. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    child.kill('SIGKILL');
    await this.#exited;
  }

  /** SIGTERM, then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    child.kill('SIGTERM');
    const exited = await Promise.race([this.#exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
    if (!exited) await this.kill();
  }
}

/** `count` distinct free TCP ports on 127.0.0.1, held open together so none repeats. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, async () => {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    return server;
  }));
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map(async (server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}

/** Polls `check` until it returns true or `timeoutMs` passes; the error names what was awaited. */
export async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>, intervalMs = 100): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  while (performance.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(intervalMs);
  }
  const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}
