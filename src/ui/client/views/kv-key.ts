/**
 * Key/Value: one key. Shows the value (text, pretty JSON or base64, whichever apply; binary is
 * only ever base64), its flags (exact uint64, hex, and the tool it belongs to), the session
 * holding its lock, and its indexes, kept live by a blocking GET. Edits save with
 * `?cas=<ModifyIndex the edit started from>`: a concurrent change is reported with their value
 * next to the person's draft, and overwriting it is a second, explicit choice. While editing,
 * live updates only announce a change; they never touch the draft.
 */
import { indexOf } from '../../lib/consul-json.js';
import { KNOWN_FLAGS, conflictMessage, deleteKey, flagsHex, kvEntryOf, parseFlags, saveKey } from '../../lib/kv-edit.js';
import type { KvEntry, WriteOutcome } from '../../lib/kv-edit.js';
import { baseName, encodeKeyPath, parentFolder } from '../../lib/kv-tree.js';
import { hrefOf } from '../../lib/routes.js';
import { bytesOfDraft, decodeValue, draftOf, formatBytes, formatsOf, renderValue } from '../../lib/value-format.js';
import type { DecodedValue, ValueFormat } from '../../lib/value-format.js';
import { confirmDialog } from '../confirm.js';
import { definitionList, h } from '../dom.js';
import { BaseView } from '../view.js';
import type { ViewContext } from '../view.js';
import { breadcrumbTrail, encodingSelect, field, setFieldError } from './kv-shared.js';

/** A lock session, from `/v1/session/info/<id>`. */
interface SessionInfo {
  readonly name: string;
  readonly node: string;
  readonly ttl: string;
  readonly behavior: string;
  readonly lockDelayMs: number;
}

/** The edit in progress. */
interface EditState {
  /** The ModifyIndex the edit started from: what `?cas=` checks. */
  baseIndex: number;
  readonly form: HTMLFormElement;
  readonly notice: HTMLElement;
  readonly alert: HTMLElement;
  readonly textarea: HTMLTextAreaElement;
}

const FORMAT_LABELS: Record<ValueFormat, string> = { json: 'JSON', text: 'Text', base64: 'Base64' };

/** See the file comment. */
export class KvKeyView extends BaseView {
  readonly title: string;
  readonly #key: string;
  readonly #status = h('p', { class: 'flash', role: 'status' });
  readonly #alert = h('div', { class: 'alert-region', role: 'alert' });
  readonly #body = h('div', {});
  readonly #details = h('div', {});
  /** undefined: not loaded yet; null: the key does not exist. */
  #entry: KvEntry | null | undefined = undefined;
  #value: DecodedValue | null = null;
  #format: ValueFormat | null = null;
  #edit: EditState | null = null;
  #sessionId: string | null = null;
  #session: SessionInfo | null | 'gone' = null;

  constructor(context: ViewContext, key: string) {
    super(context);
    this.#key = key;
    this.title = `${key} · Key/Value`;
  }

