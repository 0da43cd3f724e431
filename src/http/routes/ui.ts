/**
 * The web UI (issue 10), served by the agent itself when `ui` (`-ui`, `ui_config.enabled`, on in
 * `-dev`) is set; app.ts registers this plugin only then.
 * - `GET /` redirects (302) to `/ui/`. Consul answers 301; a permanent redirect would outlive
 *   turning the UI off, so this one is temporary. `GET /ui` redirects (301) to `/ui/`, as Go's
 *   ServeMux does for a subtree.
 * - `GET /ui/assets/<name>`: the files `npm run build` made (src/ui/build-assets.ts). Their names
 *   carry a content hash, so they are cacheable for a year (`immutable`); unknown names are 404.
 * - `GET /ui/<anything else>`: the page (`index.html`), so every view has a real address that can
 *   be reloaded or bookmarked; it is revalidated on every load (`no-cache` + ETag).
 * Assets are read into memory once at start (tens of KiB) with a gzip copy of the compressible
 * ones. Every answer carries `X-Content-Type-Options: nosniff`; the page carries a Content
 * Security Policy that allows only this origin's script, style and API: nothing is fetched from
 * anywhere else, and the UI works offline. If the assets were not built, `/ui/` says so (503)
 * instead of failing the agent.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { sendText } from '../errors.js';

/** Where `npm run build` puts the assets: `<outDir>/src/ui/assets/`, from `<outDir>/src/http/routes/`. */
export const UI_ASSETS_DIR_DEFAULT = fileURLToPath(new URL('../../ui/assets/', import.meta.url));

/** More than this in the assets folder is not a UI build: refuse to load it into memory. */
const UI_ASSETS_BYTES_MAX = 4 * 1024 * 1024;
/** Smaller bodies are not worth compressing. */
const GZIP_BYTES_MIN = 1024;

/** The page's policy: this origin only; no inline script; no framing (clickjacking). */
export const UI_CONTENT_SECURITY_POLICY = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "font-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** One file, ready to send. */
interface UiAsset {
  readonly body: Buffer;
  readonly gzip: Buffer | null;
  readonly contentType: string;
  readonly etag: string;
  readonly cacheControl: string;
}

/** Options of the plugin (tests point it at their own folder). */
export interface UiRouteOptions {
  readonly assetsDir?: string;
}

/** Reads the assets folder; null when there is no built UI in it. */
export function loadUiAssets(directory: string): Map<string, UiAsset> | null {
  if (!existsSync(join(directory, 'index.html'))) return null;
  const assets = new Map<string, UiAsset>();
  let totalBytes = 0;
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    if (!statSync(path).isFile()) continue;
    const body = readFileSync(path);
    totalBytes += body.byteLength;
    if (totalBytes > UI_ASSETS_BYTES_MAX) throw new Error(`the UI assets in ${directory} exceed ${UI_ASSETS_BYTES_MAX} bytes`);
    const contentType = CONTENT_TYPES[extname(name)] ?? 'application/octet-stream';
    const compressible = contentType.startsWith('text/') || contentType === 'image/svg+xml' || contentType === 'application/json';
    assets.set(name, {
      body,
      gzip: compressible && body.byteLength >= GZIP_BYTES_MIN ? gzipSync(body, { level: 9 }) : null,
      contentType,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
      // Hashed names never change content; the page and unhashed files are revalidated.
      cacheControl: /-[0-9a-f]{12}\.[a-z]+$/.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
  }
  return assets;
}

/** Sends `asset`, honouring If-None-Match and Accept-Encoding. */
function sendAsset(request: FastifyRequest, reply: FastifyReply, asset: UiAsset): FastifyReply {
  reply.header('cache-control', asset.cacheControl).header('etag', asset.etag).header('x-content-type-options', 'nosniff');
  if (asset.contentType.startsWith('text/html')) {
    reply.header('content-security-policy', UI_CONTENT_SECURITY_POLICY).header('referrer-policy', 'no-referrer').header('x-frame-options', 'DENY');
  }
  if (asset.gzip !== null) reply.header('vary', 'Accept-Encoding');
  const ifNoneMatch = request.headers['if-none-match'];
  if (typeof ifNoneMatch === 'string' && ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === asset.etag)) {
    return reply.code(304).send();
  }
  reply.header('content-type', asset.contentType);
  const acceptEncoding = request.headers['accept-encoding'];
  if (asset.gzip !== null && typeof acceptEncoding === 'string' && /\bgzip\b/.test(acceptEncoding)) {
    return reply.code(200).header('content-encoding', 'gzip').send(asset.gzip);
  }
  return reply.code(200).send(asset.body);
}

/** The UI plugin (see the file comment). */
export const uiRoutes: FastifyPluginAsync<UiRouteOptions> = async (app, options) => {
  const directory = options.assetsDir ?? UI_ASSETS_DIR_DEFAULT;
  const assets = loadUiAssets(directory);
  if (assets === null) app.log.warn({ directory }, 'the web UI is enabled but its assets were not built (npm run build): /ui/ answers 503');
  app.get('/', async (_request, reply) => reply.redirect('/ui/', 302));
  app.get('/ui', async (_request, reply) => reply.redirect('/ui/', 301));
  app.get('/ui/*', async (request, reply) => {
    if (assets === null) return sendText(reply, 503, 'The web UI was not built: run npm run build.\n');
    const path = request.consulPath;
    if (path.startsWith('/ui/assets/')) {
      const asset = assets.get(path.slice('/ui/assets/'.length));
      if (asset === undefined || path.slice('/ui/assets/'.length) === 'index.html') return sendText(reply, 404, 'Not found\n');
      return sendAsset(request, reply, asset);
    }
    const page = assets.get('index.html');
    if (page === undefined) return sendText(reply, 503, 'The web UI was not built: run npm run build.\n');
    return sendAsset(request, reply, page);
  });
};
