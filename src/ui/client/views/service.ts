/**
 * One service: every instance (node, ID, address, tags) with the checks that cover it (the
 * node's serfHealth included), from `/v1/health/service/<s>` (blocking).
 */
import { serviceHealthOf } from '../../lib/catalog-model.js';
import type { ServiceHealthEntry } from '../../lib/catalog-model.js';
import { hrefOf } from '../../lib/routes.js';
import { badge, h, replaceKeepingFocus, table } from '../dom.js';
import { BaseView } from '../view.js';
import type { ViewContext } from '../view.js';

/** See the file comment. */
export class ServiceView extends BaseView {
  readonly title: string;
  readonly #name: string;
  readonly #content = h('div', {});

  constructor(context: ViewContext, name: string) {
    super(context);
    this.#name = name;
    this.title = `${name} · Services`;
  }

  protected render(main: HTMLElement): void {
    main.append(
      h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' }, h('ol', {}, h('li', {}, h('a', { href: hrefOf({ view: 'services' }) }, 'Services')))),
      this.heading(this.#name), this.#content);
    this.#content.append(h('p', { class: 'muted' }, 'Loading instances…'));
    this.watch<ServiceHealthEntry[]>({
      path: `/v1/health/service/${encodeURIComponent(this.#name)}`, mode: 'blocking', decode: ({ body }) => serviceHealthOf(body),
      onData: (entries) => this.#show(entries),
    });
  }

  #show(entries: ServiceHealthEntry[]): void {
    if (entries.length === 0) {
      replaceKeepingFocus(this.#content, h('p', { class: 'empty' }, `No instances of ${this.#name} are registered (it may have been deregistered).`));
      return;
    }
    const passing = entries.filter((entry) => entry.health === 'passing' || entry.health === 'none').length;
    replaceKeepingFocus(this.#content,
      h('p', { class: 'summary' }, `${entries.length} ${entries.length === 1 ? 'instance' : 'instances'} · ${passing} without failing checks`),
      table(`Instances of ${this.#name}`, ['Node', 'Instance ID', 'Address', 'Tags', 'Checks'], entries.map((entry) => [
        h('a', { href: hrefOf({ view: 'node', name: entry.node.name }), 'data-focus-id': `instance:${entry.node.name}:${entry.service.id}` }, entry.node.name),
        h('code', {}, entry.service.id),
        h('code', {}, entry.service.port === 0 ? entry.service.address : `${entry.service.address}:${entry.service.port}`),
        entry.service.tags.length === 0 ? h('span', { class: 'muted' }, '—') : h('span', { class: 'tags' }, entry.service.tags.map((tag) => h('span', { class: 'tag' }, tag))),
        entry.checks.length === 0 ? h('span', { class: 'muted' }, 'no checks')
          : h('ul', { class: 'plain checks' }, entry.checks.map((check) => h('li', {}, badge(check.status), ' ', check.name === '' ? check.checkId : check.name,
            check.output === '' ? null : h('span', { class: 'muted small output' }, ` — ${check.output}`)))),
      ])));
  }
}
