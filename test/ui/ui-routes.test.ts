/**
 * Serving the UI: only when enabled; `/` and `/ui` redirect; the page and its assets with the
 * right types, caching (hashed assets immutable, the page revalidated), ETags, gzip and a CSP
 * that allows nothing from elsewhere; every view's address serves the page; no interference
 * with /v1.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { UI_ASSETS_DIR_DEFAULT, UI_CONTENT_SECURITY_POLICY, uiRoutes } from '../../src/http/routes/ui.js';
import { setup } from '../http/helpers.js';

t.test('with the UI off, / is Consul\'s "UI disabled" and /ui/ is unknown', async (t) => {
  const f = await setup(t);
  const root = await f.request('/');
  t.equal(root.statusCode, 200);
  t.match(root.body, /UI disabled/);
  t.equal((await f.request('/ui/')).statusCode, 404);
});

t.test('with the UI on: redirects, the page at every view address, the built assets', async (t) => {
  t.ok(existsSync(join(UI_ASSETS_DIR_DEFAULT, 'index.html')), `the assets are built in ${UI_ASSETS_DIR_DEFAULT} (npm run build)`);
  const f = await setup(t, { ui: true });
  const root = await f.request('/');
  t.equal(root.statusCode, 302);
  t.equal(root.headers.location, '/ui/');
  const bare = await f.request('/ui');
  t.equal(bare.statusCode, 301);
  t.equal(bare.headers.location, '/ui/');
  for (const path of ['/ui/', '/ui/kv/', '/ui/kv/docker/swarm/nodes/10.0.0.5%3A2375', '/ui/nodes/s1', '/ui/cluster', '/ui/anything']) {
    const page = await f.request(path);
    t.equal(page.statusCode, 200, path);
    t.equal(page.headers['content-type'], 'text/html; charset=utf-8', path);
  }
  const page = await f.request('/ui/');
  t.equal(page.headers['cache-control'], 'no-cache', 'the page is revalidated on every load');
  t.equal(page.headers['content-security-policy'], UI_CONTENT_SECURITY_POLICY);
  t.equal(page.headers['x-content-type-options'], 'nosniff');
  t.notMatch(page.body, /https?:\/\//, 'the page refers to nothing outside this origin');
  const urls = [...page.body.matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)].map((match) => match[1] ?? '');
  t.ok(urls.some((url) => url.endsWith('.js')) && urls.some((url) => url.endsWith('.css')), 'script and style are linked');
  for (const url of urls) {
    const asset = await f.request(url);
    t.equal(asset.statusCode, 200, url);
    t.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable', `${url}: hashed, cached for a year`);
    t.match(asset.headers['content-type'], url.endsWith('.js') ? /^text\/javascript/ : url.endsWith('.css') ? /^text\/css/ : /^image\/svg\+xml/);
    t.notMatch(asset.body, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, `${url} fetches nothing from the network`);
  }
  t.equal((await f.request('/ui/assets/nope.js')).statusCode, 404);
  t.equal((await f.request('/ui/assets/index.html')).statusCode, 404, 'the page is not an asset');
  const api = await f.request('/v1/kv/?keys');
  t.equal(api.statusCode, 200, '/v1 is untouched');
  t.equal((await f.request('/v1/ui')).statusCode, 404);
});

t.test('caching, ETags and gzip on a folder of assets', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'conclave-ui-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  writeFileSync(join(directory, 'index.html'), '<!doctype html><title>x</title>');
  writeFileSync(join(directory, 'app-0123456789ab.js'), `console.log(${JSON.stringify('x'.repeat(5000))});`);
  writeFileSync(join(directory, 'notes.txt'), 'unhashed');
  const app = Fastify();
  app.decorateRequest('consulPath', '');
  app.addHook('onRequest', async (request) => {
    request.consulPath = decodeURIComponent(request.url.split('?')[0] ?? '');
  });
  await app.register(uiRoutes, { assetsDir: directory });
  t.teardown(() => app.close());
  const script = await app.inject({ url: '/ui/assets/app-0123456789ab.js', headers: { 'accept-encoding': 'gzip, br' } });
  t.equal(script.headers['content-encoding'], 'gzip');
  t.equal(script.headers.vary, 'Accept-Encoding');
  t.ok(script.rawPayload.length < 500, 'compressed');
  const plain = await app.inject({ url: '/ui/assets/app-0123456789ab.js' });
  t.equal(plain.headers['content-encoding'], undefined, 'no gzip unless asked');
  t.equal(plain.body.length, 5000 + 16);
  const etag = String(plain.headers.etag);
  const again = await app.inject({ url: '/ui/assets/app-0123456789ab.js', headers: { 'if-none-match': etag } });
  t.equal(again.statusCode, 304);
  t.equal(again.body, '');
  t.equal((await app.inject({ url: '/ui/assets/notes.txt' })).headers['cache-control'], 'no-cache', 'unhashed names are revalidated');
  const page = await app.inject({ url: '/ui/kv/x' });
  t.equal(page.headers['cache-control'], 'no-cache');
  t.equal((await app.inject({ url: '/ui/', headers: { 'if-none-match': String(page.headers.etag) } })).statusCode, 304);
});

t.test('assets not built: the agent runs, /ui/ says what to do', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'conclave-ui-empty-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const app = Fastify();
  app.decorateRequest('consulPath', '');
  app.addHook('onRequest', async (request) => {
    request.consulPath = request.url;
  });
  await app.register(uiRoutes, { assetsDir: directory });
  t.teardown(() => app.close());
  const page = await app.inject({ url: '/ui/' });
  t.equal(page.statusCode, 503);
  t.match(page.body, /npm run build/);
  t.equal((await app.inject({ url: '/' })).statusCode, 302);
});
