import t from 'tap';
import { consulErrorText } from '../../src/state/fsm.js';
import { Harness, acquire, createSessionCommand, del, put, putCas, registerNode, release, text } from './helpers.js';

t.test('set and get: CreateIndex, ModifyIndex, Flags, null for empty', async (t) => {
  const h = new Harness();
  t.equal(h.bool(put('foo', 'bar', 42n)), true); // index 1
  t.match(h.entry('foo'), { Key: 'foo', Flags: 42n, LockIndex: 0, Session: '', CreateIndex: 1, ModifyIndex: 1 });
  t.equal(text(h.entry('foo').Value), 'bar');
  t.equal(h.bool(put('foo', 'baz')), true); // index 2; no flags → 0
  t.match(h.entry('foo'), { Flags: 0n, CreateIndex: 1, ModifyIndex: 2 });
  h.bool(put('empty', '')); // index 3
  t.equal(h.entry('empty').Value, null, 'an empty body is stored as null');
  t.same(h.fsm.readKey('foo'), { index: 2, value: h.entry('foo') });
  t.same(h.fsm.readKey('missing'), { index: 3, value: undefined }, 'a missing key has the KV-space index');
});

t.test('no-op PUT keeps ModifyIndex and still answers true', async (t) => {
  const h = new Harness();
  h.bool(put('k', 'v', 7n)); // 1
  t.equal(h.bool(put('k', 'v', 7n)), true); // 2: same Value, Flags, Session, LockIndex
  t.equal(h.entry('k').ModifyIndex, 1);
  t.equal(h.fsm.kvIndex, 1, 'the KV-space index does not move either');
  h.bool(put('k', 'v', 8n)); // 3: flags differ
  t.equal(h.entry('k').ModifyIndex, 3);
  h.bool(put('n', null)); // 4
  h.bool(put('n', '')); // 5: null and empty are the same value (Go bytes.Equal)
  t.equal(h.entry('n').ModifyIndex, 4);
});

t.test('cas: 0 creates only, N matches ModifyIndex', async (t) => {
  const h = new Harness();
  t.equal(h.bool(putCas('k', 'a', 0n)), true); // 1: created
  t.equal(h.bool(putCas('k', 'b', 0n)), false); // 2: exists
  t.equal(h.bool(putCas('k', 'c', 5n)), false); // 3: mismatch
  t.equal(h.bool(putCas('k', 'd', 1n)), true); // 4
  t.match(h.entry('k'), { CreateIndex: 1, ModifyIndex: 4 });
  t.equal(text(h.entry('k').Value), 'd');
  t.equal(h.bool(putCas('absent', 'x', 4n)), false, 'N > 0 on a missing key');
  t.equal(h.bool(putCas('k', 'e', 18446744073709551615n)), false, 'a huge cas index never matches');
});

t.test('delete: absent is true; leaves a tombstone; the prefix index moves forward', async (t) => {
  const h = new Harness();
  t.equal(h.bool(del('nothing')), true); // 1: no-op
  t.equal(h.fsm.kvIndex, 0, 'deleting an absent key changes nothing');
  h.bool(put('foo/a')); // 2
  h.bool(put('foo/b')); // 3
  h.bool(put('other')); // 4
  t.equal(h.fsm.readPrefix('foo/').index, 3);
  t.equal(h.bool(del('foo/b')), true); // 5
  t.equal(h.fsm.getKey('foo/b'), undefined);
  t.equal(h.fsm.readPrefix('foo/').index, 5, 'the tombstone carries the delete index');
  t.equal(h.fsm.readPrefix('foo/b').index, 5, 'a prefix with only a tombstone');
  t.same(h.fsm.readKey('foo/b'), { index: 5, value: undefined }, 'a deleted key: 404 with a larger index');
  h.bool(put('zzz')); // 6
  t.equal(h.fsm.readPrefix('foo/').index, 5, 'unrelated writes do not move the prefix index');
  t.equal(h.fsm.readPrefix('nope/').index, 6, 'a prefix with nothing falls back to the KV-space index');
  t.equal(h.fsm.readPrefix('').index, 6, 'the empty prefix is the KV-space index');
});

