import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { ConfigError } from '../lib/errors.js';
import { nsToMs, parseGoDuration } from '../lib/go-duration.js';

/**
 * Agent configuration: defaults, Consul's JSON config files and Consul's command-line flags,
 * merged in that order (later wins, flags last) and validated once. Only this file knows
 * Consul's spelling of keys and flags; the rest of the code sees AgentConfig.
 */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export interface AgentConfig {
  readonly nodeName: string;
  /** Stable node/server id; generated and persisted in the data dir when null. */
  readonly nodeId: string | null;
  readonly datacenter: string;
  /** Required for servers; a client agent may run without one (nothing is persisted then). */
  readonly dataDir: string | null;
  readonly server: boolean;
  /** Bootstrap a single-server cluster at once (`-bootstrap`, `-dev`). */
  readonly bootstrap: boolean;
  /** Wait for this many servers, then bootstrap them together (0 = do not bootstrap). */
  readonly bootstrapExpect: number;
  /** Server RPC addresses (`host[:port]`) to keep trying until joined. */
  readonly retryJoin: readonly string[];
  /** Server RPC addresses to try once at start (`-join`). */
  readonly startJoin: readonly string[];
  /** Address the server port listens on. */
  readonly bindAddr: string;
  /** Address other agents use to reach us; defaults to bindAddr (or 127.0.0.1 if that is 0.0.0.0). */
  readonly advertiseAddr: string;
  /** Address the HTTP API listens on. */
  readonly clientAddr: string;
  readonly httpPort: number;
  readonly serverPort: number;
  /** DNS on UDP and TCP (Consul's `ports.dns`, `-dns-port`); 0 or -1 disables it. */
  readonly dnsPort: number;
  /** Consul's `enable_script_checks`: whether checks may run programs (`Args`). */
  readonly enableScriptChecks: boolean;
  readonly logLevel: LogLevel;
  readonly logJson: boolean;
  readonly ui: boolean;
  readonly pidFile: string | null;
  readonly dev: boolean;
  readonly nodeMeta: Readonly<Record<string, string>>;
  /** Shortest session TTL accepted (Consul's session_ttl_min; libkv's tests need 1s). */
  readonly sessionTtlMinMs: number;
  /** One Raft tick; heartbeats go every tick. */
  readonly raftTickMs: number;
  /** Minimum election timeout (randomized up to twice this). */
  readonly raftElectionTimeoutMs: number;
  readonly raftSnapshotThreshold: number;
  readonly raftTrailingLogs: number;
  /** How often every agent reports its status to a server. */
  readonly reportIntervalMs: number;
  /** A node not heard from for this long is marked critical (its serfHealth check). */
  readonly nodeTimeoutMs: number;
  /** Consul's rpc_hold_timeout: how long a request waits for a leader before failing. */
  readonly rpcHoldTimeoutMs: number;
  readonly kvMaxValueSize: number;
  /** Leave the cluster gracefully on SIGTERM (Consul: false for servers, true for clients). */
  readonly leaveOnTerminate: boolean;
  /** Do not leave on SIGINT (Consul: true for servers, false for clients). */
  readonly skipLeaveOnInterrupt: boolean;
}

export const DEFAULT_CONFIG: AgentConfig = {
  nodeName: hostname(),
  nodeId: null,
  datacenter: 'dc1',
  dataDir: null,
  server: false,
  bootstrap: false,
  bootstrapExpect: 0,
  retryJoin: [],
  startJoin: [],
  bindAddr: '0.0.0.0',
  advertiseAddr: '',
  clientAddr: '127.0.0.1',
  httpPort: 8500,
  serverPort: 8300,
  dnsPort: 8600,
  enableScriptChecks: false,
  logLevel: 'info',
  logJson: false,
  ui: false,
  pidFile: null,
  dev: false,
  nodeMeta: {},
  sessionTtlMinMs: 10_000,
  raftTickMs: 100,
  raftElectionTimeoutMs: 1000,
  raftSnapshotThreshold: 8192,
  raftTrailingLogs: 1024,
  reportIntervalMs: 1000,
  nodeTimeoutMs: 10_000,
  rpcHoldTimeoutMs: 7000,
  kvMaxValueSize: 512 * 1024,
  leaveOnTerminate: false,
  skipLeaveOnInterrupt: true,
};

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends readonly (infer U)[] ? U[] : T[K] };
type Draft = Partial<Mutable<AgentConfig>>;

