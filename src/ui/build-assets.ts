/**
 * Builds the web UI's assets at package time (`npm run build`, after tsc): esbuild bundles and
 * minifies `src/ui/client/main.ts` (with `src/ui/lib/**`) into one ES module, and copies the
 * stylesheet and icon; every asset gets a content hash in its name, so the server can let
 * browsers cache them for a year, and `index.html` (never cached without revalidation) is
 * written last with the hashed names and the navigation filled in. Output:
 * `<outDir>/src/ui/assets/`, next to this compiled file — inside `build/src`, which is what a
 * production image copies. Nothing is fetched from the network, at build or at run time.
 *
 *   node build/src/ui/build-assets.js            # run from the package root
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, transform } from 'esbuild';
import { SECTIONS } from './lib/routes.js';

/** Where the UI's sources are, from the package root (the cwd of npm scripts). */
const SOURCE_DIR = resolve('src/ui');
/** Where the assets go: next to the compiled UI code, wherever tsc's outDir is. */
const OUTPUT_DIR = fileURLToPath(new URL('./assets/', import.meta.url));
/** Browsers the bundle targets: ES2022 (Chrome/Edge 94+, Firefox 93+, Safari 16+). */
const BROWSER_TARGETS = ['chrome94', 'firefox93', 'safari16'];
/** A bundle above this is a mistake (a dependency pulled in by accident): fail the build. */
const ASSET_BYTES_MAX = 512 * 1024;

/** `name.ext` → `name-<hash>.ext`, the hash over the content. */
function hashedName(name: string, content: Uint8Array): string {
  const extension = extname(name);
  const hash = createHash('sha256').update(content).digest('hex').slice(0, 12);
  return `${name.slice(0, -extension.length)}-${hash}${extension}`;
}

/** Text safe inside HTML element content and attribute values. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  const bundle = await build({
    entryPoints: [join(SOURCE_DIR, 'client/main.ts')],
    bundle: true,
    format: 'esm',
    target: BROWSER_TARGETS,
    minify: true,
    legalComments: 'none',
    write: false,
    outfile: 'app.js',
    logLevel: 'warning',
  });
  const script = bundle.outputFiles[0];
  if (script === undefined) throw new Error('esbuild produced no output');
  const styles = await transform(readFileSync(join(SOURCE_DIR, 'static/styles.css'), 'utf8'), { loader: 'css', minify: true, target: BROWSER_TARGETS, legalComments: 'none' });
  const assets = new Map<string, Uint8Array>([
    ['app.js', script.contents],
    ['app.css', new TextEncoder().encode(styles.code)],
    ['favicon.svg', readFileSync(join(SOURCE_DIR, 'static/favicon.svg'))],
  ]);
  rmSync(OUTPUT_DIR, { recursive: true, force: true });
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const names = new Map<string, string>();
  for (const [name, content] of assets) {
    if (content.byteLength > ASSET_BYTES_MAX) throw new Error(`${name} is ${content.byteLength} bytes, over ${ASSET_BYTES_MAX}`);
    const hashed = hashedName(name, content);
    names.set(name, `/ui/assets/${hashed}`);
    writeFileSync(join(OUTPUT_DIR, hashed), content);
  }
  const navigation = SECTIONS.map((section) => `<li><a href="${escapeHtml(section.href)}" data-section="${section.id}">${escapeHtml(section.label)}</a></li>`).join('');
  const template = readFileSync(join(SOURCE_DIR, 'static/index.html'), 'utf8');
  const html = template.replace(/%(APP_JS|APP_CSS|FAVICON|NAV)%/g, (_match, slot: string) => {
    if (slot === 'NAV') return navigation;
    const file = { APP_JS: 'app.js', APP_CSS: 'app.css', FAVICON: 'favicon.svg' }[slot] ?? '';
    const url = names.get(file);
    if (url === undefined) throw new Error(`no asset for ${slot}`);
    return url;
  });
  writeFileSync(join(OUTPUT_DIR, 'index.html'), html);
  const sizes = [...assets].map(([name, content]) => `${name} ${(content.byteLength / 1024).toFixed(1)} KiB`).join(', ');
  process.stdout.write(`ui: ${sizes} → ${OUTPUT_DIR} in ${Math.round(performance.now() - startedAt)} ms\n`);
}

await main();
