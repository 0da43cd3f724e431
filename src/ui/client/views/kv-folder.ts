/**
 * Key/Value: one folder. Lists the folder with a blocking `?keys&separator=/` on its prefix
 * (a 404 under a non-empty prefix is an empty folder, and still carries the index to block
 * on), offers "Create key" (`?cas=0`: never overwrites) and "Delete folder" (`?recurse` on
 * the prefix, after a confirmation that says how many keys go).
 */
import { createKey, deleteFolder, parseFlags } from '../../lib/kv-edit.js';
import { encodeKeyPath, folderRows, keyFromName, parentFolder } from '../../lib/kv-tree.js';
import type { FolderRow } from '../../lib/kv-tree.js';
import { hrefOf } from '../../lib/routes.js';
import { bytesOfDraft } from '../../lib/value-format.js';
import { confirmDialog } from '../confirm.js';
import { append, h, icon, replaceKeepingFocus, table } from '../dom.js';
import { BaseView } from '../view.js';
import type { ViewContext } from '../view.js';
import { breadcrumbTrail, encodingSelect, field, setFieldError } from './kv-shared.js';

/** Most rows one folder renders; a larger folder says how many more there are. */
const FOLDER_ROWS_MAX = 2000;

/** See the file comment. */
export class KvFolderView extends BaseView {
  readonly title: string;
  readonly #prefix: string;
  readonly #listing = h('div', { class: 'listing' });
  readonly #status = h('p', { class: 'flash', role: 'status' });
  readonly #createRegion = h('div', {});
  readonly #createButton: HTMLButtonElement;

  constructor(context: ViewContext, prefix: string) {
    super(context);
    this.#prefix = prefix;
    this.title = prefix === '' ? 'Key/Value' : `${prefix} · Key/Value`;
    this.#createButton = h('button', { type: 'button', class: 'button button-primary', 'aria-expanded': 'false', 'aria-controls': 'create-region', onclick: () => this.#toggleCreate() }, 'Create key');
    this.#createRegion.id = 'create-region';
  }

