import { ConfigError } from '../../lib/errors.js';
import type { ServerId } from './types.js';
import {
  APPEND_ENTRIES_BYTES_MAX,
  APPEND_ENTRIES_COUNT_MAX,
  INFLIGHT_MESSAGES_MAX,
  PROPOSAL_BYTES_MAX,
  SNAPSHOT_CHUNK_BYTES,
  UNCOMMITTED_BYTES_MAX,
} from './limits.js';

/**
 * Tuning of one Raft core. Time is counted in ticks; the driver decides how long a tick is
 * (100 ms by default, so an election timeout of 10 ticks is 1–2 s once randomized).
 */
export interface RaftConfig {
  readonly id: ServerId;
  /** Minimum election timeout; the actual one is drawn from [this, 2 × this). */
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  /** Raft thesis §9.6: campaign only after a majority says it would vote. */
  readonly preVote: boolean;
  /** A leader that has not heard from a majority within an election timeout steps down. */
  readonly checkQuorum: boolean;
  /** Serve reads under a leader lease (needs checkQuorum). */
  readonly leaseReads: boolean;
  /** The lease is this many ticks shorter than the election timeout, for clock drift. */
  readonly leaseMarginTicks: number;
  /**
   * How long a tick is, in ms. The core counts ticks only; this tells the leader how long each
   * voter's guard lasts (HeartbeatResponse.guardMs), which bounds its lease.
   */
  readonly tickMs: number;
  readonly appendEntriesCountMax: number;
  readonly appendEntriesBytesMax: number;
  readonly inflightMessagesMax: number;
  readonly snapshotChunkBytes: number;
  readonly proposalBytesMax: number;
  readonly uncommittedBytesMax: number;
}

export type RaftConfigOptions = Partial<RaftConfig> & { readonly id: ServerId };

export const DEFAULT_RAFT_CONFIG: Omit<RaftConfig, 'id'> = {
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 1,
  preVote: true,
  checkQuorum: true,
  leaseReads: true,
  leaseMarginTicks: 2,
  tickMs: 100,
  appendEntriesCountMax: APPEND_ENTRIES_COUNT_MAX,
  appendEntriesBytesMax: APPEND_ENTRIES_BYTES_MAX,
  inflightMessagesMax: INFLIGHT_MESSAGES_MAX,
  snapshotChunkBytes: SNAPSHOT_CHUNK_BYTES,
  proposalBytesMax: PROPOSAL_BYTES_MAX,
  uncommittedBytesMax: UNCOMMITTED_BYTES_MAX,
};

/** Fills defaults and checks relations between values (hashicorp/raft's ValidateConfig). */
export function makeRaftConfig(options: RaftConfigOptions): RaftConfig {
  const config: RaftConfig = { ...DEFAULT_RAFT_CONFIG, ...options };
  if (config.id.length === 0) throw new ConfigError('raft: server id must not be empty');
  for (const key of ['electionTimeoutTicks', 'heartbeatIntervalTicks', 'tickMs', 'appendEntriesCountMax', 'appendEntriesBytesMax', 'inflightMessagesMax', 'snapshotChunkBytes', 'proposalBytesMax', 'uncommittedBytesMax'] as const) {
    if (!Number.isSafeInteger(config[key]) || config[key] < 1) throw new ConfigError(`raft: ${key} must be a positive integer`);
  }
  if (config.electionTimeoutTicks < 2 * config.heartbeatIntervalTicks) {
    throw new ConfigError('raft: election timeout must be at least twice the heartbeat interval');
  }
  if (!Number.isSafeInteger(config.leaseMarginTicks) || config.leaseMarginTicks < 0 || config.leaseMarginTicks >= config.electionTimeoutTicks) {
    throw new ConfigError('raft: lease margin must be in [0, election timeout)');
  }
  if (config.leaseReads && !config.checkQuorum) {
    throw new ConfigError('raft: lease reads are only safe with check-quorum');
  }
  return config;
}

/** How the core reports what it does; pino loggers fit. */
export interface RaftLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

export const silentRaftLogger: RaftLogger = { info() {}, warn() {}, debug() {} };
