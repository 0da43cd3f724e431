/**
 * CAS from the UI: a create never replaces, an edit or delete that meets a concurrent change is
 * reported with the current state and overwrites nothing, and the lock flag always survives.
 * The fake store behaves like Consul's KV for `cas`, `flags` and `recurse` (consul-api.md §4).
 */
import t from 'tap';
import { ApiClient } from '../../src/ui/lib/api-client.js';
import type { FetchLike } from '../../src/ui/lib/api-client.js';
import { conflictMessage, createKey, deleteFolder, deleteKey, flagsHex, kvEntryOf, kvStoreOver, parseFlags, saveKey } from '../../src/ui/lib/kv-edit.js';
import type { KvEntry, KvStore } from '../../src/ui/lib/kv-edit.js';

const LOCK_FLAG = '3304740253564472344';

/** Consul's KV semantics for what the UI sends, in memory. */
class FakeKv implements KvStore {
  readonly entries = new Map<string, KvEntry>();
  index = 10;
  readonly calls: string[] = [];

  /** Someone else's write (bumps the index). */
  external(key: string, value: string | null, flags = '0'): void {
    this.index++;
    const previous = this.entries.get(key);
    this.entries.set(key, {
      key, value: value === null ? null : Buffer.from(value).toString('base64'), flags, session: previous?.session ?? null,
      lockIndex: previous?.lockIndex ?? 0, createIndex: previous?.createIndex ?? this.index, modifyIndex: this.index,
    });
  }

  async put(key: string, bytes: Uint8Array, query: string): Promise<boolean> {
    this.calls.push(`PUT ${key}?${query}`);
    const params = new URLSearchParams(query);
    const cas = params.get('cas');
    const current = this.entries.get(key);
    if (cas !== null && (current?.modifyIndex ?? 0) !== Number(cas)) return false;
    this.external(key, bytes.length === 0 ? null : Buffer.from(bytes).toString('utf8'), params.get('flags') ?? '0');
    return true;
  }

  async delete(key: string, query: string): Promise<boolean> {
    this.calls.push(`DELETE ${key}?${query}`);
    const params = new URLSearchParams(query);
    if (params.has('recurse')) {
      for (const existing of [...this.entries.keys()]) if (existing.startsWith(key)) this.entries.delete(existing);
      return true;
    }
    const current = this.entries.get(key);
    if (current === undefined) return true;
    const cas = params.get('cas');
    if (cas !== null && current.modifyIndex !== Number(cas)) return false;
    this.entries.delete(key);
    return true;
  }

  async read(key: string): Promise<KvEntry | null> {
    return this.entries.get(key) ?? null;
  }
}

t.test('create is create-only', async (t) => {
  const kv = new FakeKv();
  t.same(await createKey(kv, 'app/a', new TextEncoder().encode('one'), '0'), { kind: 'done' });
  t.equal(kv.calls[0], 'PUT app/a?cas=0&flags=0');
  const again = await createKey(kv, 'app/a', new TextEncoder().encode('two'), '0');
  t.equal(again.kind, 'conflict');
  t.equal(again.kind === 'conflict' ? again.reason : '', 'exists');
  t.equal(Buffer.from(kv.entries.get('app/a')?.value ?? '', 'base64').toString(), 'one', 'the existing key was not replaced');
  t.match(again.kind === 'conflict' ? conflictMessage(again, 'create', 0) : '', /already exists/);
});

t.test('an edit saved over a concurrent change is refused and explained', async (t) => {
  const kv = new FakeKv();
  kv.external('app/cfg', 'v1', LOCK_FLAG);
  const base = (await kv.read('app/cfg'))?.modifyIndex ?? -1;
  kv.external('app/cfg', 'theirs', LOCK_FLAG); // someone else, while the person edits
  const outcome = await saveKey(kv, 'app/cfg', new TextEncoder().encode('mine'), LOCK_FLAG, base);
  t.equal(outcome.kind, 'conflict');
  if (outcome.kind !== 'conflict') return;
  t.equal(outcome.reason, 'changed');
  t.equal(Buffer.from(outcome.current?.value ?? '', 'base64').toString(), 'theirs', 'their value is handed back to show');
  t.equal(Buffer.from(kv.entries.get('app/cfg')?.value ?? '', 'base64').toString(), 'theirs', 'not overwritten');
  t.match(conflictMessage(outcome, 'save', base), new RegExp(`Not saved: someone changed this key.*index ${base} → ${outcome.current?.modifyIndex}`));
  // The person chose to overwrite what they have now seen: CAS on that version.
  t.same(await saveKey(kv, 'app/cfg', new TextEncoder().encode('mine'), LOCK_FLAG, outcome.current?.modifyIndex ?? 0), { kind: 'done' });
  t.equal(kv.entries.get('app/cfg')?.flags, LOCK_FLAG, 'the lock flag was sent with every write and survives');
  t.ok(kv.calls.every((call) => !call.startsWith('PUT') || call.includes(`flags=${LOCK_FLAG}`)));
});

