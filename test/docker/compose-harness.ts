import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { createServer } from 'node:net';

/**
 * The repository's docker-compose.yml driven from a test: one compose project per run
 * (`conclave-e2e-<random>`), its own image tag, free host ports, and an override file that only
 * adds a test config file (short session_ttl_min and rpc_hold_timeout) to every server. Only the
 * project's containers, network and volumes and the image tag made here are ever removed.
 */

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command without a shell; never throws for a non-zero exit (check `code`). */
export function run(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CommandResult> {
  return new Promise((resolveRun) => {
    execFile(
      file,
      [...args],
      { env: options.env ?? process.env, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, cwd: options.cwd ?? process.cwd(), killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolveRun({ code, stdout: String(stdout), stderr: String(stderr) + (error !== null && typeof error.code !== 'number' ? `\n${error.message}` : '') });
      },
    );
  });
}

export async function mustRun(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<string> {
  const result = await run(file, args, options);
  if (result.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${result.code}:\n${result.stderr.slice(-4000)}\n${result.stdout.slice(-2000)}`);
  return result.stdout;
}

/** Why docker can't be used here, or null when a daemon answers. */
export async function dockerUnavailable(): Promise<string | null> {
  const info = await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 20_000 });
  if (info.code !== 0) return `no Docker daemon is reachable (\`docker info\` failed: ${(info.stderr.trim().split('\n').pop() ?? '').slice(0, 300)}); run scripts/ci-docker.sh to install and start one`;
  return null;
}

/** `docker compose` (v2) when the plugin is there, else `docker-compose` (1.29); CONCLAVE_COMPOSE=v1|v2 forces one. */
export async function findCompose(): Promise<{ file: string; prefix: string[]; version: string }> {
  const forced = process.env.CONCLAVE_COMPOSE;
  if (forced !== 'v1') {
    const v2 = await run('docker', ['compose', 'version', '--short'], { timeoutMs: 20_000 });
    if (v2.code === 0) return { file: 'docker', prefix: ['compose'], version: `docker compose ${v2.stdout.trim()}` };
    if (forced === 'v2') throw new Error(`CONCLAVE_COMPOSE=v2 but \`docker compose\` fails: ${v2.stderr}`);
  }
  const v1 = await run('docker-compose', ['version', '--short'], { timeoutMs: 20_000 });
  if (v1.code === 0) return { file: 'docker-compose', prefix: [], version: `docker-compose ${v1.stdout.trim()}` };
  throw new Error('neither `docker compose` nor `docker-compose` works (apt-get install -y docker-compose, or run scripts/ci-docker.sh)');
}

export const SERVICES = ['server1', 'server2', 'server3'] as const;
export type Service = (typeof SERVICES)[number] | 'client1';

export interface HttpAnswer {
  readonly status: number;
  readonly index: number;
  readonly knownLeader: string | undefined;
  readonly text: string;
}

export class ComposeProject {
  readonly name = `conclave-e2e-${randomBytes(4).toString('hex')}`;
  readonly image = `${this.name}:test`;
  readonly root: string;
  readonly dir = mkdtempSync(join(tmpdir(), 'conclave-e2e-'));
  readonly ports = new Map<Service, number>();
  readonly env: NodeJS.ProcessEnv;
  readonly compose: { file: string; prefix: string[]; version: string };
  readonly log: (line: string) => void;
  #cleaned = false;

  private constructor(compose: { file: string; prefix: string[]; version: string }, root: string, ports: number[], base: { image: string; cafile: string }, log: (line: string) => void) {
    this.compose = compose;
    this.root = root;
    this.log = log;
    ['server1', 'server2', 'server3', 'client1'].forEach((service, k) => this.ports.set(service as Service, ports[k] as number));
    chmodSync(this.dir, 0o755);
    // The only test setting: TTLs of 2 s allowed, and a short wait for a leader so a cut-off
    // server answers "No cluster leader" quickly. Read after config/server.json (lexical order).
    const testConfig = join(this.dir, 'zz-e2e.json');
    writeFileSync(testConfig, `${JSON.stringify({ session_ttl_min: '1s', rpc_hold_timeout: '2s' }, null, 2)}\n`);
    chmodSync(testConfig, 0o644);
    const override = SERVICES.map((service) => `  ${service}:\n    volumes:\n      - ${testConfig}:/etc/conclave/zz-e2e.json:ro\n`).join('');
    writeFileSync(join(this.dir, 'docker-compose.e2e.yml'), `services:\n${override}`);
    this.env = {
      ...process.env,
      COMPOSE_DOCKER_CLI_BUILD: '0',
      DOCKER_BUILDKIT: '0',
      CONCLAVE_IMAGE: this.image,
      CONCLAVE_BASE_IMAGE: base.image,
      CONCLAVE_NPM_CAFILE: base.cafile,
      CONCLAVE_PUBLISH_ADDR: '127.0.0.1',
      CONCLAVE_HTTP_PORT1: String(this.ports.get('server1')),
      CONCLAVE_HTTP_PORT2: String(this.ports.get('server2')),
      CONCLAVE_HTTP_PORT3: String(this.ports.get('server3')),
      CONCLAVE_CLIENT_HTTP_PORT: String(this.ports.get('client1')),
    };
  }

  /**
   * The base image: CONCLAVE_BASE_IMAGE if set; node:20-bookworm-slim if present locally; else the
   * local stand-in built by scripts/docker-base-image.sh (with the host's CA bundle for npm).
   */
  static async create(log: (line: string) => void): Promise<ComposeProject> {
    const compose = await findCompose();
    const root = resolve(process.env.CONCLAVE_E2E_ROOT ?? '.');
    if (!existsSync(join(root, 'docker-compose.yml'))) throw new Error(`${root}/docker-compose.yml not found (run from the repository root)`);
    let base = { image: process.env.CONCLAVE_BASE_IMAGE ?? '', cafile: process.env.CONCLAVE_NPM_CAFILE ?? '' };
    if (base.image === '') {
      if ((await run('docker', ['image', 'inspect', 'node:20-bookworm-slim'])).code === 0) {
        base = { image: 'node:20-bookworm-slim', cafile: base.cafile };
      } else {
        await mustRun(join(root, 'scripts/docker-base-image.sh'), [], { timeoutMs: 300_000 });
        base = { image: 'conclave-base:node20', cafile: base.cafile === '' ? '/etc/ssl/certs/ca-certificates.crt' : base.cafile };
      }
    }
    const ports = await portsOutsideEphemeralRange(4);
    const project = new ComposeProject(compose, root, ports, base, log);
    log(`compose: ${compose.version}; project ${project.name}; base image ${base.image}; ports ${ports.join(', ')}`);
    return project;
  }

  #composeArgs(args: readonly string[], profile = false): string[] {
    return [...this.compose.prefix, '-p', this.name, '-f', join(this.root, 'docker-compose.yml'), '-f', join(this.dir, 'docker-compose.e2e.yml'), ...(profile ? ['--profile', 'client'] : []), ...args];
  }

  async composeRun(args: readonly string[], options: { timeoutMs?: number; profile?: boolean } = {}): Promise<string> {
    return mustRun(this.compose.file, this.#composeArgs(args, options.profile ?? false), { env: this.env, timeoutMs: options.timeoutMs ?? 180_000, cwd: this.root });
  }

  readonly #ids = new Map<Service, string>();

  /** The service's container (cached: call forgetContainers() after `down`). */
  async containerId(service: Service): Promise<string> {
    const cached = this.#ids.get(service);
    if (cached !== undefined) return cached;
    const id = (await this.composeRun(['ps', '-a', '-q', service], { profile: service === 'client1' })).trim();
    if (!/^[0-9a-f]{12,64}$/.test(id)) throw new Error(`no container for ${service}: "${id}"`);
    this.#ids.set(service, id);
    return id;
  }

  forgetContainers(): void {
    this.#ids.clear();
  }

  async networkName(): Promise<string> {
    return `${this.name}_default`;
  }

  /** The service container's address on the project network ('' when it has none). */
  async ipOf(service: Service): Promise<string> {
    const id = await this.containerId(service);
    return (await mustRun('docker', ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', id])).trim();
  }

  async health(service: Service): Promise<string> {
    const id = await this.containerId(service);
    return (await mustRun('docker', ['inspect', '-f', '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}', id])).trim();
  }

  /** One HTTP request to a service's published port. */
  async http(service: Service, method: 'GET' | 'PUT' | 'DELETE', path: string, body?: string, timeoutMs = 10_000, signal?: AbortSignal): Promise<HttpAnswer> {
    const port = this.ports.get(service) as number;
    const timeout = AbortSignal.timeout(timeoutMs);
    const response = await request(`http://127.0.0.1:${port}${path}`, {
      method,
      ...(body === undefined ? {} : { body }),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: signal === undefined ? timeout : AbortSignal.any([timeout, signal]),
    });
    const text = await response.body.text();
    const leader = response.headers['x-consul-knownleader'];
    return { status: response.statusCode, index: Number(response.headers['x-consul-index'] ?? 0), knownLeader: typeof leader === 'string' ? leader : undefined, text };
  }

  /**
   * One HTTP request made from inside a container to its own agent (127.0.0.1:8500), for a
   * server whose published port is gone because it is cut off from the network.
   */
  async httpInside(service: Service, method: 'GET' | 'PUT' | 'DELETE', path: string, body = '', timeoutMs = 15_000): Promise<HttpAnswer> {
    const id = await this.containerId(service);
    const script = `
      const http = require('node:http');
      const req = http.request({ host: '127.0.0.1', port: 8500, method: process.argv[1], path: process.argv[2] }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, index: Number(res.headers['x-consul-index'] ?? 0), knownLeader: res.headers['x-consul-knownleader'], text })));
      });
      req.on('error', (e) => { console.log(JSON.stringify({ status: 0, index: 0, text: String(e) })); });
      req.end(process.argv[3]);`;
    const out = await mustRun('docker', ['exec', id, 'node', '-e', script, method, path, body], { timeoutMs });
    return JSON.parse(out.trim().split('\n').pop() ?? '{}') as HttpAnswer;
  }

  /** Logs of every service, for a failure report. */
  async logs(tail = 60): Promise<string> {
    const result = await run(this.compose.file, this.#composeArgs(['logs', '--no-color', '--tail', String(tail)], true), { env: this.env, timeoutMs: 60_000, cwd: this.root });
    return result.stdout + result.stderr;
  }

  /**
   * Removes everything this project made: containers, network, volumes (`down -v`) and the image
   * tag (`rmi --no-prune` keeps the parent layers, the build cache of the next run). Synchronous,
   * so it can also run from a signal handler; safe to call more than once.
   */
  cleanup(): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    const opts = { env: this.env, cwd: this.root, timeout: 180_000, encoding: 'utf8' as const };
    const down = spawnSync(this.compose.file, this.#composeArgs(['down', '-v', '--remove-orphans', '-t', '5'], true), opts);
    if (down.status !== 0) this.log(`cleanup: compose down failed: ${down.stderr}`);
    // Anything compose lost track of (e.g. a container cut off from its network).
    for (const kind of ['container', 'network', 'volume'] as const) {
      const listed = spawnSync('docker', [kind, 'ls', ...(kind === 'container' ? ['-a'] : []), '-q', '--filter', `label=com.docker.compose.project=${this.name}`], opts);
      const ids = listed.stdout.split('\n').filter((id) => id !== '');
      if (ids.length > 0) spawnSync('docker', kind === 'container' ? ['rm', '-f', '-v', ...ids] : [kind, 'rm', ...ids], opts);
    }
    spawnSync('docker', ['rmi', '--no-prune', this.image], opts);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

/** Polls `probe` until it returns a value (not undefined) or the time runs out. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === null ? '' : `: ${String(lastError)}`}`);
    await sleep(intervalMs);
  }
}

/**
 * Host ports for the published HTTP ports, from 20000–29999: below the kernel's ephemeral range
 * (32768+), where every other test's ports come from (port 0). An ephemeral port is only free
 * for a moment — a test that kills an agent and restarts it on the same port leaves a gap, and
 * once docker took such a port in that gap, that test's writes landed in this cluster (the CI
 * run saw `failover/t10` change in it).
 */
async function portsOutsideEphemeralRange(count: number): Promise<number[]> {
  const ports: number[] = [];
  let candidate = 20_000 + Math.floor(Math.random() * 9_000);
  while (ports.length < count && candidate < 30_000) {
    if (await bindable(candidate)) ports.push(candidate);
    candidate++;
  }
  if (ports.length < count) throw new Error('no free ports in 20000–29999 for the compose test');
  return ports;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolveBindable) => {
    const server = createServer();
    server.once('error', () => resolveBindable(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveBindable(true)));
  });
}
