/**
 * Pieces both Key/Value views use: the breadcrumb trail and the create/edit form fields.
 */
import { breadcrumbs } from '../../lib/kv-tree.js';
import { hrefOf } from '../../lib/routes.js';
import { h } from '../dom.js';

/** The breadcrumb trail of `path` (a folder or a key); the last item is the current page. */
export function breadcrumbTrail(path: string, currentIsKey: boolean): HTMLElement {
  const crumbs = breadcrumbs(path);
  const items = crumbs.map((crumb, index) => {
    const isCurrent = !currentIsKey && index === crumbs.length - 1;
    const label = index === 0 ? crumb.label : `${crumb.label}/`;
    return h('li', {}, isCurrent ? h('a', { href: hrefOf({ view: 'kv', path: crumb.prefix }), 'aria-current': 'page' }, label)
      : h('a', { href: hrefOf({ view: 'kv', path: crumb.prefix }) }, label));
  });
  return h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' }, h('ol', {}, items));
}

/** A form field: label, control, optional hint and error (wired with aria-describedby). */
export function field(id: string, label: string, control: HTMLElement, hint?: string): { wrapper: HTMLElement; error: HTMLElement } {
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const hintElement = hint === undefined ? null : h('p', { class: 'field-hint', id: `${id}-hint` }, hint);
  control.id = id;
  control.setAttribute('aria-describedby', [hintElement === null ? null : `${id}-hint`, `${id}-error`].filter((part) => part !== null).join(' '));
  return { wrapper: h('div', { class: 'field' }, h('label', { for: id }, label), hintElement, control, error), error };
}

/** Shows (or clears with null) a field's error, marking the control invalid. */
export function setFieldError(control: HTMLElement, error: HTMLElement, message: string | null): void {
  error.textContent = message ?? '';
  error.hidden = message === null;
  if (message === null) control.removeAttribute('aria-invalid');
  else control.setAttribute('aria-invalid', 'true');
}

/** The encoding selector of a value field. */
export function encodingSelect(selected: 'text' | 'base64'): HTMLSelectElement {
  return h('select', { class: 'input' },
    h('option', { value: 'text', selected: selected === 'text' }, 'Text (UTF-8)'),
    h('option', { value: 'base64', selected: selected === 'base64' }, 'Base64 (binary)'));
}
