/**
 * A few DOM helpers instead of a framework: `h()` builds elements (text is always set as text,
 * never parsed as HTML, so keys and values cannot inject markup), `replaceKeepingFocus()`
 * re-renders a live region without throwing away the keyboard user's place, and small pieces
 * every view uses (status badges, definition lists, tables).
 */

/** What `h()` accepts as children. */
export type Child = Node | string | number | null | undefined | false | readonly Child[];

/** Attributes: strings/numbers set as attributes; booleans toggle them; `on*` functions listen. */
export type Attributes = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>;

/** Creates `<tag>` with `attributes` and `children`. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.slice(2).toLowerCase(), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

/** Appends children (flattened; empty ones skipped). */
export function append(parent: Node, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child as readonly Child[]);
    else parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child as Node);
  }
}

/**
 * Replaces `container`'s children; if focus was on an element inside with a `data-focus-id`,
 * the element with the same id in the new content gets it back (a live update must not send a
 * keyboard user to the top of the page).
 */
export function replaceKeepingFocus(container: HTMLElement, ...children: Child[]): void {
  const active = document.activeElement;
  const focusId = active instanceof HTMLElement && container.contains(active) ? active.dataset.focusId : undefined;
  const fragment = document.createDocumentFragment();
  append(fragment, children);
  container.replaceChildren(fragment);
  if (focusId !== undefined) {
    const again = container.querySelector<HTMLElement>(`[data-focus-id="${CSS.escape(focusId)}"]`);
    again?.focus({ preventScroll: true });
  }
}

/** A status badge: colour plus a distinct symbol and the word, never colour alone. */
export function badge(status: string, label: string = status): HTMLElement {
  const known = ['passing', 'warning', 'critical', 'alive', 'failed', 'left', 'leaving', 'leader', 'none', 'unknown'];
  const kind = known.includes(status) ? status : 'unknown';
  const symbol = { passing: '●', alive: '●', leader: '★', warning: '▲', leaving: '▲', critical: '✖', failed: '✖', left: '○', none: '○', unknown: '?' }[kind] ?? '?';
  return h('span', { class: `badge badge-${kind}` }, h('span', { 'aria-hidden': 'true', class: 'badge-symbol' }, symbol), ` ${label}`);
}

/** A `<dl>` from label/value pairs (null values are skipped). */
export function definitionList(pairs: readonly [string, Child][], className = 'details'): HTMLDListElement {
  return h('dl', { class: className }, pairs.filter(([, value]) => value !== null && value !== undefined).map(([term, value]) => h('div', { class: 'details-row' }, h('dt', {}, term), h('dd', {}, value))));
}

/**
 * Makes each table region a tab stop only while it actually scrolls sideways: keyboard users
 * can then scroll it, without an extra stop before every table that fits.
 */
export function updateScrollRegions(root: ParentNode = document): void {
  for (const region of root.querySelectorAll<HTMLElement>('.table-scroll')) {
    if (region.scrollWidth > region.clientWidth + 1) region.tabIndex = 0;
    else region.removeAttribute('tabindex');
  }
}

/** A table with a caption (visually hidden unless `showCaption`) in a region that may scroll sideways. */
export function table(caption: string, headers: readonly string[], rows: readonly (readonly Child[])[], options: { showCaption?: boolean; className?: string } = {}): HTMLElement {
  requestAnimationFrame(() => updateScrollRegions()); // once laid out
  return h('div', { class: 'table-scroll', role: 'region', 'aria-label': caption },
    h('table', { class: options.className ?? 'data' },
      h('caption', { class: options.showCaption === true ? '' : 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, headers.map((header) => h('th', { scope: 'col' }, header)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell, column) => (column === 0 ? h('th', { scope: 'row' }, cell) : h('td', { 'data-label': headers[column] ?? '' }, cell))))))));
}

/** "3 s", "2 min", "1 h 5 min": a duration for people. */
export function formatDuration(milliseconds: number): string {
  if (milliseconds < 1000) return `${Math.round(milliseconds)} ms`;
  const seconds = Math.round(milliseconds / 1000);
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A number with thin grouping, as people read large indexes. */
export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

/** Icon shapes (24×24 paths), drawn inline: no icon font, no emoji font needed on the host. */
const ICON_PATHS = {
  folder: 'M3 6.5A1.5 1.5 0 0 1 4.5 5h4.6l2 2h8.4A1.5 1.5 0 0 1 21 8.5v9a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 17.5z',
  key: 'M7.5 16.5a4.5 4.5 0 1 1 4.24-6H21v3h-2v3h-3v-3h-4.26a4.5 4.5 0 0 1-4.24 3zm0-3a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3z',
} as const;

/** A decorative inline SVG icon (hidden from assistive technology: the text says it all). */
export function icon(name: keyof typeof ICON_PATHS): SVGSVGElement {
  const namespace = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(namespace, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', `icon icon-${name}`);
  const path = document.createElementNS(namespace, 'path');
  path.setAttribute('d', ICON_PATHS[name]);
  path.setAttribute('fill-rule', 'evenodd'); // the key's ring is a hole
  svg.append(path);
  return svg;
}