// ------------------------------------------------------------------------------------------
// JSON config files (Consul's keys)

type Setter = (draft: Draft, value: unknown, where: string) => void;

const str = (field: keyof AgentConfig): Setter => (draft, value, where) => {
  if (typeof value !== 'string') throw new ConfigError(`${where}: expected a string`);
  (draft as Record<string, unknown>)[field] = value;
};
const bool = (field: keyof AgentConfig): Setter => (draft, value, where) => {
  if (typeof value !== 'boolean') throw new ConfigError(`${where}: expected true or false`);
  (draft as Record<string, unknown>)[field] = value;
};
const int = (field: keyof AgentConfig, min: number, max: number): Setter => (draft, value, where) => {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${where}: expected an integer between ${min} and ${max}`);
  }
  (draft as Record<string, unknown>)[field] = value;
};
const duration = (field: keyof AgentConfig): Setter => (draft, value, where) => {
  const parsed = typeof value === 'string' ? parseGoDuration(value) : null;
  if (parsed === null || !parsed.ok || parsed.ns < 0n) throw new ConfigError(`${where}: expected a duration such as "10s" or "500ms"${parsed !== null && !parsed.ok ? ` (${parsed.error})` : ''}`);
  const ms = nsToMs(parsed.ns);
  (draft as Record<string, unknown>)[field] = ms;
};
const stringList = (field: keyof AgentConfig): Setter => (draft, value, where) => {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw new ConfigError(`${where}: expected a list of strings`);
  (draft as Record<string, unknown>)[field] = [...value];
};

const PORT_KEYS: Readonly<Record<string, Setter | 'ignore-if-negative'>> = {
  http: int('httpPort', 0, 65535),
  server: int('serverPort', 0, 65535),
  dns: int('dnsPort', -1, 65535),
  serf_lan: 'ignore-if-negative',
  serf_wan: 'ignore-if-negative',
  grpc: 'ignore-if-negative',
  https: 'ignore-if-negative',
  grpc_tls: 'ignore-if-negative',
};

const KEYS: Readonly<Record<string, Setter>> = {
  node_name: str('nodeName'),
  node_id: str('nodeId'),
  datacenter: str('datacenter'),
  data_dir: str('dataDir'),
  server: bool('server'),
  bootstrap: bool('bootstrap'),
  bootstrap_expect: int('bootstrapExpect', 0, 15),
  retry_join: stringList('retryJoin'),
  start_join: stringList('startJoin'),
  bind_addr: str('bindAddr'),
  advertise_addr: str('advertiseAddr'),
  client_addr: str('clientAddr'),
  log_level: (draft, value, where) => {
    const level = typeof value === 'string' ? value.toLowerCase() : '';
    if (!['trace', 'debug', 'info', 'warn', 'error'].includes(level)) throw new ConfigError(`${where}: expected one of trace, debug, info, warn, error`);
    draft.logLevel = level as LogLevel;
  },
  log_json: bool('logJson'),
  ui: bool('ui'),
  pid_file: str('pidFile'),
  session_ttl_min: duration('sessionTtlMinMs'),
  raft_tick: duration('raftTickMs'),
  raft_election_timeout: duration('raftElectionTimeoutMs'),
  raft_snapshot_threshold: int('raftSnapshotThreshold', 16, 10_000_000),
  raft_trailing_logs: int('raftTrailingLogs', 0, 10_000_000),
  report_interval: duration('reportIntervalMs'),
  node_timeout: duration('nodeTimeoutMs'),
  rpc_hold_timeout: duration('rpcHoldTimeoutMs'),
  kv_max_value_size: int('kvMaxValueSize', 1, 16 * 1024 * 1024),
  enable_script_checks: bool('enableScriptChecks'),
  leave_on_terminate: bool('leaveOnTerminate'),
  skip_leave_on_interrupt: bool('skipLeaveOnInterrupt'),
  node_meta: (draft, value, where) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.values(value).every((v) => typeof v === 'string')) {
      throw new ConfigError(`${where}: expected an object of string values`);
    }
    draft.nodeMeta = { ...(value as Record<string, string>) };
  },
  ports: (draft, value, where) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${where}: expected an object`);
    for (const [key, port] of Object.entries(value)) {
      const setter = PORT_KEYS[key];
      if (setter === undefined) throw new ConfigError(`${where}.${key}: unknown port name (expected one of ${Object.keys(PORT_KEYS).join(', ')})`);
      if (setter === 'ignore-if-negative') {
        if (port !== -1) throw new ConfigError(`${where}.${key}: Conclave does not serve ${key} yet; set it to -1 or remove it`);
        continue;
      }
      setter(draft, port, `${where}.${key}`);
    }
  },
};

