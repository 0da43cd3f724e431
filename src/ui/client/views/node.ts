/**
 * One node: what the catalog and membership say about it, every health check on it, and the
 * services it runs. Live through `/v1/health/node/<n>` and `/v1/catalog/node/<n>` (blocking);
 * membership is re-read when the checks move.
 */
import { healthChecksOf, membersOf, nodeServicesOf, worstHealth } from '../../lib/catalog-model.js';
import type { CatalogNode, HealthCheck, Member, ServiceInstance } from '../../lib/catalog-model.js';
import { hrefOf } from '../../lib/routes.js';
import { badge, definitionList, h, replaceKeepingFocus, table } from '../dom.js';
import { BaseView } from '../view.js';
import type { ViewContext } from '../view.js';
import { checksTable } from './health.js';

/** See the file comment. */
export class NodeView extends BaseView {
  readonly title: string;
  readonly #name: string;
  readonly #summary = h('div', {});
  readonly #checks = h('div', {});
  readonly #services = h('div', {});
  #node: { node: CatalogNode; services: ServiceInstance[] } | null | undefined = undefined;
  #health: HealthCheck[] = [];
  #member: Member | null = null;

  constructor(context: ViewContext, name: string) {
    super(context);
    this.#name = name;
    this.title = `${name} · Nodes`;
  }

  protected render(main: HTMLElement): void {
    main.append(
      h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' }, h('ol', {}, h('li', {}, h('a', { href: hrefOf({ view: 'nodes' }) }, 'Nodes')))),
      this.heading(this.#name), this.#summary,
      h('section', { class: 'section', 'aria-labelledby': 'checks-title' }, h('h2', { id: 'checks-title' }, 'Health checks'), this.#checks),
      h('section', { class: 'section', 'aria-labelledby': 'services-title' }, h('h2', { id: 'services-title' }, 'Services'), this.#services));
    this.#summary.append(h('p', { class: 'muted' }, 'Loading…'));
    this.watch<HealthCheck[]>({
      path: `/v1/health/node/${encodeURIComponent(this.#name)}`, mode: 'blocking', decode: ({ body }) => healthChecksOf(body),
      onData: (checks) => {
        this.#health = checks;
        replaceKeepingFocus(this.#checks, checksTable(`Health checks of ${this.#name}`, checks));
        this.#showSummary();
        void this.#loadMember();
      },
    });
    this.watch<{ node: CatalogNode; services: ServiceInstance[] } | null>({
      path: `/v1/catalog/node/${encodeURIComponent(this.#name)}`, mode: 'blocking', decode: ({ body }) => nodeServicesOf(body),
      onData: (node) => {
        this.#node = node;
        this.#showSummary();
        this.#showServices();
      },
    });
  }

  async #loadMember(): Promise<void> {
    try {
      const answer = await this.context.api.getJson('/v1/agent/members');
      this.#member = membersOf(answer.body).find((member) => member.name === this.#name) ?? null;
      if (this.isMounted) this.#showSummary();
    } catch {
      // reported by the connection banner
    }
  }

  #showSummary(): void {
    if (this.#node === undefined) return;
    if (this.#node === null) {
      replaceKeepingFocus(this.#summary, h('p', { class: 'empty' }, `The catalog has no node named ${this.#name} (it may have left).`));
      return;
    }
    const { node } = this.#node;
    const member = this.#member;
    const tagged = Object.entries(node.taggedAddresses).map(([name, address]) => `${name} ${address}`).join(', ');
    const meta = Object.entries(node.meta).map(([name, value]) => `${name}=${value}`).join(', ');
    replaceKeepingFocus(this.#summary, definitionList([
      ['Role', member === null ? 'not a member (registered through the catalog)' : member.role === 'server' ? 'Server' : 'Client'],
      ['Member status', member === null ? null : badge(member.status)],
      ['Health', badge(worstHealth(this.#health.map((check) => check.status)))],
      ['Address', h('code', {}, node.address)],
      ['Server port (Raft, RPC)', member?.serverPort === null || member === null ? null : h('code', {}, `${member.address}:${member.serverPort}`)],
      ['Node ID', h('code', {}, node.id)],
      ['Datacenter', node.datacenter],
      ['Tagged addresses', tagged === '' ? null : tagged],
      ['Metadata', meta === '' ? null : meta],
    ]));
  }

  #showServices(): void {
    if (this.#node === undefined || this.#node === null) {
      this.#services.replaceChildren(h('p', { class: 'muted' }, this.#node === null ? '—' : 'Loading…'));
      return;
    }
    const services = this.#node.services;
    if (services.length === 0) {
      replaceKeepingFocus(this.#services, h('p', { class: 'empty' }, 'No services registered on this node.'));
      return;
    }
    replaceKeepingFocus(this.#services, table(`Services on ${this.#name}`, ['Service', 'Instance ID', 'Address', 'Tags'], services.map((service) => [
      h('a', { href: hrefOf({ view: 'service', name: service.service }), 'data-focus-id': `service:${service.id}` }, service.service),
      h('code', {}, service.id),
      h('code', {}, service.port === 0 ? service.address : `${service.address}:${service.port}`),
      service.tags.length === 0 ? h('span', { class: 'muted' }, '—') : h('span', { class: 'tags' }, service.tags.map((tag) => h('span', { class: 'tag' }, tag))),
    ])));
  }
}
