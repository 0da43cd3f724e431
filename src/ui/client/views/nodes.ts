/**
 * Nodes: every node of the catalog with its role (server or client, from membership), status,
 * address, last report (its serfHealth check: what the leader last learnt of the agent) and
 * health checks. Live through two blocking queries, `/v1/catalog/nodes` and
 * `/v1/health/state/any`; membership (`/v1/agent/members`, which cannot block) is re-read when
 * either moves.
 */
import { catalogNodesOf, healthChecksOf, membersOf, nodeRows } from '../../lib/catalog-model.js';
import type { CatalogNode, HealthCheck, Member, NodeRow } from '../../lib/catalog-model.js';
import { hrefOf } from '../../lib/routes.js';
import { badge, h, replaceKeepingFocus, table } from '../dom.js';
import { BaseView } from '../view.js';
import { checkSummary } from './health.js';

/** See the file comment. */
export class NodesView extends BaseView {
  readonly title = 'Nodes';
  readonly #content = h('div', {});
  #nodes: CatalogNode[] | null = null;
  #checks: HealthCheck[] | null = null;
  #members: Member[] = [];
  #membersInFlight = false;
  #membersAgain = false;

  protected render(main: HTMLElement): void {
    main.append(this.heading('Nodes'), h('p', { class: 'subtitle' }, 'Servers and client agents of this datacenter, with their health.'), this.#content);
    this.#content.append(h('p', { class: 'muted' }, 'Loading nodes…'));
    this.watch<CatalogNode[]>({
      path: '/v1/catalog/nodes', mode: 'blocking', decode: ({ body }) => catalogNodesOf(body),
      onData: (nodes) => {
        this.#nodes = nodes;
        this.#refresh();
      },
    });
    this.watch<HealthCheck[]>({
      path: '/v1/health/state/any', mode: 'blocking', decode: ({ body }) => healthChecksOf(body),
      onData: (checks) => {
        this.#checks = checks;
        this.#refresh();
      },
    });
  }

  /** Shows what is known, then re-reads membership (roles and member status). */
  #refresh(): void {
    this.#show();
    if (this.#membersInFlight) {
      this.#membersAgain = true; // membership may have moved after the request in flight was answered
      return;
    }
    this.#membersInFlight = true;
    this.#membersAgain = false;
    void this.context.api.getJson('/v1/agent/members').then((answer) => {
      this.#members = membersOf(answer.body);
      if (this.isMounted) this.#show();
    }).catch(() => {
      // reported by the connection banner; roles stay as last known
    }).finally(() => {
      this.#membersInFlight = false;
      if (this.#membersAgain && this.isMounted) this.#refresh();
    });
  }

  #show(): void {
    if (this.#nodes === null || this.#checks === null) return;
    const rows = nodeRows(this.#nodes, this.#checks, this.#members);
    if (rows.length === 0) {
      replaceKeepingFocus(this.#content, h('p', { class: 'empty' }, 'No nodes in the catalog yet.'));
      return;
    }
    const servers = rows.filter((row) => row.role === 'server').length;
    const clients = rows.filter((row) => row.role === 'client').length;
    const unhealthy = rows.filter((row) => row.health === 'critical' || row.health === 'warning').length;
    replaceKeepingFocus(this.#content,
      h('p', { class: 'summary' }, `${servers} ${servers === 1 ? 'server' : 'servers'} · ${clients} ${clients === 1 ? 'client' : 'clients'} · `,
        unhealthy === 0 ? badge('passing', 'all healthy') : badge('critical', `${unhealthy} unhealthy`)),
      table('Nodes', ['Node', 'Role', 'Status', 'Address', 'Health checks', 'Last report'], rows.map((row) => this.#cells(row))));
  }

  #cells(row: NodeRow): (HTMLElement | string)[] {
    const serf = row.serfHealth;
    const status = row.memberStatus === 'unknown' ? badge(serf === null ? 'unknown' : serf.status === 'passing' ? 'alive' : 'failed', serf === null ? 'unknown' : serf.status === 'passing' ? 'alive' : 'failed')
      : badge(row.memberStatus);
    return [
      h('a', { href: hrefOf({ view: 'node', name: row.name }), 'data-focus-id': `node:${row.name}` }, row.name),
      row.role === 'unknown' ? h('span', { class: 'muted' }, 'external') : row.role === 'server' ? 'Server' : 'Client',
      status,
      h('code', {}, row.address),
      checkSummary(row.counts, row.health),
      serf === null ? h('span', { class: 'muted' }, 'no agent report (no serfHealth check)')
        : h('span', {}, serf.output === '' ? serf.status : serf.output, h('span', { class: 'muted small' }, ` · since index ${serf.modifyIndex}`)),
    ];
  }
}
