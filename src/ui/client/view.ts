/**
 * What every view is and gets. A view owns a part of `<main>`, starts its watches on mount and
 * stops them on unmount (the router guarantees one view at a time, so leaving a view never
 * leaves a blocking query behind).
 */
import type { ApiClient } from '../lib/api-client.js';
import { Watch } from '../lib/blocking-watch.js';
import type { WatchOptions, WatchState } from '../lib/blocking-watch.js';
import type { KvStore } from '../lib/kv-edit.js';
import type { Connection } from './connection.js';
import { h } from './dom.js';

/** Services the shell gives each view. */
export interface ViewContext {
  readonly api: ApiClient;
  readonly kv: KvStore;
  readonly connection: Connection;
  /** Goes to `href` (a `/ui/…` path); `flash` is shown by the next view's status line. */
  navigate(href: string, options?: { replace?: boolean; flash?: string }): void;
  /** The flash message left for this view, once. */
  takeFlash(): string | null;
}

/** A view of the router. */
export interface View {
  /** For `document.title`. */
  readonly title: string;
  /** Renders into `main`. */
  mount(main: HTMLElement): void;
  /** Stops everything the view started. */
  unmount(): void;
  /** The element that gets focus after a navigation (the view's heading). */
  readonly focusTarget: HTMLElement | null;
}

/** The watches a view runs, the "live" indicator they drive, and their clean-up. */
export abstract class BaseView implements View {
  abstract readonly title: string;
  protected readonly context: ViewContext;
  readonly #watches: { watch: Watch<unknown>; state: WatchState; mode: 'blocking' | 'poll' }[] = [];
  readonly #indicator = h('span', { class: 'live', 'data-state': 'loading' }, 'Loading…');
  #heading: HTMLElement | null = null;
  #mounted = false;

  constructor(context: ViewContext) {
    this.context = context;
  }

  get focusTarget(): HTMLElement | null {
    return this.#heading;
  }

  /** True until unmount: async work checks it before touching the page. */
  protected get isMounted(): boolean {
    return this.#mounted;
  }

  mount(main: HTMLElement): void {
    this.#mounted = true;
    this.render(main);
    for (const entry of this.#watches) entry.watch.start();
    this.#showState();
  }

  unmount(): void {
    this.#mounted = false;
    for (const entry of this.#watches) {
      entry.watch.stop();
      this.context.connection.forget(entry.watch);
    }
    this.#watches.length = 0;
  }

  /** Builds the view's skeleton into `main` (watches fill it in). */
  protected abstract render(main: HTMLElement): void;

  /** The view's `<h1>` with the live indicator beside it; it is the focus target. */
  protected heading(...content: (string | Node)[]): HTMLElement {
    const heading = h('h1', { tabindex: -1, id: 'view-heading' }, ...content);
    this.#heading = heading;
    return h('div', { class: 'view-head' }, heading, this.#indicator);
  }

  /** A watch started on mount and stopped on unmount, reported to the live indicator. */
  protected watch<T>(options: Omit<WatchOptions<T>, 'client' | 'onState'>): Watch<T> {
    const entry = { watch: null as unknown as Watch<unknown>, state: { kind: 'loading' } as WatchState, mode: options.mode };
    const watch = new Watch<T>({
      ...options,
      client: this.context.api,
      onState: (state) => {
        entry.state = state;
        this.#showState();
      },
    });
    entry.watch = watch as Watch<unknown>;
    this.#watches.push(entry);
    this.context.connection.remember(watch as Watch<unknown>);
    if (this.#mounted) watch.start();
    return watch;
  }

  /** The indicator: retrying beats loading beats live; none for a view without watches. */
  #showState(): void {
    this.#indicator.hidden = this.#watches.length === 0;
    const retrying = this.#watches.map((entry) => entry.state).find((state) => state.kind === 'retrying');
    const loading = this.#watches.some((entry) => entry.state.kind === 'loading');
    if (retrying?.kind === 'retrying') {
      this.#indicator.dataset.state = 'retrying';
      this.#indicator.textContent = `Not updating — retrying (attempt ${retrying.attempt})`;
      this.#indicator.title = retrying.error.message;
    } else if (loading) {
      this.#indicator.dataset.state = 'loading';
      this.#indicator.textContent = 'Loading…';
    } else {
      const polled = this.#watches.some((entry) => entry.mode === 'poll');
      this.#indicator.dataset.state = 'live';
      this.#indicator.removeAttribute('title');
      this.#indicator.textContent = polled ? 'Live · refreshed every second' : 'Live';
    }
  }
}
