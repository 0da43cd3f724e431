/**
 * Cluster: the Raft view. Who leads, the term, this server's commit/applied index and last
 * contact, and every server of the configuration (voter or not) with, when this agent is the
 * leader, how far each follower's log is replicated (match index, entries behind, probe /
 * replicate / snapshot, recently active).
 *
 * The page talks to its own agent only (same origin: no cross-origin requests, nothing to
 * configure). `/v1/debug/raft` and `/v1/operator/raft/configuration` cannot block, so they are
 * polled once a second while the tab is visible (every watch pauses in a hidden tab) — two small
 * requests; replication figures are
 * therefore those of the leader's UI, and a follower's UI says so and shows its own log.
 * See raft-model.ts for how the pieces combine.
 */
import { membersOf } from '../../lib/catalog-model.js';
import type { Member } from '../../lib/catalog-model.js';
import { clusterPicture, raftConfigurationOf, raftStatusOf } from '../../lib/raft-model.js';
import type { ClusterPicture, RaftConfiguration, RaftStatus, ServerRow } from '../../lib/raft-model.js';
import { hrefOf } from '../../lib/routes.js';
import { badge, formatCount, formatDuration, h, replaceKeepingFocus, table } from '../dom.js';
import type { Child } from '../dom.js';
import { BaseView } from '../view.js';

/** Raft figures move continuously: refresh every second while visible. */
const CLUSTER_POLL_MS = 1000;
/** Membership (server names) is re-read at most this often. */
const MEMBERS_REFRESH_MS = 10_000;

/** See the file comment. */
export class ClusterView extends BaseView {
  readonly title = 'Cluster';
  readonly #cards = h('div', {});
  readonly #servers = h('div', {});
  readonly #note = h('p', { class: 'note' });
  #status: RaftStatus | null = null;
  /** false until `/v1/debug/raft` answered once: a 404 then means a client agent. */
  #statusKnown = false;
  #configuration: RaftConfiguration | null = null;
  #members: Member[] = [];
  #membersAt = 0;
  #unsubscribe: (() => void) | null = null;

