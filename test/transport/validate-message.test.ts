import t from 'tap';
import { Prng } from '../../src/lib/prng.js';
import type { Message } from '../../src/raft/core/messages.js';
import { validateMessage } from '../../src/transport/validate-message.js';
import { WireError } from '../../src/transport/wire-error.js';
import { appendEntries, heartbeat, installSnapshot, normalize } from './helpers.js';

const valid: Message[] = [
  { type: 'RequestVote', from: 'a', to: 'b', term: 5, lastLogIndex: 10, lastLogTerm: 4, preVote: true, transfer: false },
  { type: 'RequestVoteResponse', from: 'b', to: 'a', term: 5, granted: true, preVote: false },
  appendEntries('a', 'b', 10, 5, new Prng(1)),
  { type: 'AppendEntries', from: 'a', to: 'b', term: 3, prevLogIndex: 0, prevLogTerm: 0, entries: [], commit: 0 },
  { type: 'AppendEntriesResponse', from: 'b', to: 'a', term: 3, success: false, matchIndex: 0, rejectedIndex: 9, conflictIndex: 4, conflictTerm: 2 },
  heartbeat('a', 'b', 7),
  { type: 'HeartbeatResponse', from: 'b', to: 'a', term: 3, readContext: 12, guardMs: 1000 },
  installSnapshot('a', 'b', 1000),
  { type: 'InstallSnapshotResponse', from: 'b', to: 'a', term: 3, success: true, snapshotIndex: 100, nextOffset: 1000, done: true },
  { type: 'TimeoutNow', from: 'a', to: 'b', term: 3 },
];

/** Returns the WireError message `value` is refused with, or null if it is accepted. */
function refusal(value: unknown): string | null {
  try {
    validateMessage(value);
    return null;
  } catch (error) {
    if (error instanceof WireError && error.code === 'ERR_FRAME_INVALID') return error.message;
    throw error;
  }
}

t.test('every message type passes and comes back as a fresh, equal object', async (t) => {
  for (const message of valid) {
    const decorated = { ...message, extra: 'ignored', __proto_: 'x' };
    const result = validateMessage(decorated);
    t.not(result, decorated, `${message.type}: a new object`);
    t.same(normalize(result), normalize(message), `${message.type}: same fields, extra keys gone`);
  }
});

t.test('wrong types, ranges and relations are refused with the field named', async (t) => {
  const base = heartbeat('a', 'b', 7);
  const append = appendEntries('a', 'b', 10, 3, new Prng(2));
  const snapshot = installSnapshot('a', 'b', 100);
  const cases: [string, unknown, string][] = [
    ['not an object', 'Heartbeat', 'message'],
    ['an array', [base], 'message'],
    ['unknown type', { ...base, type: 'Gossip' }, 'message.type'],
    ['term as string', { ...base, term: '3' }, 'Heartbeat.term'],
    ['negative term', { ...base, term: -1 }, 'Heartbeat.term'],
    ['fractional commit', { ...base, commit: 1.5 }, 'Heartbeat.commit'],
    ['term above 2^53', { ...base, term: 2 ** 53 }, 'Heartbeat.term'],
    ['NaN', { ...base, readContext: Number.NaN }, 'Heartbeat.readContext'],
    ['empty sender', { ...base, from: '' }, 'Heartbeat.from'],
    ['missing receiver', { ...base, to: undefined }, 'Heartbeat.to'],
    ['boolean as number', { ...valid[1], granted: 1 }, 'RequestVoteResponse.granted'],
    ['entries not an array', { ...append, entries: {} }, 'AppendEntries.entries'],
    ['entry type unknown', { ...append, entries: [{ ...append.entries[0], type: 'snapshot' }] }, 'AppendEntries.entries[0].type'],
    ['entry data as string', { ...append, entries: [{ ...append.entries[0], data: 'abc' }] }, 'AppendEntries.entries[0].data'],
    ['entry data as number array', { ...append, entries: [{ ...append.entries[0], data: [1, 2] }] }, 'AppendEntries.entries[0].data'],
    ['a gap after prevLogIndex', { ...append, prevLogIndex: 8 }, 'AppendEntries.entries[0].index'],
    ['a gap between entries', { ...append, entries: [append.entries[0], append.entries[2]] }, 'AppendEntries.entries[1].index'],
    ['an entry from a future term', { ...append, entries: [{ ...append.entries[0], term: 4 }] }, 'AppendEntries.entries[0].term'],
    ['a term going down', { ...append, entries: [append.entries[0], { ...append.entries[1], term: 1 }] }, 'AppendEntries.entries[1].term'],
    ['entries of null', { ...append, entries: [null] }, 'AppendEntries.entries[0]'],
    ['chunk as array', { ...snapshot, chunk: [1, 2, 3] }, 'InstallSnapshot.chunk'],
    ['chunk past totalBytes', { ...snapshot, offset: 50 }, 'InstallSnapshot.chunk'],
    ['configuration without servers', { ...snapshot, meta: { ...snapshot.meta, configuration: {} } }, 'InstallSnapshot.meta.configuration.servers'],
    ['server voter as string', { ...snapshot, meta: { ...snapshot.meta, configuration: { servers: [{ id: 'a', address: 'x', voter: 'yes' }] } } }, 'InstallSnapshot.meta.configuration.servers[0].voter'],
    ['vote with a log term above the term', { ...valid[0], lastLogTerm: 6 }, 'RequestVote.lastLogTerm'],
  ];
  for (const [name, value, path] of cases) {
    const message = refusal(value);
    t.ok(message?.startsWith(`${path}:`), `${name}: refused at ${path} (${message ?? 'accepted'})`);
  }
});