  protected render(main: HTMLElement): void {
    const name = this.#prefix === '' ? 'Key/Value' : this.#prefix.slice(parentFolder(this.#prefix).length);
    const flash = this.context.takeFlash();
    if (flash !== null) this.#status.textContent = flash;
    const actions = h('div', { class: 'actions' }, this.#createButton,
      this.#prefix === '' ? null : h('button', { type: 'button', class: 'button button-danger', onclick: () => void this.#deleteFolder() }, 'Delete folder'));
    append(main, [this.#prefix === '' ? null : breadcrumbTrail(this.#prefix, false), this.heading(name),
      this.#prefix === '' ? null : h('p', { class: 'subtitle' }, 'Folder ', h('code', {}, this.#prefix)),
      this.#status, actions, this.#createRegion, this.#listing]);
    this.#listing.append(h('p', { class: 'muted' }, 'Loading keys…'));
    this.watch<string[]>({
      path: `/v1/kv/${encodeKeyPath(this.#prefix)}?keys&separator=/`,
      mode: 'blocking',
      accept: [200, 404],
      decode: ({ body, status }) => (status === 404 || !Array.isArray(body) ? [] : body.filter((key): key is string => typeof key === 'string')),
      onData: (keys) => this.#showRows(folderRows(this.#prefix, keys)),
    });
  }

  #showRows(rows: FolderRow[]): void {
    if (rows.length === 0) {
      replaceKeepingFocus(this.#listing, h('p', { class: 'empty' }, this.#prefix === ''
        ? 'The store is empty. Create the first key with “Create key”.'
        : `Nothing under ${this.#prefix}: the folder is empty or was deleted.`));
      return;
    }
    const shown = rows.slice(0, FOLDER_ROWS_MAX);
    const kindLabel = { folder: 'Folder', key: 'Key', self: 'Key (this folder’s own)' } as const;
    replaceKeepingFocus(this.#listing,
      table(`Contents of ${this.#prefix === '' ? 'the root folder' : this.#prefix}`, ['Name', 'Kind'], shown.map((row) => [
        h('a', { href: hrefOf({ view: 'kv', path: row.key }), 'data-focus-id': row.key, class: `kv-link kv-${row.kind}` },
          icon(row.kind === 'folder' ? 'folder' : 'key'), row.kind === 'self' ? row.key : row.name),
        kindLabel[row.kind],
      ]), { className: 'data listing-table' }),
      rows.length > shown.length ? h('p', { class: 'muted' }, `Showing ${shown.length} of ${rows.length} entries.`) : null,
      h('p', { class: 'muted count' }, `${rows.length} ${rows.length === 1 ? 'entry' : 'entries'}`));
  }

  #toggleCreate(): void {
    if (this.#createRegion.childElementCount > 0) {
      this.#closeCreate();
      return;
    }
    this.#createButton.setAttribute('aria-expanded', 'true');
    const nameInput = h('input', { type: 'text', class: 'input', autocomplete: 'off', spellcheck: 'false', required: true });
    const valueInput = h('textarea', { class: 'input textarea', rows: 6, spellcheck: 'false' });
    const encoding = encodingSelect('text');
    const flagsInput = h('input', { type: 'text', class: 'input', inputmode: 'numeric', value: '0', autocomplete: 'off' });
    const name = field('create-name', 'Key name', nameInput, `Relative to ${this.#prefix === '' ? 'the root' : this.#prefix}. End it with / to create a folder.`);
    const value = field('create-value', 'Value', valueInput);
    const encodingField = field('create-encoding', 'Value encoding', encoding);
    const flags = field('create-flags', 'Flags', flagsInput, 'A 64-bit number stored with the key; 0 unless a tool needs one.');
    const formError = h('div', { class: 'form-error', role: 'alert' });
    const submit = h('button', { type: 'submit', class: 'button button-primary' }, 'Create');
    const form = h('form', { class: 'card form', 'aria-labelledby': 'create-title', novalidate: true },
      h('h2', { id: 'create-title' }, 'Create a key'),
      h('div', { class: 'field-row' }, h('span', { class: 'prefix', 'aria-hidden': 'true' }, this.#prefix), name.wrapper),
      value.wrapper, h('div', { class: 'field-pair' }, encodingField.wrapper, flags.wrapper), formError,
      h('div', { class: 'actions' }, submit, h('button', { type: 'button', class: 'button', onclick: () => this.#closeCreate() }, 'Cancel')));
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.#closeCreate();
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void (async () => {
        formError.replaceChildren();
        const key = keyFromName(this.#prefix, nameInput.value);
        setFieldError(nameInput, name.error, key.ok ? null : key.error);
        const parsedFlags = parseFlags(flagsInput.value);
        setFieldError(flagsInput, flags.error, parsedFlags.ok ? null : parsedFlags.error);
        const isFolderKey = key.ok && key.key.endsWith('/');
        const bytes = isFolderKey ? { ok: true as const, bytes: new Uint8Array(0) } : bytesOfDraft(valueInput.value, encoding.value === 'base64' ? 'base64' : 'text');
        setFieldError(valueInput, value.error, bytes.ok ? null : bytes.error);
        if (!key.ok) return nameInput.focus();
        if (!bytes.ok) return valueInput.focus();
        if (!parsedFlags.ok) return flagsInput.focus();
        submit.disabled = true;
        try {
          const outcome = await createKey(this.context.kv, key.key, bytes.bytes, parsedFlags.flags);
          if (!this.isMounted) return;
          if (outcome.kind === 'done') {
            this.context.navigate(hrefOf({ view: 'kv', path: key.key }), { flash: `Created ${isFolderKey ? 'folder' : 'key'} ${key.key}.` });
            return;
          }
          formError.replaceChildren(h('p', {}, 'Not created: ', h('a', { href: hrefOf({ view: 'kv', path: key.key }) }, key.key), ' already exists. Nothing was overwritten.'));
        } catch (error) {
          formError.replaceChildren(h('p', {}, `Not created: ${(error as Error).message}`));
        } finally {
          submit.disabled = false;
        }
      })();
    });
    this.#createRegion.replaceChildren(form);
    nameInput.focus();
  }

  #closeCreate(): void {
    this.#createRegion.replaceChildren();
    this.#createButton.setAttribute('aria-expanded', 'false');
    this.#createButton.focus();
  }

  async #deleteFolder(): Promise<void> {
    let count: number | null = null;
    try {
      const answer = await this.context.api.getJson(`/v1/kv/${encodeKeyPath(this.#prefix)}?keys`, { accept: [200, 404] });
      count = Array.isArray(answer.body) ? answer.body.length : 0;
    } catch {
      count = null; // still offer the delete; the count is a courtesy
    }
    if (!this.isMounted) return;
    const what = count === null ? 'everything under it' : count === 1 ? 'the 1 key under it' : `all ${count} keys under it`;
    const confirmed = await confirmDialog({
      title: 'Delete folder?',
      message: h('p', {}, 'Delete ', h('code', {}, this.#prefix), ` and ${what}? This cannot be undone.`),
      confirmLabel: 'Delete folder',
      danger: true,
    });
    if (!confirmed || !this.isMounted) return;
    try {
      await deleteFolder(this.context.kv, this.#prefix);
      this.context.navigate(hrefOf({ view: 'kv', path: parentFolder(this.#prefix) }), { flash: `Deleted folder ${this.#prefix}${count === null ? '' : ` (${count} ${count === 1 ? 'key' : 'keys'})`}.` });
    } catch (error) {
      this.#status.textContent = `Not deleted: ${(error as Error).message}`;
    }
  }
}
