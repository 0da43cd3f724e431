/**
 * Services: every service of the catalog with its tags, its number of instances and the status
 * of its checks across instances. Live through `/v1/catalog/services` and `/v1/health/state/any`
 * (both blocking): an empty catalog (`{}`) says how services appear, and the list fills as they
 * register. Instances are counted with `/v1/catalog/service/<s>`, one request at a time and only
 * when the set of services changes (not on every check update), for at most
 * SERVICES_COUNTED_MAX services.
 */
import { catalogServicesOf, healthChecksOf, serviceRows } from '../../lib/catalog-model.js';
import type { HealthCheck } from '../../lib/catalog-model.js';
import { hrefOf } from '../../lib/routes.js';
import { h, replaceKeepingFocus, table } from '../dom.js';
import { BaseView } from '../view.js';
import { checkSummary } from './health.js';

/** Services whose instances are counted; beyond, the column says "—" (open the service). */
const SERVICES_COUNTED_MAX = 50;

/** See the file comment. */
export class ServicesView extends BaseView {
  readonly title = 'Services';
  readonly #content = h('div', {});
  #services: { name: string; tags: string[] }[] | null = null;
  #checks: HealthCheck[] | null = null;
  readonly #instances = new Map<string, number>();
  /** Bumped on every services change: an older counting run stops. */
  #countRun = 0;

  protected render(main: HTMLElement): void {
    main.append(this.heading('Services'), h('p', { class: 'subtitle' }, 'Services registered in this datacenter, with the health of their instances.'), this.#content);
    this.#content.append(h('p', { class: 'muted' }, 'Loading services…'));
    this.watch({
      path: '/v1/catalog/services', mode: 'blocking', decode: ({ body }) => catalogServicesOf(body),
      onData: (services) => {
        this.#services = services;
        this.#show();
        void this.#countInstances(services.map((service) => service.name));
      },
    });
    this.watch({
      path: '/v1/health/state/any', mode: 'blocking', decode: ({ body }) => healthChecksOf(body),
      onData: (checks) => {
        this.#checks = checks;
        this.#show();
      },
    });
  }

  async #countInstances(names: readonly string[]): Promise<void> {
    const run = ++this.#countRun;
    for (const name of names.slice(0, SERVICES_COUNTED_MAX)) {
      try {
        const answer = await this.context.api.getJson(`/v1/catalog/service/${encodeURIComponent(name)}`);
        if (!this.isMounted || run !== this.#countRun) return;
        this.#instances.set(name, Array.isArray(answer.body) ? answer.body.length : 0);
        this.#show();
      } catch {
        return; // the banner reports it; the next change of the catalog counts again
      }
    }
  }

  #show(): void {
    if (this.#services === null || this.#checks === null) return;
    const rows = serviceRows(this.#services, this.#checks, this.#instances);
    if (rows.length === 0) {
      replaceKeepingFocus(this.#content, h('div', { class: 'empty card' },
        h('p', {}, h('strong', {}, 'No services are registered yet.')),
        h('p', {}, 'Register one with any agent (', h('code', {}, 'PUT /v1/agent/service/register'), ' or ', h('code', {}, 'PUT /v1/catalog/register'), '): it appears here as soon as the catalog has it.')));
      return;
    }
    replaceKeepingFocus(this.#content, table('Services', ['Service', 'Instances', 'Tags', 'Health checks'], rows.map((row) => [
      h('a', { href: hrefOf({ view: 'service', name: row.name }), 'data-focus-id': `service:${row.name}` }, row.name),
      row.instances === null ? h('span', { class: 'muted' }, '—') : String(row.instances),
      row.tags.length === 0 ? h('span', { class: 'muted' }, '—') : h('span', { class: 'tags' }, row.tags.map((tag) => h('span', { class: 'tag' }, tag))),
      checkSummary(row.counts, row.health),
    ])));
  }
}
