import type { ApplyTarget } from '../raft/node.js';
import type { Entry, Snapshot } from '../raft/core/types.js';
import type { ApplyResult, StateMachine } from '../state/fsm.js';
import { SNAPSHOT_ROWS_PER_STEP } from '../state/limits.js';

/** The FSM as the Raft driver sees it: commands applied, no-ops and config entries recorded. */
export class FsmTarget implements ApplyTarget {
  readonly fsm: StateMachine;
  readonly #onApplied: (entry: Entry, result: ApplyResult | null) => void;

  constructor(fsm: StateMachine, onApplied: (entry: Entry, result: ApplyResult | null) => void) {
    this.fsm = fsm;
    this.#onApplied = onApplied;
  }

  applyEntry(entry: Entry): ApplyResult | null {
    if (entry.type === 'normal') {
      const result = this.fsm.apply(entry.index, entry.data);
      this.#onApplied(entry, result);
      return result;
    }
    this.fsm.applyNoop(entry.index);
    this.#onApplied(entry, null);
    return null;
  }

  restore(snapshot: Snapshot): void {
    this.fsm.restore(snapshot.data);
  }

  snapshot(): Generator<void, Uint8Array, void> {
    return this.fsm.snapshotInSteps(SNAPSHOT_ROWS_PER_STEP);
  }

  get appliedIndex(): number {
    return this.fsm.lastAppliedIndex;
  }
}
