import { TERM_MAX } from '../raft/core/limits.js';
import { assertNever } from '../lib/assert.js';
import type {
  AppendEntries,
  AppendEntriesResponse,
  Heartbeat,
  HeartbeatResponse,
  InstallSnapshot,
  InstallSnapshotResponse,
  Message,
  MessageType,
  RequestVote,
  RequestVoteResponse,
  TimeoutNow,
} from '../raft/core/messages.js';
import type { Configuration, Entry, EntryType, ServerEntry, SnapshotMeta } from '../raft/core/types.js';
import { CONFIGURATION_SERVERS_MAX, RAFT_ENTRIES_PER_MESSAGE_MAX } from './limits.js';
import { invalid } from './wire-error.js';
import type { Fields } from './wire-fields.js';
import { readArray, readBoolean, readBytes, readIdentifier, readObject, readString, readUint } from './wire-fields.js';

const MESSAGE_TYPES: ReadonlySet<string> = new Set<MessageType>([
  'RequestVote',
  'RequestVoteResponse',
  'AppendEntries',
  'AppendEntriesResponse',
  'Heartbeat',
  'HeartbeatResponse',
  'InstallSnapshot',
  'InstallSnapshotResponse',
  'TimeoutNow',
]);

const ENTRY_TYPES: ReadonlySet<string> = new Set<EntryType>(['normal', 'noop', 'config']);

/** The fields every message carries. */
interface Common {
  readonly from: string;
  readonly to: string;
  readonly term: number;
}

/**
 * Checks a decoded Raft message field by field and returns a fresh object holding only the known
 * fields, so a peer can never hand the core a malformed or decorated object. Besides types it
 * checks relations every correct sender keeps (entries follow prevLogIndex without gaps, no entry
 * term above the message term, a chunk inside the snapshot). Throws WireError ERR_FRAME_INVALID.
 */
export function validateMessage(value: unknown): Message {
  const fields = readObject(value, 'message');
  const type = fields['type'];
  if (typeof type !== 'string' || !MESSAGE_TYPES.has(type)) return invalid('message.type', 'a Raft message type');
  const messageType = type as MessageType;
  const common: Common = {
    from: readIdentifier(fields, 'from', messageType),
    to: readIdentifier(fields, 'to', messageType),
    term: readUint(fields, 'term', messageType),
  };
  // A term no real cluster reaches: a forgery; taking it would end in an overflowing term.
  if (common.term > TERM_MAX) invalid(`${messageType}.term`, `at most ${TERM_MAX}`);
  switch (messageType) {
    case 'RequestVote':
      return readRequestVote(fields, common);
    case 'RequestVoteResponse':
      return readRequestVoteResponse(fields, common);
    case 'AppendEntries':
      return readAppendEntries(fields, common);
    case 'AppendEntriesResponse':
      return readAppendEntriesResponse(fields, common);
    case 'Heartbeat':
      return readHeartbeat(fields, common);
    case 'HeartbeatResponse':
      return readHeartbeatResponse(fields, common);
    case 'InstallSnapshot':
      return readInstallSnapshot(fields, common);
    case 'InstallSnapshotResponse':
      return readInstallSnapshotResponse(fields, common);
    case 'TimeoutNow':
      return { type: 'TimeoutNow', ...common } satisfies TimeoutNow;
    default:
      return assertNever(messageType, 'message type');
  }
}

function readRequestVote(fields: Fields, common: Common): RequestVote {
  const path = 'RequestVote';
  const lastLogTerm = readUint(fields, 'lastLogTerm', path);
  // A candidate's (or pre-candidate's) term is above every term in its log.
  if (lastLogTerm > common.term) invalid(`${path}.lastLogTerm`, 'at most the message term');
  return {
    type: 'RequestVote',
    ...common,
    lastLogIndex: readUint(fields, 'lastLogIndex', path),
    lastLogTerm,
    preVote: readBoolean(fields, 'preVote', path),
    transfer: readBoolean(fields, 'transfer', path),
  };
}

function readRequestVoteResponse(fields: Fields, common: Common): RequestVoteResponse {
  const path = 'RequestVoteResponse';
  return {
    type: 'RequestVoteResponse',
    ...common,
    granted: readBoolean(fields, 'granted', path),
    preVote: readBoolean(fields, 'preVote', path),
  };
}

