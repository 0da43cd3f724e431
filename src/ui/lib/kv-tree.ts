/**
 * The Key/Value store as folders. Consul has no folders: keys are flat strings, and
 * `GET /v1/kv/<prefix>?keys&separator=/` cuts each key under the prefix just after the next
 * `/` (consul-api.md §4), so `a/` + `/` lists `a/x/` (a "folder") and `a/k` (a key). This module
 * turns that answer into rows, builds breadcrumbs, and checks names a person types: a key with
 * an empty, `.` or `..` segment cannot be reached over HTTP (Consul redirects such paths).
 */

/** The separator the UI browses by. */
export const KV_SEPARATOR = '/';

/** Longest key the UI accepts (Consul's keys are bounded by the URL; this keeps them readable). */
export const KV_KEY_CHARS_MAX = 2048;

/** One row of a folder listing. */
export interface FolderRow {
  /** The full key (folders end with the separator). */
  readonly key: string;
  /** What is shown: the part after the folder's prefix. */
  readonly name: string;
  /**
   * `folder`: there are keys below `key`; `key`: a key; `self`: a key named exactly like the
   * folder (`docker/swarm/nodes/` stored as a key, as some tools do), listed inside it.
   */
  readonly kind: 'folder' | 'key' | 'self';
}

/**
 * The rows of folder `prefix` from the keys Consul listed under it, folders first, each group
 * in key order; duplicates collapse. Keys not under `prefix` are ignored (never sent by Consul).
 * Also accepts a listing made without a separator (every key under the prefix): each key is
 * then cut the way the separator would have cut it.
 */
export function folderRows(prefix: string, keys: readonly string[]): FolderRow[] {
  const rows = new Map<string, FolderRow>();
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const rest = key.slice(prefix.length);
    if (rest === '') {
      rows.set(key, { key, name: key.slice(parentFolder(key).length) || key, kind: 'self' });
      continue;
    }
    const cut = rest.indexOf(KV_SEPARATOR);
    if (cut >= 0) {
      const folder = prefix + rest.slice(0, cut + 1);
      if (!rows.has(folder)) rows.set(folder, { key: folder, name: rest.slice(0, cut + 1), kind: 'folder' });
    } else {
      rows.set(key, { key, name: rest, kind: 'key' });
    }
  }
  const rank = { self: 0, folder: 1, key: 2 } as const;
  return [...rows.values()].sort((a, b) => rank[a.kind] - rank[b.kind] || compareKeys(a.key, b.key));
}

/** Key order as Consul sends it: by code units (the same as bytes for the usual ASCII keys). */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/** The folder holding `key`: `a/b/c` → `a/b/`, `a/b/` → `a/`, `a` → `` (the root). */
export function parentFolder(key: string): string {
  const trimmed = key.endsWith(KV_SEPARATOR) ? key.slice(0, -1) : key;
  const cut = trimmed.lastIndexOf(KV_SEPARATOR);
  return cut < 0 ? '' : trimmed.slice(0, cut + 1);
}

/** The last segment of `key` (a folder keeps its trailing separator). */
export function baseName(key: string): string {
  return key.slice(parentFolder(key).length);
}

/** True when `key` names a folder (ends with the separator) or the root. */
export function isFolder(key: string): boolean {
  return key === '' || key.endsWith(KV_SEPARATOR);
}

/** One breadcrumb: a folder to go back to. */
export interface Crumb {
  readonly label: string;
  /** The folder prefix ("" is the root). */
  readonly prefix: string;
}

/**
 * The folders from the root down to the one holding `path` (a folder or a key), each with its
 * label; the last crumb is `path`'s own folder when `path` is a folder, else its parent.
 */
export function breadcrumbs(path: string): Crumb[] {
  const crumbs: Crumb[] = [{ label: 'Key/Value', prefix: '' }];
  const folder = isFolder(path) ? path : parentFolder(path);
  let prefix = '';
  for (const segment of folder.split(KV_SEPARATOR).slice(0, -1)) {
    prefix += segment + KV_SEPARATOR;
    crumbs.push({ label: segment, prefix });
  }
  return crumbs;
}

/**
 * The key a person means by typing `name` in folder `prefix`, or why it cannot be one. A name
 * ending with the separator makes a folder (an empty key named like it, as Consul's UI does).
 */
export function keyFromName(prefix: string, name: string): { ok: true; key: string } | { ok: false; error: string } {
  if (name.trim() === '') return { ok: false, error: 'Enter a key name.' };
  if (name !== name.trim()) return { ok: false, error: 'A key name cannot start or end with a space.' };
  if (name.startsWith(KV_SEPARATOR)) return { ok: false, error: 'A key name cannot start with /: it is relative to this folder.' };
  const key = prefix + name;
  if (key.length > KV_KEY_CHARS_MAX) return { ok: false, error: `A key can have at most ${KV_KEY_CHARS_MAX} characters.` };
  const segments = key.split(KV_SEPARATOR);
  const inner = isFolder(key) ? segments.slice(0, -1) : segments;
  if (inner.some((segment) => segment === '')) return { ok: false, error: 'A key cannot contain an empty segment (//).' };
  if (inner.some((segment) => segment === '.' || segment === '..')) return { ok: false, error: 'A key cannot contain . or .. segments.' };
  // Control characters make the request path unprintable: Consul answers 400.
  if (/[\u0000-\u001f\u007f]/.test(key)) return { ok: false, error: 'A key cannot contain control characters.' };
  return { ok: true, key };
}

/** `key` with each segment percent-encoded, separators kept: for `/v1/kv/…` and `/ui/kv/…`. */
export function encodeKeyPath(key: string): string {
  return key.split(KV_SEPARATOR).map((segment) => encodeURIComponent(segment)).join(KV_SEPARATOR);
}

/** The key a `/ui/kv/…` path names (each segment percent-decoded); null when malformed. */
export function decodeKeyPath(path: string): string | null {
  try {
    return path.split(KV_SEPARATOR).map((segment) => decodeURIComponent(segment)).join(KV_SEPARATOR);
  } catch {
    return null;
  }
}
