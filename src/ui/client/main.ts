/**
 * The page's entry point: the shell (navigation, the connection banner, the agent line) and the
 * router. Links under `/ui/` are followed without reloading (History API); a navigation
 * unmounts the old view (stopping its watches), mounts the new one and moves focus to its
 * heading so keyboard and screen-reader users land on the new content.
 */
import { ApiClient } from '../lib/api-client.js';
import type { FetchLike } from '../lib/api-client.js';
import { kvStoreOver } from '../lib/kv-edit.js';
import { isFolder } from '../lib/kv-tree.js';
import { SECTIONS, parseRoute, sectionOf } from '../lib/routes.js';
import type { Route } from '../lib/routes.js';
import { Connection } from './connection.js';
import type { ConnectionState } from './connection.js';
import { h, updateScrollRegions } from './dom.js';
import type { View, ViewContext } from './view.js';
import { ClusterView } from './views/cluster.js';
import { KvFolderView } from './views/kv-folder.js';
import { KvKeyView } from './views/kv-key.js';
import { NodeView } from './views/node.js';
import { NodesView } from './views/nodes.js';
import { NotFoundView } from './views/not-found.js';
import { ServiceView } from './views/service.js';
import { ServicesView } from './views/services.js';

/** The view a route shows. */
function viewFor(route: Route, context: ViewContext): View {
  switch (route.view) {
    case 'kv':
      return isFolder(route.path) ? new KvFolderView(context, route.path) : new KvKeyView(context, route.path);
    case 'nodes':
      return new NodesView(context);
    case 'node':
      return new NodeView(context, route.name);
    case 'services':
      return new ServicesView(context);
    case 'service':
      return new ServiceView(context, route.name);
    case 'cluster':
      return new ClusterView(context);
    case 'home':
    case 'not-found':
      return new NotFoundView(context, route.view === 'not-found' ? route.pathname : '/ui/');
  }
}

/** Where `/ui/` leads: the key/value store, what most people open the UI for. */
const HOME = SECTIONS[0].href;

function start(): void {
  const main = document.getElementById('main');
  const banner = document.getElementById('banner');
  const agentLine = document.getElementById('agent-info');
  if (main === null || banner === null || agentLine === null) throw new Error('the page shell is missing');
  const fetchFunction: FetchLike = (url, init) => fetch(url, { ...init, body: (init.body ?? null) as BodyInit | null, cache: 'no-store', credentials: 'same-origin' });
  const api = new ApiClient(fetchFunction);
  const connection = new Connection(api);
  let flash: string | null = null;
  let current: View | null = null;

  const context: ViewContext = {
    api,
    kv: kvStoreOver(api),
    connection,
    navigate: (href, options = {}) => {
      flash = options.flash ?? null;
      if (options.replace === true) history.replaceState(null, '', href);
      else history.pushState(null, '', href);
      show(true);
    },
    takeFlash: () => {
      const message = flash;
      flash = null;
      return message;
    },
  };

  const show = (moveFocus: boolean): void => {
    let route = parseRoute(location.pathname);
    if (route.view === 'home') {
      history.replaceState(null, '', HOME);
      route = parseRoute(HOME);
    }
    current?.unmount();
    main.replaceChildren();
    current = viewFor(route, context);
    current.mount(main);
    document.title = `${current.title} · Conclave`;
    const section = sectionOf(route);
    for (const link of document.querySelectorAll<HTMLAnchorElement>('[data-section]')) {
      if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    if (moveFocus) current.focusTarget?.focus();
  };

  // Follow in-app links without a reload; let the browser handle new tabs, downloads, /v1 links.
  document.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = (event.target as Element | null)?.closest?.('a[href]');
    if (!(link instanceof HTMLAnchorElement) || link.target !== '' || link.hasAttribute('download')) return;
    const url = new URL(link.href);
    if (url.origin !== location.origin || !url.pathname.startsWith('/ui/') || url.hash !== '') return;
    event.preventDefault();
    if (url.pathname === location.pathname) return;
    context.navigate(url.pathname);
  });
  window.addEventListener('popstate', () => show(true));
  window.addEventListener('resize', () => updateScrollRegions());

  connection.subscribe((state) => {
    renderBanner(banner, state, () => connection.retryAll());
    renderAgentLine(agentLine, state);
  });
  document.addEventListener('visibilitychange', () => connection.setHidden(document.visibilityState === 'hidden'));
  connection.setHidden(document.visibilityState === 'hidden');
  connection.start();
  show(false);
}

/** The banner: empty while all is well; otherwise what is wrong and what it means. */
function renderBanner(banner: HTMLElement, state: ConnectionState, retry: () => void): void {
  let content: HTMLElement | null = null;
  if (state.reachable === false) {
    content = h('div', { class: 'banner-body banner-error' },
      h('p', {}, h('strong', {}, 'Cannot reach the agent'), ` at ${location.host}. What you see may be out of date; the page keeps retrying.`),
      h('button', { type: 'button', class: 'button', onclick: retry }, 'Retry now'));
  } else if (state.hasLeader === false) {
    content = h('div', { class: 'banner-body banner-warning' },
      h('p', {}, h('strong', {}, 'No cluster leader.'), ' Writes fail and live updates pause until the servers elect one. This agent answers what it last knew.'));
  }
  const text = content?.textContent ?? '';
  if (banner.dataset.text === text) return; // unchanged: do not make screen readers repeat it
  banner.dataset.text = text;
  banner.replaceChildren(...(content === null ? [] : [content]));
  banner.hidden = content === null;
}

/** The header's line about this agent and the leader. */
function renderAgentLine(line: HTMLElement, state: ConnectionState): void {
  const parts: string[] = [];
  if (state.agent !== null) parts.push(`Agent ${state.agent.nodeName} (${state.agent.server ? 'server' : 'client'}, ${state.agent.datacenter})`);
  if (state.hasLeader === true && state.leaderAddress !== null) parts.push(`Leader ${state.leaderName ?? state.leaderAddress}`);
  else if (state.hasLeader === false) parts.push('No leader');
  line.textContent = parts.join(' · ');
}

start();
