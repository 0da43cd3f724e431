/**
 * A priority queue of timed events (binary min-heap). Ties on time keep insertion order, so a
 * run is a pure function of its seed.
 */
export class EventQueue<T> {
  #times: number[] = [];
  #seqs: number[] = [];
  #items: T[] = [];
  #seq = 0;

  get size(): number {
    return this.#items.length;
  }

  push(time: number, item: T): void {
    this.#times.push(time);
    this.#seqs.push(this.#seq++);
    this.#items.push(item);
    this.#up(this.#items.length - 1);
  }

  pop(): { time: number; item: T } | undefined {
    const count = this.#items.length;
    if (count === 0) return undefined;
    const time = this.#times[0] as number;
    const item = this.#items[0] as T;
    const last = count - 1;
    if (last > 0) this.#move(last, 0);
    this.#times.pop();
    this.#seqs.pop();
    this.#items.pop();
    if (last > 0) this.#down(0);
    return { time, item };
  }

  #less(a: number, b: number): boolean {
    const ta = this.#times[a] as number;
    const tb = this.#times[b] as number;
    return ta < tb || (ta === tb && (this.#seqs[a] as number) < (this.#seqs[b] as number));
  }

  #move(from: number, to: number): void {
    this.#times[to] = this.#times[from] as number;
    this.#seqs[to] = this.#seqs[from] as number;
    this.#items[to] = this.#items[from] as T;
  }

  #swap(a: number, b: number): void {
    const t = this.#times[a] as number;
    const s = this.#seqs[a] as number;
    const i = this.#items[a] as T;
    this.#move(b, a);
    this.#times[b] = t;
    this.#seqs[b] = s;
    this.#items[b] = i;
  }

  #up(k: number): void {
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if (!this.#less(k, parent)) break;
      this.#swap(k, parent);
      k = parent;
    }
  }

  #down(k: number): void {
    const count = this.#items.length;
    for (;;) {
      const left = 2 * k + 1;
      if (left >= count) break;
      const right = left + 1;
      const child = right < count && this.#less(right, left) ? right : left;
      if (!this.#less(child, k)) break;
      this.#swap(k, child);
      k = child;
    }
  }
}
