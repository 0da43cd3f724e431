/**
 * `conclave kv get|put|delete|export|import`, run as a child process against a real listener:
 * Consul's outputs, messages and exit codes, error paths included.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { runConclave, startApi } from './helpers.js';
import type { ApiServer } from './helpers.js';

const LOCK_FLAG = '3304740253564472344';

async function createSession(api: ApiServer): Promise<string> {
  const response = await request(`${api.url}/v1/session/create`, { method: 'PUT' });
  return ((await response.body.json()) as { ID: string }).ID;
}

// Each subtest has its own listener and children: they run side by side (a CLI run mostly waits).
t.jobs = 4;

t.test('put and get: Consul\'s messages; a missing key is "Error! No key exists at" and 1', async (t) => {
  const api = await startApi(t);
  t.same(await api.cli(['kv', 'put'], ['app/config', 'value 1']), { code: 0, stdout: 'Success! Data written to: app/config\n', stderr: '' });
  t.same(await api.cli(['kv', 'get'], ['app/config']), { code: 0, stdout: 'value 1\n', stderr: '' });
  t.same(await api.cli(['kv', 'get'], ['/app/config']), { code: 0, stdout: 'value 1\n', stderr: '' }, 'a leading / is stripped');
  t.same(await api.cli(['kv', 'get'], ['app/missing']), { code: 1, stdout: '', stderr: 'Error! No key exists at: app/missing\n' });
  t.same(await api.cli(['kv', 'get'], []), { code: 1, stdout: '', stderr: 'Error! Missing KEY argument\n' });
  t.same(await api.cli(['kv', 'get'], ['a', 'b']), { code: 1, stdout: '', stderr: 'Too many arguments (expected 1, got 2)\n' });
  t.same(await api.cli(['kv', 'get'], ['app/config', '-recurse']), { code: 1, stdout: '', stderr: 'Too many arguments (expected 1, got 2)\n' },
    'flags stop at the first argument, as Go\'s flag package');
  t.same(await api.cli(['kv', 'put'], []), { code: 1, stdout: '', stderr: 'Error! Missing KEY argument\n' });
  t.same(await api.cli(['kv', 'put'], ['a', 'b', 'c']), { code: 1, stdout: '', stderr: 'Error! Too many arguments (expected 1 or 2, got 3)\n' });
  t.same(await api.cli(['kv', 'put'], ['empty']), { code: 0, stdout: 'Success! Data written to: empty\n', stderr: '' });
  t.same(await api.cli(['kv', 'get'], ['empty']), { code: 0, stdout: '\n', stderr: '' }, 'an empty value prints an empty line');
  t.equal(api.agent.fsm.readKey('empty').value?.Value, null);
});

t.test('put: @file, stdin, -base64, a data argument starting with "-", exact flags', async (t) => {
  const api = await startApi(t);
  const file = join(t.testdir(), 'value.txt');
  writeFileSync(file, 'from a file\n');
  t.equal((await api.cli(['kv', 'put'], ['f', `@${file}`])).code, 0);
  t.equal(Buffer.from(api.agent.fsm.readKey('f').value?.Value ?? []).toString(), 'from a file\n');
  t.same(await api.cli(['kv', 'put'], ['f', '@/nonexistent/x']),
    { code: 1, stdout: '', stderr: "Error! Failed to read file: ENOENT: no such file or directory, open '/nonexistent/x'\n" });
  t.equal((await api.cli(['kv', 'put'], ['s', '-'], { stdin: 'from stdin' })).code, 0);
  t.equal(Buffer.from(api.agent.fsm.readKey('s').value?.Value ?? []).toString(), 'from stdin');
  t.equal((await api.cli(['kv', 'put'], ['d', '-dash'])).code, 0);
  t.equal(Buffer.from(api.agent.fsm.readKey('d').value?.Value ?? []).toString(), '-dash');
  t.equal((await api.cli(['kv', 'put', '-base64'], ['b', 'aGVsbG8='])).code, 0);
  t.equal(Buffer.from(api.agent.fsm.readKey('b').value?.Value ?? []).toString(), 'hello');
  t.same(await api.cli(['kv', 'put', '-base64'], ['b', '!!']), { code: 1, stdout: '', stderr: 'Error! Cannot base 64 decode data: illegal base64 data\n' });
  t.equal((await api.cli(['kv', 'put', `-flags=${LOCK_FLAG}`], ['l', 'v'])).code, 0);
  t.equal(api.agent.fsm.readKey('l').value?.Flags, BigInt(LOCK_FLAG), 'a uint64 past 2^53 keeps every digit');
  const bad = await api.cli(['kv', 'put', '-flags=x'], ['l', 'v']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^invalid value "x" for flag -flags: parse error\n/);
  t.match(bad.stderr, /Usage: conclave kv put/);
});

t.test('get: -detailed, -recurse, -recurse -detailed, -keys, -separator, -base64', async (t) => {
  const api = await startApi(t);
  await api.cli(['kv', 'put', `-flags=${LOCK_FLAG}`], ['dir/a', 'x<y']);
  await api.cli(['kv', 'put'], ['dir/sub/b', 'B']);
  await api.cli(['kv', 'put'], ['other', 'O']);
  const detailed = await api.cli(['kv', 'get', '-detailed'], ['dir/a']);
  t.same(detailed, {
    code: 0, stderr: '',
    stdout: `CreateIndex      2\nFlags            ${LOCK_FLAG}\nKey              dir/a\nLockIndex        0\nModifyIndex      2\nSession          -\nValue            x<y\n`,
  });
  t.same(await api.cli(['kv', 'get', '-recurse'], ['dir']), { code: 0, stdout: 'dir/a:x<y\ndir/sub/b:B\n', stderr: '' });
  const recurseDetailed = await api.cli(['kv', 'get', '-recurse', '-detailed'], ['dir/']);
  t.equal(recurseDetailed.stdout.split('\n\n').length, 2, 'entries are separated by one blank line');
  t.match(recurseDetailed.stdout, /Key {14}dir\/sub\/b\nLockIndex/);
  t.same(await api.cli(['kv', 'get', '-recurse'], ['nothing']), { code: 0, stdout: '', stderr: '' }, 'no match: no output, 0');
  t.same(await api.cli(['kv', 'get', '-recurse'], []), { code: 0, stdout: 'dir/a:x<y\ndir/sub/b:B\nother:O\n', stderr: '' });
  t.same(await api.cli(['kv', 'get', '-keys'], []), { code: 0, stdout: 'dir/\nother\n', stderr: '' });
  t.same(await api.cli(['kv', 'get', '-keys'], ['dir/']), { code: 0, stdout: 'dir/a\ndir/sub/\n', stderr: '' });
  t.same(await api.cli(['kv', 'get', '-keys', '-separator='], ['dir/']), { code: 0, stdout: 'dir/a\ndir/sub/b\n', stderr: '' });
  t.same(await api.cli(['kv', 'get', '-keys'], ['zzz']), { code: 0, stdout: '', stderr: '' });
  t.same(await api.cli(['kv', 'get', '-base64'], ['other']), { code: 0, stdout: 'Tw==\n', stderr: '' });
  t.same(await api.cli(['kv', 'get', '-stale'], ['other']), { code: 0, stdout: 'O\n', stderr: '' });
});

t.test('put -cas / -acquire / -release and their failures', async (t) => {
  const api = await startApi(t);
  await api.cli(['kv', 'put'], ['k', 'v1']);
  const index = String(api.agent.fsm.readKey('k').value?.ModifyIndex);
  t.same(await api.cli(['kv', 'put', '-cas'], ['k', 'v2']), { code: 1, stdout: '', stderr: 'Must specify -modify-index with -cas!\n' });
  t.same(await api.cli(['kv', 'put', '-cas', '-modify-index=999'], ['k', 'v2']), { code: 1, stdout: '', stderr: 'Error! Did not write to k: CAS failed\n' });
  t.same(await api.cli(['kv', 'put', '-cas', '-modify-index', index], ['k', 'v2']), { code: 0, stdout: 'Success! Data written to: k\n', stderr: '' });
  t.same(await api.cli(['kv', 'put', '-acquire'], ['lock', 'me']), { code: 1, stdout: '', stderr: 'Error! Missing -session (required with -acquire and -release)\n' });
  const mine = await createSession(api);
  const theirs = await createSession(api);
  t.same(await api.cli(['kv', 'put', '-acquire', `-session=${mine}`], ['lock', 'me']), { code: 0, stdout: 'Success! Lock acquired on: lock\n', stderr: '' });
  t.same(await api.cli(['kv', 'put', '-acquire', `-session=${theirs}`], ['lock', 'them']), { code: 1, stdout: '', stderr: 'Error! Did not acquire lock\n' });
  t.same(await api.cli(['kv', 'put', '-release', `-session=${theirs}`], ['lock']), { code: 1, stdout: '', stderr: 'Error! Did not release lock\n' });
  const held = await api.cli(['kv', 'get', '-detailed'], ['lock']);
  t.match(held.stdout, new RegExp(`LockIndex        1\nModifyIndex      \\d+\nSession          ${mine}\n`));
  t.same(await api.cli(['kv', 'put', '-release', `-session=${mine}`], ['lock', 'me']), { code: 0, stdout: 'Success! Lock released on: lock\n', stderr: '' });
  t.same(await api.cli(['kv', 'put', '-acquire', '-session=nope'], ['lock']), {
    code: 1, stdout: '', stderr: 'Error! Failed writing data: Unexpected response code: 500 (raft apply failed: invalid session "nope")\n',
  });
});

t.test('delete: plain, -recurse, -cas, and the argument checks', async (t) => {
  const api = await startApi(t);
  for (const key of ['a/1', 'a/2', 'ab', 'k']) await api.cli(['kv', 'put'], [key, 'v']);
  t.same(await api.cli(['kv', 'delete'], ['a/1']), { code: 0, stdout: 'Success! Deleted key: a/1\n', stderr: '' });
  t.same(await api.cli(['kv', 'delete'], ['never']), { code: 0, stdout: 'Success! Deleted key: never\n', stderr: '' });
  t.same(await api.cli(['kv', 'delete', '-recurse'], ['a']), { code: 0, stdout: 'Success! Deleted keys with prefix: a\n', stderr: '' });
  t.same(api.agent.fsm.readPrefix('').value.map((entry) => entry.Key), ['k'], '"a" also deletes "ab"');
  t.same(await api.cli(['kv', 'delete'], []), { code: 1, stdout: '', stderr: 'Error! Missing KEY argument\n' });
  t.same(await api.cli(['kv', 'delete', '-cas'], ['k']), {
    code: 1, stdout: '', stderr: 'Cannot delete a key that does not exist. Provide a -modify-index greater than than 0.\n',
  });
  t.same(await api.cli(['kv', 'delete', '-modify-index=3'], ['k']), { code: 1, stdout: '', stderr: 'Cannot specify -modify-index without -cas!\n' });
  t.same(await api.cli(['kv', 'delete', '-recurse', '-cas', '-modify-index=3'], ['k']), { code: 1, stdout: '', stderr: 'Cannot specify both -cas and -recurse!\n' });
  t.same(await api.cli(['kv', 'delete', '-cas', '-modify-index=999'], ['k']), { code: 1, stdout: '', stderr: 'Error! Did not delete key k: CAS failed\n' });
  const index = String(api.agent.fsm.readKey('k').value?.ModifyIndex);
  t.same(await api.cli(['kv', 'delete', '-cas', `-modify-index=${index}`], ['k']), { code: 0, stdout: 'Success! Deleted key: k\n', stderr: '' });
  t.same(await api.cli(['kv', 'delete', '-datacenter=dc9'], ['k']), {
    code: 1, stdout: '', stderr: 'Error deleting key k: Unexpected response code: 500 (No path to datacenter)\n',
  });
});

t.test('export and import: Consul\'s JSON, round trip through stdin and @file', async (t) => {
  const source = await startApi(t);
  await source.cli(['kv', 'put', `-flags=${LOCK_FLAG}`], ['cfg/a', 'alpha']);
  await source.cli(['kv', 'put'], ['cfg/b&c', '<b>']);
  await source.cli(['kv', 'put'], ['zzz', 'not exported']);
  const exported = await source.cli(['kv', 'export'], ['cfg/']);
  t.same(exported, {
    code: 0, stderr: '',
    stdout: `[\n\t{\n\t\t"key": "cfg/a",\n\t\t"flags": ${LOCK_FLAG},\n\t\t"value": "YWxwaGE="\n\t},\n`
      + '\t{\n\t\t"key": "cfg/b\\u0026c",\n\t\t"flags": 0,\n\t\t"value": "PGI+"\n\t}\n]\n',
  });
  t.same(await source.cli(['kv', 'export'], ['none/']), { code: 0, stdout: '[]\n', stderr: '' });
  const target = await startApi(t);
  t.same(await target.cli(['kv', 'import'], ['-'], { stdin: exported.stdout }), { code: 0, stdout: 'Imported: cfg/a\nImported: cfg/b&c\n', stderr: '' });
  t.equal(target.agent.fsm.readKey('cfg/a').value?.Flags, BigInt(LOCK_FLAG));
  t.equal(Buffer.from(target.agent.fsm.readKey('cfg/b&c').value?.Value ?? []).toString(), '<b>');
  const file = join(t.testdir(), 'export.json');
  writeFileSync(file, '[{"Key":"x","Value":"eA=="}]');
  t.same(await target.cli(['kv', 'import'], [`@${file}`]), { code: 0, stdout: 'Imported: x\n', stderr: '' }, 'field names are case-insensitive');
  t.same(await target.cli(['kv', 'import'], []), { code: 1, stdout: '', stderr: 'Error! Missing DATA argument\n' });
  t.same(await target.cli(['kv', 'import'], ['']), { code: 1, stdout: '', stderr: 'Error! Empty DATA argument\n' });
  t.same(await target.cli(['kv', 'import'], ['[{"key":']), { code: 1, stdout: '', stderr: 'Cannot unmarshal data: unexpected EOF\n' });
  t.same(await target.cli(['kv', 'import'], ['[{"key":"y","value":"%%"}]']), {
    code: 1, stdout: '', stderr: 'Error base 64 decoding value for key y: illegal base64 data\n',
  });
});

t.test('flags, help, subcommands, addresses and connection errors', async (t) => {
  const api = await startApi(t);
  await api.cli(['kv', 'put'], ['k', 'v']);
  const unknown = await api.cli(['kv', 'get', '-bogus'], ['k']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /^flag provided but not defined: -bogus\n/);
  const help = await runConclave(['kv', 'get', '-h']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: conclave kv get \[options\] \[KEY_OR_PREFIX\]/);
  t.match(help.stdout, /-http-addr=<string>/);
  const noSub = await runConclave(['kv']);
  t.equal(noSub.code, 1);
  t.match(noSub.stderr, /Usage: conclave kv <subcommand>[\s\S]*get +Retrieves or lists data from the KV store/);
  t.equal((await runConclave(['kv', 'frob'])).code, 1);
  t.same(await runConclave(['kv', 'get', 'k'], { env: { CONSUL_HTTP_ADDR: api.url.replace('http://', '') } }), { code: 0, stdout: 'v\n', stderr: '' },
    'CONSUL_HTTP_ADDR without a scheme');
  t.same(await runConclave(['kv', 'get', '--http-addr', api.url, 'k']), { code: 0, stdout: 'v\n', stderr: '' }, '--name value works too');
  t.same(await runConclave(['kv', 'get', '-http-addr=127.0.0.1:1', 'k']), {
    code: 1, stdout: '', stderr: 'Error querying Consul agent: Get "http://127.0.0.1:1/v1/kv/k": dial tcp 127.0.0.1:1: connect: connection refused\n',
  });
  t.same(await runConclave(['kv', 'get', '-http-addr=ftp://x', 'k']), { code: 1, stdout: '', stderr: 'Error connecting to Consul agent: Unknown protocol scheme: ftp\n' });
  t.same(await api.cli(['kv', 'get', '-datacenter=dc9'], ['k']), {
    code: 1, stdout: '', stderr: 'Error querying Consul agent: Unexpected response code: 500 (No path to datacenter)\n',
  });
  t.same(await api.cli(['kv', 'get', '-token=secret'], ['k']), { code: 0, stdout: 'v\n', stderr: '' }, 'a token is sent and ignored');
});