/**
 * Consul keys Conclave does not implement. A value that asks for what Conclave already does is
 * accepted with a warning; anything else is refused (the message says what Conclave can't do).
 */
const CONSUL_KEYS_TOLERATED: Readonly<Record<string, (value: unknown, draft: Draft) => string | null>> = {
  acl: (value) => (isObject(value) && value.enabled !== true ? null : 'ACLs are not supported yet; remove "acl" or set {"enabled": false}'),
  primary_datacenter: (value, draft) => (value === (draft.datacenter ?? DEFAULT_CONFIG.datacenter) ? null : 'only a single datacenter is supported: primary_datacenter must equal datacenter'),
  connect: (value) => (isObject(value) && value.enabled !== true ? null : 'Connect (service mesh) is not supported; set {"enabled": false}'),
  encrypt: () => 'gossip encryption is not supported (Conclave has no gossip layer); remove "encrypt"',
  verify_incoming: (value) => (value === false ? null : 'TLS is not supported yet; verify_incoming must be false'),
  verify_outgoing: (value) => (value === false ? null : 'TLS is not supported yet; verify_outgoing must be false'),
  disable_update_check: () => null,
  enable_debug: () => null,
  telemetry: () => null,
  ui_config: (value) => (isObject(value) ? null : 'ui_config must be an object'),
  // Services and checks come only from the HTTP API here (never from config files), so the
  // local-only switch has nothing to enable; `enable_script_checks` is the one that counts.
  enable_local_script_checks: (value) => (typeof value === 'boolean' ? null : 'enable_local_script_checks must be true or false'),
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface ConfigWarning {
  readonly where: string;
  readonly message: string;
}

/** Applies one parsed JSON config object; `source` names the file in every error. */
export function applyConfigObject(draft: Draft, object: unknown, source: string, warnings: ConfigWarning[]): void {
  if (!isObject(object)) throw new ConfigError(`${source}: the top level must be a JSON object`);
  for (const [key, value] of Object.entries(object)) {
    const where = `${source}: ${key}`;
    const setter = KEYS[key];
    if (setter !== undefined) {
      setter(draft, value, where);
      if (key === 'ui_config' && isObject(value) && typeof value.enabled === 'boolean') draft.ui = value.enabled;
      continue;
    }
    const tolerated = CONSUL_KEYS_TOLERATED[key];
    if (tolerated !== undefined) {
      const refusal = tolerated(value, draft);
      if (refusal !== null) throw new ConfigError(`${where}: ${refusal}`);
      if (key === 'ui_config' && typeof value === 'object' && value !== null && (value as { enabled?: unknown }).enabled === true) draft.ui = true;
      warnings.push({ where, message: 'accepted but not implemented by Conclave; it asks for what Conclave already does' });
      continue;
    }
    throw new ConfigError(`${where}: unknown configuration key`);
  }
}

/** Reads a JSON config file (Consul's `-config-file`). HCL is not supported. */
export function readConfigFile(path: string): unknown {
  if (!path.endsWith('.json')) throw new ConfigError(`${path}: only JSON config files are supported (the name must end in .json)`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`${path}: cannot read the file: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ConfigError(`${path}: invalid JSON: ${(error as Error).message}`);
  }
}

/** The `.json` files of a directory in lexical order (Consul's `-config-dir`). */
export function configDirFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    throw new ConfigError(`${dir}: cannot read the config directory: ${(error as Error).message}`);
  }
  return names
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile());
}

// ------------------------------------------------------------------------------------------
// Flags (Consul's spelling)

type FlagKind = 'bool' | 'value' | 'list';
const FLAGS: Readonly<Record<string, { kind: FlagKind; key: string }>> = {
  server: { kind: 'bool', key: 'server' },
  bootstrap: { kind: 'bool', key: 'bootstrap' },
  'bootstrap-expect': { kind: 'value', key: 'bootstrap_expect' },
  'retry-join': { kind: 'list', key: 'retry_join' },
  join: { kind: 'list', key: 'start_join' },
  bind: { kind: 'value', key: 'bind_addr' },
  advertise: { kind: 'value', key: 'advertise_addr' },
  client: { kind: 'value', key: 'client_addr' },
  'pid-file': { kind: 'value', key: 'pid_file' },
  ui: { kind: 'bool', key: 'ui' },
  'http-port': { kind: 'value', key: 'ports.http' },
  'server-port': { kind: 'value', key: 'ports.server' },
  'dns-port': { kind: 'value', key: 'ports.dns' },
  'data-dir': { kind: 'value', key: 'data_dir' },
  node: { kind: 'value', key: 'node_name' },
  'node-id': { kind: 'value', key: 'node_id' },
  datacenter: { kind: 'value', key: 'datacenter' },
  'config-file': { kind: 'list', key: '' },
  'config-dir': { kind: 'list', key: '' },
  dev: { kind: 'bool', key: '' },
  'log-level': { kind: 'value', key: 'log_level' },
  'log-json': { kind: 'bool', key: 'log_json' },
};

const NUMERIC_FLAG_KEYS = new Set(['bootstrap_expect', 'ports.http', 'ports.server', 'ports.dns']);

interface ParsedFlags {
  readonly object: Record<string, unknown>;
  readonly configSources: { kind: 'file' | 'dir'; path: string }[];
  readonly dev: boolean;
}

/** Parses `-flag`, `-flag=value`, `-flag value` (one or two dashes), as Go's flag package does. */
export function parseAgentFlags(argv: readonly string[]): ParsedFlags {
  const object: Record<string, unknown> = {};
  const ports: Record<string, unknown> = {};
  const configSources: { kind: 'file' | 'dir'; path: string }[] = [];
  let dev = false;
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k] as string;
    const match = /^--?([a-z][a-z-]*)(?:=(.*))?$/s.exec(arg);
    if (match === null) throw new ConfigError(`unexpected argument "${arg}" (flags look like -name=value)`);
    const name = match[1] as string;
    const flag = FLAGS[name];
    if (flag === undefined) throw new ConfigError(`flag provided but not defined: -${name}`);
    let value = match[2];
    if (flag.kind === 'bool') {
      if (value !== undefined && !['true', 'false', '1', '0'].includes(value)) throw new ConfigError(`invalid boolean value "${value}" for -${name}`);
      const on = value === undefined || value === 'true' || value === '1';
      if (name === 'dev') dev = on;
      else object[flag.key] = on;
      continue;
    }
    if (value === undefined) {
      value = argv[k + 1];
      k++;
      if (value === undefined) throw new ConfigError(`flag needs an argument: -${name}`);
    }
    if (name === 'config-file' || name === 'config-dir') {
      configSources.push({ kind: name === 'config-file' ? 'file' : 'dir', path: value });
      continue;
    }
    let parsed: unknown = value;
    if (NUMERIC_FLAG_KEYS.has(flag.key)) {
      // -1 disables a port (Consul's `-dns-port=-1`).
      if (!/^(\d+|-1)$/.test(value)) throw new ConfigError(`invalid value "${value}" for -${name}: expected a number`);
      parsed = Number(value);
    }
    if (flag.key.startsWith('ports.')) ports[flag.key.slice(6)] = parsed;
    else if (flag.kind === 'list') object[flag.key] = [...((object[flag.key] as string[] | undefined) ?? []), value];
    else object[flag.key] = parsed;
  }
  if (Object.keys(ports).length > 0) object.ports = ports;
  return { object, configSources, dev };
}

// ------------------------------------------------------------------------------------------

/** What `conclave agent -dev` means: one in-memory-ish server on loopback that bootstraps itself. */
const DEV_OVERRIDES: Draft = {
  server: true,
  bootstrap: true,
  bindAddr: '127.0.0.1',
  clientAddr: '127.0.0.1',
  ui: true,
  nodeName: hostname(),
};

/**
 * Builds the configuration from argv (`conclave agent` flags): defaults, then -dev, then config
 * files and dirs in the order given, then the other flags. Throws ConfigError naming the file,
 * the key and what is expected.
 */
export function loadAgentConfig(argv: readonly string[], overrides: Partial<AgentConfig> = {}): { config: AgentConfig; warnings: ConfigWarning[] } {
  const flags = parseAgentFlags(argv);
  const warnings: ConfigWarning[] = [];
  const draft: Draft = { ...(flags.dev ? { ...DEV_OVERRIDES, dev: true } : {}) };
  for (const source of flags.configSources) {
    const files = source.kind === 'file' ? [source.path] : configDirFiles(source.path);
    for (const file of files) applyConfigObject(draft, readConfigFile(file), file, warnings);
  }
  applyConfigObject(draft, flags.object, 'command line', warnings);
  const config = finishConfig({ ...draft, ...(overrides as Draft) });
  return { config, warnings };
}

/** Fills defaults and checks relations between values (hashicorp/raft's ValidateConfig). */
export function finishConfig(draft: Draft | Partial<AgentConfig>): AgentConfig {
  // Consul's defaults differ by mode: clients leave on SIGTERM and SIGINT, servers on neither.
  const server = draft.server ?? DEFAULT_CONFIG.server;
  const merged = { ...DEFAULT_CONFIG, leaveOnTerminate: !server, skipLeaveOnInterrupt: server, ...draft } as Mutable<AgentConfig>;
  if (merged.advertiseAddr === '') merged.advertiseAddr = merged.bindAddr === '0.0.0.0' ? '127.0.0.1' : merged.bindAddr;
  validateConfig(merged);
  return merged;
}

export function validateConfig(config: AgentConfig): void {
  if (!/^[a-zA-Z0-9_.-]{1,128}$/.test(config.nodeName)) throw new ConfigError(`node_name "${config.nodeName}": use letters, digits, '-', '_' or '.' (1–128 characters)`);
  if (!/^[a-zA-Z0-9_-]{1,64}$/.test(config.datacenter)) throw new ConfigError(`datacenter "${config.datacenter}": use letters, digits, '-' or '_'`);
  if (config.server && config.dataDir === null && !config.dev) throw new ConfigError('data_dir: a server needs a data directory (-data-dir)');
  if (config.bootstrap && config.bootstrapExpect > 0) throw new ConfigError('bootstrap and bootstrap_expect cannot both be set');
  if (!config.server && (config.bootstrap || config.bootstrapExpect > 0)) throw new ConfigError('bootstrap and bootstrap_expect need server mode (-server)');
  if (config.raftTickMs < 10) throw new ConfigError('raft_tick: must be at least 10ms');
  if (config.raftElectionTimeoutMs < 2 * config.raftTickMs) throw new ConfigError('raft_election_timeout: must be at least twice raft_tick');
  if (config.sessionTtlMinMs <= 0 || config.sessionTtlMinMs > 24 * 3600 * 1000) throw new ConfigError('session_ttl_min: must be between 1ns and 24h');
  if (config.nodeTimeoutMs < 2 * config.reportIntervalMs) throw new ConfigError('node_timeout: must be at least twice report_interval');
  if (config.httpPort !== 0 && config.httpPort === config.serverPort && config.clientAddr === config.bindAddr) throw new ConfigError('ports.http and ports.server must differ');
  if (config.dnsPort > 0 && config.dnsPort === config.httpPort) throw new ConfigError('ports.dns and ports.http must differ (both listen on client_addr over TCP)');
}