t.test('delete with cas', async (t) => {
  const h = new Harness();
  h.bool(put('k')); // 1
  t.equal(h.bool(del('absent', { cas: 9n })), true, 'absent → true');
  t.equal(h.bool(del('k', { cas: 0n })), false, 'cas=0 against an existing key is a mismatch');
  t.equal(h.bool(del('k', { cas: 2n })), false);
  t.ok(h.fsm.getKey('k'));
  t.equal(h.bool(del('k', { cas: 1n })), true);
  t.equal(h.fsm.getKey('k'), undefined);
});

t.test('recursive delete by byte prefix, tombstones keep indexes monotone', async (t) => {
  const h = new Harness();
  for (const key of ['fo', 'foo', 'foo/x', 'foo/x/y', 'foobar', 'fop']) h.bool(put(key)); // 1..6
  h.bool(del('foo/x/y')); // 7: an older tombstone under foo/x/
  t.equal(h.bool(del('foo', { recurse: true })), true); // 8
  t.same(h.fsm.readPrefix('').value.map((e) => e.Key), ['fo', 'fop'], '`foo` also deletes `foobar`');
  t.equal(h.fsm.readPrefix('foo').index, 8);
  t.equal(h.fsm.readPrefix('fo').index, 8, 'a shorter prefix sees the subtree tombstone');
  t.equal(h.fsm.readPrefix('foo/x/').index, 8, 'a deeper prefix never regresses to an older tombstone');
  t.equal(h.bool(del('foo', { recurse: true })), true); // 9: nothing left to delete
  t.equal(h.fsm.kvIndex, 8, 'an empty recursive delete changes nothing');
  t.equal(h.bool(del('', { recurse: true })), true); // 10: everything
  t.same(h.fsm.readPrefix('').value, []);
  t.equal(h.fsm.readPrefix('fop').index, 10);
});

t.test('list and keys: byte prefix, UTF-8 order, separator folding', async (t) => {
  const h = new Harness();
  for (const key of ['a/y/2', 'a/x/1', 'a/x/2', 'a/', 'a/z', 'ab', '\u{1f600}', '\ufffd']) h.bool(put(key));
  t.same(h.fsm.readPrefix('a').value.map((e) => e.Key), ['a/', 'a/x/1', 'a/x/2', 'a/y/2', 'a/z', 'ab']);
  t.same(h.fsm.readKeys('a/', '/').value, ['a/', 'a/x/', 'a/y/', 'a/z']);
  t.same(h.fsm.readKeys('a/', '').value, ['a/', 'a/x/1', 'a/x/2', 'a/y/2', 'a/z']);
  t.same(h.fsm.readKeys('', '').value.slice(-2), ['\ufffd', '\u{1f600}'], 'U+FFFD sorts before U+1F600 (UTF-8)');

  const swarm = new Harness();
  for (const key of ['a/x/1', 'a/y/1', 'a/x/2']) swarm.bool(put(key));
  t.same(swarm.fsm.readKeys('a/', '/').value, ['a/x/', 'a/y/'], 'consul-api.md §4 example');

  // Consul's TestStateStore_KVSListKeys data.
  const c = new Harness();
  for (const key of ['foo', 'foo/bar', 'foo/bar/baz', 'foo/bar/zip', 'foo/bar/zip/zam', 'foo/bar/zip/zorp', 'some/other/prefix']) {
    c.bool(put(key));
  }
  t.same(c.fsm.readKeys('foo/bar/', '/'), { index: 6, value: ['foo/bar/baz', 'foo/bar/zip', 'foo/bar/zip/'] });
});