t.test('an edit of a key deleted meanwhile is refused; re-creating it is create-only', async (t) => {
  const kv = new FakeKv();
  kv.external('k', 'v1');
  const base = kv.index;
  kv.entries.delete('k');
  const outcome = await saveKey(kv, 'k', new TextEncoder().encode('mine'), '0', base);
  t.equal(outcome.kind === 'conflict' ? outcome.reason : '', 'deleted');
  t.match(outcome.kind === 'conflict' ? conflictMessage(outcome, 'save', base) : '', /deleted this key/);
  kv.external('k', 'newcomer'); // someone re-created it first
  const recreate = await saveKey(kv, 'k', new TextEncoder().encode('mine'), '0', 0);
  t.equal(recreate.kind === 'conflict' ? recreate.reason : '', 'exists', 'cas=0 does not replace a newcomer');
});

t.test('delete with CAS; folders by prefix with a trailing slash only', async (t) => {
  const kv = new FakeKv();
  kv.external('d/x', '1');
  const base = kv.index;
  kv.external('d/x', '2');
  const refused = await deleteKey(kv, 'd/x', base);
  t.equal(refused.kind === 'conflict' ? refused.reason : '', 'changed');
  t.match(refused.kind === 'conflict' ? conflictMessage(refused, 'delete', base) : '', /Not deleted/);
  t.ok(kv.entries.has('d/x'));
  t.same(await deleteKey(kv, 'd/x', kv.index), { kind: 'done' });
  t.same(await deleteKey(kv, 'd/x', 3), { kind: 'done' }, 'already gone counts as done (Consul answers true)');
  kv.external('f/a', '1');
  kv.external('f/b/c', '1');
  kv.external('fx', 'sibling');
  await deleteFolder(kv, 'f/');
  t.same([...kv.entries.keys()], ['fx'], 'the folder went; the sibling sharing its letters stayed');
  await t.rejects(deleteFolder(kv, 'f'), /ends with \//);
});

t.test('flags: exact uint64 digits in, hex for people', async (t) => {
  t.same(parseFlags(''), { ok: true, flags: '0' });
  t.same(parseFlags(' 0042 '), { ok: true, flags: '42' });
  t.same(parseFlags('18446744073709551615'), { ok: true, flags: '18446744073709551615' });
  t.equal(parseFlags('18446744073709551616').ok, false);
  t.equal(parseFlags('-1').ok, false);
  t.equal(parseFlags('1e3').ok, false);
  t.equal(flagsHex(LOCK_FLAG), '0x2ddccbc058a50c18');
  t.equal(flagsHex('16210313421097356768'), '0xe0f69a2baa414de0');
});

t.test('entries are read from Consul JSON, big flags included', async (t) => {
  t.same(kvEntryOf({ Key: 'k', Value: null, Flags: LOCK_FLAG, Session: 'sid', LockIndex: 1, CreateIndex: 5, ModifyIndex: 6 }),
    { key: 'k', value: null, flags: LOCK_FLAG, session: 'sid', lockIndex: 1, createIndex: 5, modifyIndex: 6 });
  t.equal(kvEntryOf({ Key: 'k', Value: 'dg==', Flags: 0, Session: '' }).session, null);
  t.throws(() => kvEntryOf({ Value: 'x' }), /Key/);
  t.throws(() => kvEntryOf(null));
});

t.test('the store over HTTP sends what Consul expects', async (t) => {
  const requests: { url: string; method: string; body: string }[] = [];
  const answers: { status: number; body: string }[] = [
    { status: 200, body: 'false' },
    { status: 200, body: `[{"Key":"a b/c","Value":"dGhlaXJz","Flags":${LOCK_FLAG},"LockIndex":0,"CreateIndex":3,"ModifyIndex":9}]` },
  ];
  const fetchFake: FetchLike = async (url, init) => {
    requests.push({ url, method: init.method, body: init.body === undefined ? '' : Buffer.from(init.body as Uint8Array).toString() });
    const answer = answers.shift() ?? { status: 500, body: 'unexpected' };
    return { status: answer.status, headers: new Headers({ 'x-consul-index': '9' }), text: async () => answer.body };
  };
  const store = kvStoreOver(new ApiClient(fetchFake));
  const outcome = await saveKey(store, 'a b/c', new TextEncoder().encode('mine'), LOCK_FLAG, 7);
  t.same(requests.map((request) => `${request.method} ${request.url} ${request.body}`), [
    `PUT /v1/kv/a%20b/c?cas=7&flags=${LOCK_FLAG} mine`,
    'GET /v1/kv/a%20b/c ',
  ]);
  t.equal(outcome.kind === 'conflict' ? outcome.current?.flags : '', LOCK_FLAG, 'the current entry keeps its exact flag');
});
