/**
 * An address under /ui/ that names no view.
 */
import { SECTIONS } from '../../lib/routes.js';
import { h } from '../dom.js';
import { BaseView } from '../view.js';
import type { ViewContext } from '../view.js';

/** See the file comment. */
export class NotFoundView extends BaseView {
  readonly title = 'Not found';
  readonly #pathname: string;

  constructor(context: ViewContext, pathname: string) {
    super(context);
    this.#pathname = pathname;
  }

  protected render(main: HTMLElement): void {
    main.append(this.heading('Page not found'), h('p', {}, 'Nothing lives at ', h('code', {}, this.#pathname), '. Try one of these:'),
      h('ul', {}, SECTIONS.map((section) => h('li', {}, h('a', { href: section.href }, section.label)))));
  }
}
