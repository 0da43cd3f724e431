/**
 * A modal confirmation on the native `<dialog>`: the browser traps focus inside, Escape
 * cancels, and focus returns to the button that opened it. The safe choice (Cancel) has focus
 * first, so Enter on a delete prompt never deletes by accident.
 */
import { h } from './dom.js';
import type { Child } from './dom.js';

let dialogCount = 0;

/** Asks; resolves true only when the person chose `confirmLabel`. */
export function confirmDialog(options: { title: string; message: Child; confirmLabel: string; danger?: boolean }): Promise<boolean> {
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const id = `dialog-${++dialogCount}`;
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button', class: 'button', value: 'cancel' }, 'Cancel');
    const confirm = h('button', { type: 'button', class: options.danger === true ? 'button button-danger' : 'button button-primary', value: 'confirm' }, options.confirmLabel);
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': `${id}-title`, 'aria-describedby': `${id}-message` },
      h('h2', { id: `${id}-title` }, options.title),
      h('div', { id: `${id}-message` }, options.message),
      h('div', { class: 'actions' }, cancel, confirm));
    cancel.addEventListener('click', () => dialog.close('cancel'));
    confirm.addEventListener('click', () => dialog.close('confirm'));
    dialog.addEventListener('close', () => {
      dialog.remove();
      opener?.focus();
      resolve(dialog.returnValue === 'confirm');
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
