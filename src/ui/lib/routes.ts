/**
 * The UI's addresses. Every view has a real path under `/ui/` (the server answers any of them
 * with the page), so a view can be bookmarked, reloaded and opened in a new tab:
 * `/ui/kv/<folder>/` and `/ui/kv/<key>` (each segment percent-encoded), `/ui/nodes`,
 * `/ui/nodes/<name>`, `/ui/services`, `/ui/services/<name>`, `/ui/cluster`.
 */
import { decodeKeyPath, encodeKeyPath } from './kv-tree.js';

/** Where the UI is served. */
export const UI_BASE = '/ui/';

/** A parsed address. */
export type Route =
  | { readonly view: 'home' }
  | { readonly view: 'kv'; readonly path: string }
  | { readonly view: 'nodes' }
  | { readonly view: 'node'; readonly name: string }
  | { readonly view: 'services' }
  | { readonly view: 'service'; readonly name: string }
  | { readonly view: 'cluster' }
  | { readonly view: 'not-found'; readonly pathname: string };

/** The top-level sections, in navigation order. */
export const SECTIONS = [
  { id: 'kv', label: 'Key/Value', href: `${UI_BASE}kv/` },
  { id: 'nodes', label: 'Nodes', href: `${UI_BASE}nodes` },
  { id: 'services', label: 'Services', href: `${UI_BASE}services` },
  { id: 'cluster', label: 'Cluster', href: `${UI_BASE}cluster` },
] as const;

/** The section a route belongs to (for the navigation's current item). */
export function sectionOf(route: Route): (typeof SECTIONS)[number]['id'] | null {
  switch (route.view) {
    case 'kv':
      return 'kv';
    case 'nodes':
    case 'node':
      return 'nodes';
    case 'services':
    case 'service':
      return 'services';
    case 'cluster':
      return 'cluster';
    case 'home':
    case 'not-found':
      return null;
  }
}

const decodeName = (segment: string): string | null => {
  try {
    const name = decodeURIComponent(segment);
    return name === '' ? null : name;
  } catch {
    return null;
  }
};

/** Parses a pathname (`location.pathname`). */
export function parseRoute(pathname: string): Route {
  if (pathname === UI_BASE || pathname === '/ui' || pathname === '/') return { view: 'home' };
  if (!pathname.startsWith(UI_BASE)) return { view: 'not-found', pathname };
  const rest = pathname.slice(UI_BASE.length);
  if (rest === 'kv' || rest.startsWith('kv/')) {
    const path = decodeKeyPath(rest.slice('kv/'.length));
    return path === null ? { view: 'not-found', pathname } : { view: 'kv', path };
  }
  const [section, name, ...more] = rest.replace(/\/$/, '').split('/');
  if (more.length > 0) return { view: 'not-found', pathname };
  if (section === 'nodes' || section === 'services') {
    if (name === undefined) return { view: section };
    const decoded = decodeName(name);
    if (decoded === null) return { view: 'not-found', pathname };
    return section === 'nodes' ? { view: 'node', name: decoded } : { view: 'service', name: decoded };
  }
  if (section === 'cluster' && name === undefined) return { view: 'cluster' };
  return { view: 'not-found', pathname };
}

/** The address of a route (inverse of parseRoute). */
export function hrefOf(route: Route): string {
  switch (route.view) {
    case 'home':
      return UI_BASE;
    case 'kv':
      return `${UI_BASE}kv/${encodeKeyPath(route.path)}`;
    case 'nodes':
      return `${UI_BASE}nodes`;
    case 'node':
      return `${UI_BASE}nodes/${encodeURIComponent(route.name)}`;
    case 'services':
      return `${UI_BASE}services`;
    case 'service':
      return `${UI_BASE}services/${encodeURIComponent(route.name)}`;
    case 'cluster':
      return `${UI_BASE}cluster`;
    case 'not-found':
      return route.pathname;
  }
}