  protected render(main: HTMLElement): void {
    main.append(this.heading('Cluster'), h('p', { class: 'subtitle' }, 'The Raft consensus group of this datacenter’s servers, as this agent sees it.'),
      h('section', { class: 'section', 'aria-labelledby': 'raft-title' }, h('h2', { id: 'raft-title', class: 'visually-hidden' }, 'Raft state'), this.#cards),
      h('section', { class: 'section', 'aria-labelledby': 'servers-title' }, h('h2', { id: 'servers-title' }, 'Servers'), this.#servers, this.#note));
    this.#cards.append(h('p', { class: 'muted' }, 'Loading…'));
    this.watch<RaftStatus | null>({
      path: '/v1/debug/raft', mode: 'poll', pollIntervalMs: CLUSTER_POLL_MS, accept: [200, 404],
      decode: ({ body, status }) => (status === 404 ? null : raftStatusOf(body)),
      onData: (status) => {
        this.#status = status;
        this.#statusKnown = true;
        this.#show();
      },
    });
    this.watch<RaftConfiguration | null>({
      path: '/v1/operator/raft/configuration', mode: 'poll', pollIntervalMs: CLUSTER_POLL_MS,
      decode: ({ body }) => raftConfigurationOf(body),
      onData: (configuration) => {
        this.#configuration = configuration;
        this.#show();
      },
    });
    this.#unsubscribe = this.context.connection.subscribe((state) => {
      // A server answers the configuration itself; a client agent forwards it, and without a
      // leader that fails: drop what it last said, whose Leader flag names a dead leader.
      if (state.hasLeader === false && this.#statusKnown && this.#status === null) this.#configuration = null;
      this.#show();
    });
  }

  override unmount(): void {
    this.#unsubscribe?.();
    super.unmount();
  }

  #show(): void {
    if (!this.isMounted) return;
    const connection = this.context.connection.state;
    const picture = clusterPicture({
      configuration: this.#configuration,
      status: this.#status,
      leaderAddress: connection.hasLeader === false ? '' : connection.leaderAddress,
      members: this.#members.length > 0 ? this.#members : this.context.connection.members,
    });
    if (picture.rows.some((row) => row.node === null)) this.#refreshMembers();
    if (!this.#statusKnown && this.#configuration === null) return;
    replaceKeepingFocus(this.#cards, this.#cardList(picture));
    replaceKeepingFocus(this.#servers, picture.rows.length === 0 ? h('p', { class: 'empty' }, 'No servers known yet.')
      : table('Servers of the Raft configuration', ['Server', 'Address', 'Role', 'Last index', 'Match index', 'Behind', 'Replication', 'Recently active'],
        picture.rows.map((row) => this.#cells(row, picture))));
    this.#note.textContent = this.#explain(picture);
  }

  #cardList(picture: ClusterPicture): HTMLElement {
    const self = picture.self;
    const agent = this.context.connection.state.agent;
    const selfName = agent?.nodeName ?? (self === null ? 'this agent' : self.id.slice(0, 8));
    const cards: [string, Child, Child?][] = [
      ['Leader', picture.leader === null ? badge('critical', 'No leader') : h('span', {}, badge('leader', picture.leader.node ?? picture.leader.id.slice(0, 8))),
        picture.leader === null ? 'an election is needed' : h('code', {}, picture.leader.address)],
      ['Term', self === null ? '—' : formatCount(self.term), self === null ? 'known to servers only' : 'Raft election term'],
      ['This agent', selfName, self === null ? 'client agent (no Raft)' : self.role],
      ['Commit index', self === null ? (picture.configurationIndex === null ? '—' : formatCount(picture.configurationIndex)) : formatCount(self.commitIndex),
        self === null ? 'from the servers' : `applied ${formatCount(self.appliedIndex)} · last ${formatCount(self.lastIndex)}`],
      ['Last contact', self === null ? '—' : self.role === 'leader' ? '—' : self.lastContactMs === null ? 'never' : `${formatDuration(self.lastContactMs)} ago`,
        self === null ? '' : self.role === 'leader' ? 'this agent is the leader' : 'with the leader'],
      ['Leader lease', self === null || self.role !== 'leader' ? '—' : self.leaseValid ? badge('passing', 'valid') : badge('warning', 'not valid'),
        'lease-based reads'],
    ];
    return h('dl', { class: 'cards' }, cards.map(([label, value, detail]) => h('div', { class: 'card stat', 'data-stat': label },
      h('dt', {}, label), h('dd', {}, h('span', { class: 'stat-value' }, value), detail === undefined || detail === '' ? null : h('span', { class: 'stat-detail' }, detail)))));
  }

  #cells(row: ServerRow, picture: ClusterPicture): Child[] {
    const name = row.node ?? row.id.slice(0, 8);
    const dash = (): HTMLElement => h('span', { class: 'muted' }, '—'); // a node can be in one place only: one per cell
    const behind = row.lag === null ? dash() : row.lag === 0 ? badge('passing', 'up to date')
      : badge(row.lag > 1000 ? 'critical' : 'warning', `${formatCount(row.lag)} ${row.lag === 1 ? 'entry' : 'entries'}`);
    return [
      h('span', {}, row.node === null ? name : h('a', { href: hrefOf({ view: 'node', name: row.node }), 'data-focus-id': `server:${row.id}` }, name),
        row.isSelf ? h('span', { class: 'tag' }, 'this agent') : null, h('br', {}), h('code', { class: 'muted small', title: row.id }, row.id.slice(0, 8))),
      h('code', {}, row.address),
      row.isLeader ? badge('leader', 'Leader') : h('span', {}, row.voter ? 'Follower' : 'Non-voter'),
      row.lastIndex === null ? dash() : formatCount(row.lastIndex),
      row.match === null ? dash() : formatCount(row.match),
      picture.hasReplication ? behind : dash(),
      row.replication === null ? dash() : row.replication,
      row.recentActive === null ? dash() : row.recentActive ? badge('passing', 'yes') : badge('critical', 'no'),
    ];
  }

  #explain(picture: ClusterPicture): string {
    const selfName = this.context.connection.state.agent?.nodeName ?? 'This agent';
    const parts: string[] = [];
    if (picture.self === null) parts.push(`${selfName} is a client agent: it has no Raft state of its own; the configuration comes from the servers.`);
    else if (picture.hasReplication) parts.push(`${selfName} is the leader: “Match index” and “Behind” are its replication progress per follower, refreshed every second.`);
    else {
      const leader = picture.leader === null ? 'the leader, once elected' : `the leader (${picture.leader.node ?? picture.leader.address})`;
      parts.push(`${selfName} is a ${picture.self.role}: it knows its own log and who leads, not how far the other servers are. Open this view on ${leader} for per-follower replication.`);
    }
    if (picture.source === 'local-raft') parts.push('The configuration endpoint did not answer: the servers listed are this server’s own Raft configuration.');
    return parts.join(' ');
  }

  #refreshMembers(): void {
    const now = Date.now();
    if (now - this.#membersAt < MEMBERS_REFRESH_MS) return;
    this.#membersAt = now;
    void this.context.api.getJson('/v1/agent/members').then((answer) => {
      this.#members = membersOf(answer.body);
      this.#show();
    }).catch(() => {
      // reported by the connection banner
    });
  }
}
