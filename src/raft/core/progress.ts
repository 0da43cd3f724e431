import { assert } from '../../lib/assert.js';

/**
 * Where the leader stands with one follower (etcd-io/raft's Progress):
 * - `probe`: we do not know the follower's log; one AppendEntries at a time until it answers.
 * - `replicate`: steady state; AppendEntries are pipelined, bounded by the inflight window.
 * - `snapshot`: the follower needs entries we compacted; we stream a snapshot in chunks.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an AppendEntries is outstanding; wait for a response or a heartbeat reply. */
  probeSent = false;
  /** Heard from the follower since the last check-quorum round. */
  recentActive = false;
  /** The highest heartbeat round the follower acknowledged in the current term. */
  ackedRound = 0;
  /** How long the follower refuses other candidates after hearing from us, as it last said (0: not yet). */
  guardMs = 0;
  /** Snapshot transfer: index of the snapshot being sent and how many bytes it acknowledged. */
  snapshotIndex = 0;
  snapshotOffset = 0;
  /** The commit index carried by the last AppendEntries sent (what the follower may know). */
  sentCommit = 0;
  /** Last index of each in-flight AppendEntries, oldest first. */
  readonly inflights: number[] = [];
  readonly inflightsMax: number;

  constructor(next: number, inflightsMax: number) {
    assert(next >= 1, 'next index is 1-based');
    this.next = next;
    this.inflightsMax = inflightsMax;
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      // Resume right after the snapshot (or our match, whichever is further).
      this.next = Math.max(this.match + 1, this.snapshotIndex + 1);
    } else {
      this.next = this.match + 1;
    }
    this.state = 'probe';
    this.probeSent = false;
    this.snapshotIndex = 0;
    this.snapshotOffset = 0;
    this.inflights.length = 0;
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.inflights.length = 0;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.state = 'snapshot';
    this.snapshotIndex = snapshotIndex;
    this.snapshotOffset = 0;
    this.probeSent = false;
    this.inflights.length = 0;
  }

  /** Records a successful append up to `index`; returns true if match moved. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    while (this.inflights.length > 0 && (this.inflights[0] as number) <= index) this.inflights.shift();
    return updated;
  }

  /**
   * A rejection of an append whose prevLogIndex was `rejected`. Returns false if it is stale
   * (an older message reordered behind newer successes).
   */
  maybeDecrease(rejected: number, hintNext: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = Math.max(this.match + 1, Math.min(rejected, hintNext));
      return true;
    }
    if (this.next - 1 !== rejected) return false; // probe: only the outstanding probe counts
    this.next = Math.max(1, Math.min(rejected, hintNext));
    this.probeSent = false;
    return true;
  }

  /** Whether no more AppendEntries may go to this follower now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.length >= this.inflightsMax;
      case 'snapshot':
        return true;
    }
  }

  /** Notes an AppendEntries ending at `lastIndex` was sent. */
  sentEntries(lastIndex: number, count: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.push(lastIndex);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** A heartbeat reply: a stalled probe may go again; a full window frees its oldest slot. */
  onHeartbeatResponse(): void {
    this.probeSent = false;
    if (this.state === 'replicate' && this.inflights.length >= this.inflightsMax) this.inflights.shift();
  }
}