  protected render(main: HTMLElement): void {
    const flash = this.context.takeFlash();
    if (flash !== null) this.#status.textContent = flash;
    main.append(breadcrumbTrail(this.#key, true), this.heading(baseName(this.#key)),
      h('p', { class: 'subtitle' }, 'Key ', h('code', { class: 'key-full' }, this.#key)),
      this.#status, this.#alert, this.#body,
      h('section', { 'aria-labelledby': 'details-title', class: 'section' }, h('h2', { id: 'details-title' }, 'Details'), this.#details));
    this.#body.append(h('p', { class: 'muted' }, 'Loading…'));
    this.watch<KvEntry | null>({
      path: `/v1/kv/${encodeKeyPath(this.#key)}`,
      mode: 'blocking',
      accept: [200, 404],
      decode: ({ body, status }) => (status === 404 || !Array.isArray(body) || body.length === 0 ? null : kvEntryOf(body[0])),
      onData: (entry) => this.#update(entry),
    });
  }

  #update(entry: KvEntry | null): void {
    this.#entry = entry;
    this.#value = entry === null ? null : decodeValue(entry.value);
    if (this.#edit === null) this.#showValue();
    else this.#showEditNotice();
    this.#showDetails();
    const sessionId = entry?.session ?? null;
    if (sessionId !== this.#sessionId) {
      this.#sessionId = sessionId;
      this.#session = null;
      if (sessionId !== null) void this.#loadSession(sessionId);
    }
  }

  #showValue(): void {
    const entry = this.#entry;
    const value = this.#value;
    if (entry === undefined) return;
    if (entry === null || value === null) {
      this.#body.replaceChildren(h('p', { class: 'empty' }, 'There is no key named ', h('code', {}, this.#key),
        ' (it may have been deleted). ', h('a', { href: hrefOf({ view: 'kv', path: parentFolder(this.#key) }) }, 'Back to the folder'), '.'));
      return;
    }
    const formats = formatsOf(value);
    const format = this.#format !== null && formats.includes(this.#format) ? this.#format : formats[0] ?? 'base64';
    const pre = h('pre', { class: 'value', tabindex: 0, 'aria-label': `Value, shown as ${FORMAT_LABELS[format]}`, id: 'value-display' },
      value.isNull ? h('span', { class: 'muted' }, '(no value: stored empty)') : renderValue(value, format));
    const formatChooser = value.isNull || value.bytes.length === 0 ? null : h('fieldset', { class: 'segmented' },
      h('legend', {}, 'Show as'),
      formats.map((candidate) => h('label', { class: 'segment' },
        h('input', { type: 'radio', name: 'value-format', value: candidate, checked: candidate === format, onchange: () => {
          this.#format = candidate;
          this.#showValue();
          document.querySelector<HTMLInputElement>(`input[name="value-format"][value="${candidate}"]`)?.focus();
        } }),
        h('span', {}, FORMAT_LABELS[candidate]))),
      value.text === null ? h('span', { class: 'muted format-note' }, 'Binary value: shown as base64.') : null);
    this.#body.replaceChildren(h('section', { 'aria-labelledby': 'value-title', class: 'section' },
      h('div', { class: 'section-head' }, h('h2', { id: 'value-title' }, 'Value'), h('span', { class: 'muted' }, formatBytes(value.bytes.length))),
      formatChooser, pre,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'button button-primary', onclick: () => this.#startEdit() }, 'Edit'),
        h('button', { type: 'button', class: 'button button-danger', onclick: () => void this.#delete() }, 'Delete key'))));
  }

  #showDetails(): void {
    const entry = this.#entry;
    if (entry === undefined || entry === null) {
      this.#details.replaceChildren(h('p', { class: 'muted' }, entry === null ? 'No details: the key does not exist.' : 'Loading…'));
      return;
    }
    const known = KNOWN_FLAGS[entry.flags];
    const flags = h('span', {}, h('code', {}, entry.flags), entry.flags === '0' ? null : h('span', { class: 'muted' }, ` (${flagsHex(entry.flags)})`), known === undefined ? null : h('span', { class: 'tag' }, known));
    this.#details.replaceChildren(definitionList([
      ['Flags', flags],
      ['Lock session', this.#sessionView(entry)],
      ['Lock index', String(entry.lockIndex)],
      ['Created at index', String(entry.createIndex)],
      ['Modified at index', String(entry.modifyIndex)],
      ['Size', this.#value === null ? null : formatBytes(this.#value.bytes.length)],
    ]));
  }

  #sessionView(entry: KvEntry): HTMLElement {
    if (entry.session === null) return h('span', {}, 'Not locked');
    const session = this.#session;
    const details = session === null ? h('span', { class: 'muted' }, ' (loading session…)')
      : session === 'gone' ? h('span', { class: 'muted' }, ' (the session no longer exists)')
        : h('ul', { class: 'plain' },
          h('li', {}, 'Name: ', session.name === '' ? h('span', { class: 'muted' }, '(none)') : session.name),
          h('li', {}, 'Node: ', h('a', { href: hrefOf({ view: 'node', name: session.node }) }, session.node)),
          h('li', {}, 'TTL: ', session.ttl === '' ? 'none' : session.ttl, ' · Behavior: ', session.behavior, ' · Lock delay: ', `${session.lockDelayMs} ms`));
    return h('div', { class: 'session' }, h('code', { class: 'session-id' }, entry.session), details);
  }

  async #loadSession(id: string): Promise<void> {
    try {
      const answer = await this.context.api.getJson(`/v1/session/info/${encodeURIComponent(id)}`);
      if (!this.isMounted || this.#sessionId !== id) return;
      const first: unknown = Array.isArray(answer.body) ? answer.body[0] : undefined;
      if (typeof first !== 'object' || first === null) {
        this.#session = 'gone';
      } else {
        const session = first as Record<string, unknown>;
        this.#session = {
          name: typeof session.Name === 'string' ? session.Name : '',
          node: typeof session.Node === 'string' ? session.Node : '',
          ttl: typeof session.TTL === 'string' ? session.TTL : '',
          behavior: typeof session.Behavior === 'string' ? session.Behavior : '',
          lockDelayMs: Math.round(indexOf(session.LockDelay) / 1e6),
        };
      }
      this.#showDetails();
    } catch {
      // the connection banner reports failures; the session line keeps saying "loading"
    }
  }

  #startEdit(): void {
    const entry = this.#entry;
    const value = this.#value;
    if (entry === null || entry === undefined || value === null) return;
    this.#alert.replaceChildren();
    const draft = draftOf(value);
    const textarea = h('textarea', { class: 'input textarea', rows: 10, spellcheck: 'false' });
    textarea.value = draft.text;
    const encoding = encodingSelect(draft.encoding);
    const flagsInput = h('input', { type: 'text', class: 'input', inputmode: 'numeric', autocomplete: 'off' });
    flagsInput.value = entry.flags;
    const valueField = field('edit-value', 'Value', textarea);
    const encodingField = field('edit-encoding', 'Value encoding', encoding);
    const flagsField = field('edit-flags', 'Flags', flagsInput, entry.flags === '0' ? undefined : 'Kept as they are unless you change them: locks (Swarm, consul lock) rely on them.');
    const notice = h('div', { class: 'notice-region', role: 'status' });
    const alert = h('div', { class: 'alert-region', role: 'alert' });
    const save = h('button', { type: 'submit', class: 'button button-primary' }, 'Save');
    const form = h('form', { class: 'card form', 'aria-labelledby': 'edit-title', novalidate: true },
      h('h2', { id: 'edit-title' }, 'Edit value'),
      h('p', { class: 'muted' }, `Editing the version at index ${entry.modifyIndex}. If someone changes the key before you save, you will be told; nothing is overwritten silently.`),
      notice, alert, valueField.wrapper, h('div', { class: 'field-pair' }, encodingField.wrapper, flagsField.wrapper),
      h('div', { class: 'actions' }, save, h('button', { type: 'button', class: 'button', onclick: () => this.#endEdit(null) }, 'Cancel')));
    const edit: EditState = { baseIndex: entry.modifyIndex, form, notice, alert, textarea };
    this.#edit = edit;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const bytes = bytesOfDraft(textarea.value, encoding.value === 'base64' ? 'base64' : 'text');
      setFieldError(textarea, valueField.error, bytes.ok ? null : bytes.error);
      const flags = parseFlags(flagsInput.value);
      setFieldError(flagsInput, flagsField.error, flags.ok ? null : flags.error);
      if (!bytes.ok) return textarea.focus();
      if (!flags.ok) return flagsInput.focus();
      save.disabled = true;
      void this.#save(edit, bytes.bytes, flags.flags, edit.baseIndex).finally(() => {
        save.disabled = false;
      });
    });
    this.#body.replaceChildren(form);
    this.#showEditNotice();
    textarea.focus();
  }

  async #save(edit: EditState, bytes: Uint8Array, flags: string, baseIndex: number): Promise<void> {
    let outcome: WriteOutcome;
    try {
      outcome = await saveKey(this.context.kv, this.#key, bytes, flags, baseIndex);
    } catch (error) {
      edit.alert.replaceChildren(h('div', { class: 'alert alert-error' }, h('p', {}, `Not saved: ${(error as Error).message}`)));
      return;
    }
    if (!this.isMounted || this.#edit !== edit) return;
    if (outcome.kind === 'done') {
      this.#endEdit('Saved.');
      return;
    }
    const current = outcome.current;
    const theirs = current === null ? null : decodeValue(current.value);
    edit.alert.replaceChildren(h('div', { class: 'alert alert-error conflict' },
      h('p', {}, h('strong', {}, 'Conflict. '), conflictMessage(outcome, 'save', baseIndex)),
      theirs === null ? null : h('details', { class: 'theirs' }, h('summary', {}, 'Their value now'),
        h('pre', { class: 'value', tabindex: 0, 'aria-label': 'Their value now' }, renderValue(theirs, formatsOf(theirs)[0] ?? 'base64'))),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'button button-danger', onclick: () => {
          // The person chose to replace what they have now seen: CAS on *that* version, so a third change is caught too.
          edit.baseIndex = current?.modifyIndex ?? 0;
          edit.alert.replaceChildren();
          edit.form.requestSubmit();
        } }, current === null ? 'Create it again with my text' : 'Overwrite with my text'),
        h('button', { type: 'button', class: 'button', onclick: () => this.#endEdit('Edit discarded; showing the current value.') }, 'Discard my edit'))));
    edit.alert.querySelector<HTMLElement>('button')?.focus();
  }

  /** Tells an editor that the key moved on underneath them (their draft is untouched). */
  #showEditNotice(): void {
    const edit = this.#edit;
    if (edit === null) return;
    const entry = this.#entry;
    let message: string | null = null;
    if (entry === null) message = 'Someone deleted this key while you are editing. Saving will ask before re-creating it.';
    else if (entry !== undefined && entry.modifyIndex !== edit.baseIndex) {
      message = `Someone changed this key (now at index ${entry.modifyIndex}) while you are editing. Saving will not overwrite it without asking.`;
    }
    const text = message ?? '';
    if (edit.notice.textContent === text) return;
    edit.notice.replaceChildren(...(message === null ? [] : [h('div', { class: 'alert alert-warning' }, h('p', {}, message))]));
  }

  #endEdit(statusMessage: string | null): void {
    this.#edit = null;
    this.#status.textContent = statusMessage ?? '';
    this.#showValue();
    this.#body.querySelector<HTMLButtonElement>('button.button-primary')?.focus();
  }

  async #delete(): Promise<void> {
    const entry = this.#entry;
    if (entry === null || entry === undefined) return;
    const confirmed = await confirmDialog({
      title: 'Delete key?',
      message: h('p', {}, 'Delete ', h('code', {}, this.#key), '? This cannot be undone.',
        entry.session === null ? null : ' It is locked by a session: the lock holder loses its key.'),
      confirmLabel: 'Delete key',
      danger: true,
    });
    if (!confirmed || !this.isMounted) return;
    try {
      const outcome = await deleteKey(this.context.kv, this.#key, entry.modifyIndex);
      if (!this.isMounted) return;
      if (outcome.kind === 'done') {
        this.context.navigate(hrefOf({ view: 'kv', path: parentFolder(this.#key) }), { flash: `Deleted key ${this.#key}.` });
        return;
      }
      this.#alert.replaceChildren(h('div', { class: 'alert alert-error' }, h('p', {}, conflictMessage(outcome, 'delete', entry.modifyIndex))));
    } catch (error) {
      this.#alert.replaceChildren(h('div', { class: 'alert alert-error' }, h('p', {}, `Not deleted: ${(error as Error).message}`)));
    }
  }
}