t.test('acquire and release', async (t) => {
  const h = new Harness();
  h.nodeAndSession('n1', 's1'); // 1, 2
  h.nodeAndSession('n2', 's2'); // 3, 4
  t.equal(h.bool(acquire('lock', 's1', 'v1', 5n)), true); // 5: a new key
  t.match(h.entry('lock'), { Session: 's1', LockIndex: 1, CreateIndex: 5, ModifyIndex: 5, Flags: 5n });
  t.equal(h.bool(acquire('lock', 's1', 'v1', 5n)), true); // 6: same holder, same content: no-op
  t.match(h.entry('lock'), { LockIndex: 1, ModifyIndex: 5 });
  t.equal(h.bool(acquire('lock', 's1', 'v2', 5n)), true); // 7: same holder, new value
  t.match(h.entry('lock'), { LockIndex: 1, ModifyIndex: 7 });
  t.equal(h.bool(acquire('lock', 's2')), false, 'held by another session'); // 8
  t.equal(h.bool(release('lock', 's2')), false, 'only the holder releases'); // 9
  t.equal(h.bool(release('lock', 's1', null, 9n)), true); // 10: release stores the body and flags
  t.match(h.entry('lock'), { Session: '', LockIndex: 1, ModifyIndex: 10, Flags: 9n, Value: null });
  t.equal(h.fsm.lockDelayUntil('lock'), undefined, 'a voluntary release sets no lock-delay');
  t.equal(h.bool(acquire('lock', 's2')), true, 'free again, no lock-delay'); // 11
  t.match(h.entry('lock'), { Session: 's2', LockIndex: 2 });
  t.equal(h.bool(release('missing', 's2')), false, 'release of a missing key');
});

t.test('acquire errors: unknown and missing session', async (t) => {
  const h = new Harness();
  const unknown = h.apply(acquire('k', 'no-such-session'));
  t.same(unknown, { kind: 'error', message: 'invalid session "no-such-session"' });
  t.equal(consulErrorText('kv-set', 'invalid session "no-such-session"'), 'raft apply failed: invalid session "no-such-session"');
  t.same(h.apply(acquire('k', '')), { kind: 'error', message: 'missing session' });
  t.same(h.apply(release('k', '')), { kind: 'error', message: 'missing session' });
  t.equal(h.fsm.getKey('k'), undefined, 'a rejected acquire writes nothing');
  t.same(h.apply(acquire('k', 'a"b')), { kind: 'error', message: 'invalid session "a\\"b"' }, 'Go %#v quoting');
});

t.test('a plain PUT keeps the Session (a lock survives) and resets LockIndex like Consul', async (t) => {
  const h = new Harness();
  h.nodeAndSession('n1', 's1');
  h.bool(acquire('k', 's1', 'a'));
  h.bool(put('k', 'b'));
  // Consul's PUT handler sends a DirEntry with LockIndex 0 and kvsSetTxn keeps only the Session.
  t.match(h.entry('k'), { Session: 's1', LockIndex: 0 });
  t.equal(text(h.entry('k').Value), 'b');
  const before = h.entry('k').ModifyIndex;
  h.bool(put('k', 'b'));
  t.equal(h.entry('k').ModifyIndex, before, 'then a repeat PUT is a no-op');
});

t.test('lock-delay: set on invalidation, not on release; acquire fails within it', async (t) => {
  const h = new Harness();
  h.nodeAndSession('n1', 's1', { lockDelayNs: 15_000_000_000 });
  h.apply(createSessionCommand('s2', 'n1'));
  h.bool(acquire('k', 's1'));
  const destroyedAt = h.nowMs;
  h.done({ type: 'session-destroy', id: 's1' });
  t.match(h.entry('k'), { Session: '', LockIndex: 1 }, 'Behavior release clears the session');
  t.equal(h.fsm.lockDelayUntil('k'), destroyedAt + 15_000);
  h.nowMs = destroyedAt + 14_999;
  t.equal(h.bool(acquire('k', 's2')), false, 'within lock-delay');
  t.equal(h.bool(acquire('k', 'unknown-session')), false, 'lock-delay is checked before the session (kvsPreApply)');
  h.nowMs = destroyedAt + 15_000;
  t.equal(h.bool(acquire('k', 's2')), true, 'after lock-delay');
  t.equal(h.entry('k').LockIndex, 2);
});

