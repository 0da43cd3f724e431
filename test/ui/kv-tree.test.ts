/**
 * Folders from flat keys (`?keys&separator=/`), breadcrumbs, names a person types, and the
 * UI's addresses.
 */
import t from 'tap';
import { baseName, breadcrumbs, decodeKeyPath, encodeKeyPath, folderRows, isFolder, keyFromName, parentFolder } from '../../src/ui/lib/kv-tree.js';
import { hrefOf, parseRoute, sectionOf } from '../../src/ui/lib/routes.js';

t.test('a ?keys&separator=/ answer becomes folders first, then keys', async (t) => {
  // What Consul answers for prefix "docker/swarm/" after `swarm manage` (key "docker/swarm/nodes")
  // and `swarm join` (keys under "docker/swarm/nodes/").
  t.same(folderRows('docker/swarm/', ['docker/swarm/leader', 'docker/swarm/nodes', 'docker/swarm/nodes/']), [
    { key: 'docker/swarm/nodes/', name: 'nodes/', kind: 'folder' },
    { key: 'docker/swarm/leader', name: 'leader', kind: 'key' },
    { key: 'docker/swarm/nodes', name: 'nodes', kind: 'key' },
  ]);
  t.same(folderRows('', ['b', 'a/', 'c/']).map((row) => row.key), ['a/', 'c/', 'b'], 'root: folders first, each group sorted');
  t.same(folderRows('docker/swarm/nodes/', ['docker/swarm/nodes/', 'docker/swarm/nodes/10.0.0.5:2375']), [
    { key: 'docker/swarm/nodes/', name: 'nodes/', kind: 'self' },
    { key: 'docker/swarm/nodes/10.0.0.5:2375', name: '10.0.0.5:2375', kind: 'key' },
  ], 'a key named like the folder itself is listed, marked as such');
});

t.test('a listing without separator is cut the same way', async (t) => {
  t.same(folderRows('a/', ['a/x/1', 'a/x/2', 'a/x/y/3', 'a/k', 'b/z']).map((row) => [row.kind, row.name]), [['folder', 'x/'], ['key', 'k']],
    'deeper keys collapse into their first folder; keys outside the prefix are ignored');
});

t.test('parents, base names, breadcrumbs', async (t) => {
  t.equal(parentFolder('a/b/c'), 'a/b/');
  t.equal(parentFolder('a/b/'), 'a/');
  t.equal(parentFolder('a'), '');
  t.equal(parentFolder(''), '');
  t.equal(baseName('docker/swarm/nodes/10.0.0.5:2375'), '10.0.0.5:2375');
  t.equal(baseName('docker/swarm/'), 'swarm/');
  t.ok(isFolder(''));
  t.ok(isFolder('a/'));
  t.notOk(isFolder('a'));
  t.same(breadcrumbs('docker/swarm/nodes/'), [
    { label: 'Key/Value', prefix: '' }, { label: 'docker', prefix: 'docker/' }, { label: 'swarm', prefix: 'docker/swarm/' }, { label: 'nodes', prefix: 'docker/swarm/nodes/' },
  ]);
  t.same(breadcrumbs('docker/swarm/nodes/10.0.0.5:2375').map((crumb) => crumb.prefix), ['', 'docker/', 'docker/swarm/', 'docker/swarm/nodes/'], 'a key: up to its folder');
  t.same(breadcrumbs(''), [{ label: 'Key/Value', prefix: '' }]);
});

t.test('names a person types: relative to the folder, reachable over HTTP', async (t) => {
  t.same(keyFromName('app/', 'config.json'), { ok: true, key: 'app/config.json' });
  t.same(keyFromName('app/', 'sub/'), { ok: true, key: 'app/sub/' }, 'a trailing / makes a folder');
  t.same(keyFromName('', 'a/b/c'), { ok: true, key: 'a/b/c' });
  for (const [name, why] of [['', /Enter a key name/], [' x', /space/], ['/x', /relative/], ['a//b', /empty segment/], ['a/../b', /\. or \.\./], ['./a', /\. or \.\./], ['a\u0001', /control/]] as const) {
    const result = keyFromName('app/', name);
    t.equal(result.ok, false, `${JSON.stringify(name)} is refused`);
    t.match(result.ok ? '' : result.error, why);
  }
  t.equal(keyFromName('', 'x'.repeat(3000)).ok, false, 'bounded length');
});

t.test('key paths are percent-encoded per segment, and decode back', async (t) => {
  const key = 'docker/swarm/nodes/10.0.0.5:2375/a b?#%';
  const encoded = encodeKeyPath(key);
  t.equal(encoded, 'docker/swarm/nodes/10.0.0.5%3A2375/a%20b%3F%23%25');
  t.equal(decodeKeyPath(encoded), key);
  t.equal(decodeKeyPath('%E0%A4%A'), null, 'a malformed escape is not a key');
});

t.test('routes: every view has an address, and addresses round-trip', async (t) => {
  const routes = [
    { view: 'kv', path: '' }, { view: 'kv', path: 'docker/swarm/nodes/' }, { view: 'kv', path: 'docker/swarm/nodes/10.0.0.5:2375' },
    { view: 'nodes' }, { view: 'node', name: 'web 1' }, { view: 'services' }, { view: 'service', name: 'redis' }, { view: 'cluster' },
  ] as const;
  for (const route of routes) t.same(parseRoute(hrefOf(route)), route, hrefOf(route));
  t.same(parseRoute('/ui/'), { view: 'home' });
  t.same(parseRoute('/'), { view: 'home' });
  t.same(parseRoute('/ui/nodes/'), { view: 'nodes' }, 'a trailing slash is forgiven');
  t.same(parseRoute('/ui/kv'), { view: 'kv', path: '' });
  t.same(parseRoute('/ui/nope'), { view: 'not-found', pathname: '/ui/nope' });
  t.same(parseRoute('/ui/nodes/a/b'), { view: 'not-found', pathname: '/ui/nodes/a/b' });
  t.same(parseRoute('/ui/kv/%zz'), { view: 'not-found', pathname: '/ui/kv/%zz' });
  t.equal(sectionOf({ view: 'node', name: 'x' }), 'nodes');
  t.equal(sectionOf({ view: 'home' }), null);
});