function readAppendEntries(fields: Fields, common: Common): AppendEntries {
  const path = 'AppendEntries';
  const prevLogIndex = readUint(fields, 'prevLogIndex', path);
  const prevLogTerm = readUint(fields, 'prevLogTerm', path);
  if (prevLogTerm > common.term) invalid(`${path}.prevLogTerm`, 'at most the message term');
  const items = readArray(fields, 'entries', path, RAFT_ENTRIES_PER_MESSAGE_MAX);
  const entries: Entry[] = [];
  let previousTerm = prevLogTerm;
  for (let position = 0; position < items.length; position++) {
    const entry = readEntry(items[position], `${path}.entries[${position}]`);
    // Raft §5.3: the entries extend the log right after prevLogIndex, and terms in a log never
    // decrease; a leader holds no entry from a term above its own.
    if (entry.index !== prevLogIndex + 1 + position) invalid(`${path}.entries[${position}].index`, `${prevLogIndex + 1 + position} (no gaps after prevLogIndex)`);
    if (entry.term < previousTerm) invalid(`${path}.entries[${position}].term`, 'no lower than the previous entry term');
    if (entry.term > common.term) invalid(`${path}.entries[${position}].term`, 'at most the message term');
    previousTerm = entry.term;
    entries.push(entry);
  }
  return { type: 'AppendEntries', ...common, prevLogIndex, prevLogTerm, entries, commit: readUint(fields, 'commit', path) };
}

function readEntry(value: unknown, path: string): Entry {
  const fields = readObject(value, path);
  const type = fields['type'];
  if (typeof type !== 'string' || !ENTRY_TYPES.has(type)) return invalid(`${path}.type`, "'normal', 'noop' or 'config'");
  return {
    index: readUint(fields, 'index', path),
    term: readUint(fields, 'term', path),
    type: type as EntryType,
    data: readBytes(fields, 'data', path),
  };
}

function readAppendEntriesResponse(fields: Fields, common: Common): AppendEntriesResponse {
  const path = 'AppendEntriesResponse';
  return {
    type: 'AppendEntriesResponse',
    ...common,
    success: readBoolean(fields, 'success', path),
    matchIndex: readUint(fields, 'matchIndex', path),
    rejectedIndex: readUint(fields, 'rejectedIndex', path),
    conflictIndex: readUint(fields, 'conflictIndex', path),
    conflictTerm: readUint(fields, 'conflictTerm', path),
  };
}

function readHeartbeat(fields: Fields, common: Common): Heartbeat {
  const path = 'Heartbeat';
  return {
    type: 'Heartbeat',
    ...common,
    commit: readUint(fields, 'commit', path),
    readContext: readUint(fields, 'readContext', path),
  };
}

function readHeartbeatResponse(fields: Fields, common: Common): HeartbeatResponse {
  const path = 'HeartbeatResponse';
  return { type: 'HeartbeatResponse', ...common, readContext: readUint(fields, 'readContext', path), guardMs: readUint(fields, 'guardMs', path) };
}

function readInstallSnapshot(fields: Fields, common: Common): InstallSnapshot {
  const path = 'InstallSnapshot';
  const meta = readSnapshotMeta(fields['meta'], `${path}.meta`);
  if (meta.term > common.term) invalid(`${path}.meta.term`, 'at most the message term');
  const offset = readUint(fields, 'offset', path);
  const totalBytes = readUint(fields, 'totalBytes', path);
  const chunk = readBytes(fields, 'chunk', path);
  if (offset + chunk.byteLength > totalBytes) invalid(`${path}.chunk`, 'a chunk that ends within totalBytes');
  return { type: 'InstallSnapshot', ...common, meta, offset, totalBytes, chunk, done: readBoolean(fields, 'done', path) };
}

function readSnapshotMeta(value: unknown, path: string): SnapshotMeta {
  const fields = readObject(value, path);
  const configurationFields = readObject(fields['configuration'], `${path}.configuration`);
  const items = readArray(configurationFields, 'servers', `${path}.configuration`, CONFIGURATION_SERVERS_MAX);
  const servers: ServerEntry[] = items.map((item, position) => {
    const serverPath = `${path}.configuration.servers[${position}]`;
    const server = readObject(item, serverPath);
    return {
      id: readIdentifier(server, 'id', serverPath),
      address: readString(server, 'address', serverPath),
      voter: readBoolean(server, 'voter', serverPath),
    };
  });
  const configuration: Configuration = { servers };
  return { index: readUint(fields, 'index', path), term: readUint(fields, 'term', path), configuration };
}

function readInstallSnapshotResponse(fields: Fields, common: Common): InstallSnapshotResponse {
  const path = 'InstallSnapshotResponse';
  return {
    type: 'InstallSnapshotResponse',
    ...common,
    success: readBoolean(fields, 'success', path),
    snapshotIndex: readUint(fields, 'snapshotIndex', path),
    nextOffset: readUint(fields, 'nextOffset', path),
    done: readBoolean(fields, 'done', path),
  };
}