t.test('lock-delay is capped at 60 s and rounded up to whole ms', async (t) => {
  const h = new Harness();
  h.nodeAndSession('n1', 's1', { lockDelayNs: 60_000_000_000 });
  h.apply(createSessionCommand('s2', 'n1', { lockDelayNs: 500_000 }));
  h.bool(acquire('a', 's1'));
  h.bool(acquire('b', 's2'));
  const now = h.nowMs;
  h.done({ type: 'session-destroy', id: 's1' });
  h.done({ type: 'session-destroy', id: 's2' });
  t.equal(h.fsm.lockDelayUntil('a'), now + 60_000);
  t.equal(h.fsm.lockDelayUntil('b'), now + 1, '500us becomes 1 ms, not none');
});

t.test('Behavior delete removes held keys and sets lock-delay', async (t) => {
  const h = new Harness();
  h.nodeAndSession('n1', 's1', { behavior: 'delete', lockDelayNs: 1_000_000 });
  h.bool(acquire('docker/swarm/nodes/10.0.0.5:2375', 's1'));
  h.bool(acquire('other', 's1'));
  h.bool(put('unheld'));
  h.done({ type: 'session-destroy', id: 's1' });
  t.same(h.fsm.readPrefix('').value.map((e) => e.Key), ['unheld']);
  t.equal(h.fsm.readPrefix('docker/').index, h.index, 'deleted keys leave tombstones');
  t.equal(h.fsm.lockDelayUntil('other'), h.nowMs + 1);
});

t.test('uint64 flags 16210313421097356768 round-trip exactly', async (t) => {
  const h = new Harness();
  h.bool(put('sem/.lock', '{}', 16210313421097356768n));
  t.equal(h.entry('sem/.lock').Flags, 16210313421097356768n);
  t.equal(h.entry('sem/.lock').Flags.toString(), '16210313421097356768');
  const restored = new Harness();
  restored.fsm.restore(h.fsm.snapshot());
  t.equal(restored.fsm.getKey('sem/.lock')?.Flags, 16210313421097356768n, 'through a snapshot too');
});

t.test('tombstone reaping lets a prefix index regress, as Consul documents', async (t) => {
  const h = new Harness();
  h.bool(put('foo/a')); // 1
  h.bool(put('foo/b')); // 2
  h.bool(del('foo/b')); // 3
  t.equal(h.fsm.readPrefix('foo/').index, 3);
  h.done({ type: 'tombstone-reap', reapIndex: 3 }); // 4
  t.equal(h.fsm.readPrefix('foo/').index, 1);
  t.equal(h.fsm.kvIndex, 4, 'reaping moves the KV-space index');
});

t.test('100k keys through the FSM: insert, list, delete-tree', async (t) => {
  const h = new Harness();
  const started = performance.now();
  for (let i = 0; i < 100_000; i++) h.bool(put(`bulk/${(i * 7919) % 100_000}`, 'x'));
  t.equal(h.fsm.readPrefix('bulk/').value.length, 100_000);
  t.equal(h.fsm.readKeys('bulk/1', '/').value.length, 11_111);
  h.bool(del('bulk/', { recurse: true }));
  t.equal(h.fsm.readPrefix('bulk/').value.length, 0);
  t.comment(`100k-key FSM workload took ${Math.round(performance.now() - started)} ms`);
});

t.test('registerNode helper sanity', async (t) => {
  const h = new Harness();
  h.done(registerNode('n1'));
  t.equal(h.fsm.getNode('n1')?.Node, 'n1');
});
