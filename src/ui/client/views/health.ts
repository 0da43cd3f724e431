/**
 * Health pieces the Nodes and Services views share: check tables and summaries.
 */
import type { CheckCounts, Health, HealthCheck } from '../../lib/catalog-model.js';
import { hrefOf } from '../../lib/routes.js';
import { badge, h, table } from '../dom.js';

/** "2 passing, 1 critical" with badges; "no checks" when there are none. */
export function checkSummary(counts: CheckCounts, health: Health): HTMLElement {
  if (health === 'none') return h('span', { class: 'muted' }, 'no checks');
  const parts: HTMLElement[] = [];
  if (counts.critical > 0) parts.push(badge('critical', `${counts.critical} critical`));
  if (counts.warning > 0) parts.push(badge('warning', `${counts.warning} warning`));
  if (counts.passing > 0) parts.push(badge('passing', `${counts.passing} passing`));
  return h('span', { class: 'badges' }, parts);
}

/** A table of checks (node checks and service checks). */
export function checksTable(caption: string, checks: readonly HealthCheck[], options: { showNode?: boolean } = {}): HTMLElement {
  if (checks.length === 0) return h('p', { class: 'empty' }, 'No health checks.');
  const headers = options.showNode === true ? ['Check', 'Node', 'Status', 'Output', 'Service'] : ['Check', 'Status', 'Output', 'Service'];
  return table(caption, headers, checks.map((check) => [
    h('span', {}, check.name === '' ? check.checkId : check.name, h('br', {}), h('code', { class: 'muted small' }, check.checkId)),
    options.showNode === true ? h('a', { href: hrefOf({ view: 'node', name: check.node }) }, check.node) : null,
    badge(check.status),
    check.output === '' ? h('span', { class: 'muted' }, '—') : h('span', { class: 'output' }, check.output),
    check.serviceName === '' ? h('span', { class: 'muted' }, 'node') : h('a', { href: hrefOf({ view: 'service', name: check.serviceName }) }, check.serviceName),
  ].filter((cell) => cell !== null)));
}
