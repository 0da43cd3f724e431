/**
 * Turns an illegal partition into something a person can debug: a small sub-history that is
 * still not linearizable, printed as a timeline (one line per operation) and an ASCII lane view.
 *
 * Shrinking: first the shortest illegal prefix in call order (binary search: the prefix before
 * it is linearizable or undecided, so its last operation is the one that cannot be placed), then
 * delta debugging: drop chunks of operations, halving the chunk size, while the rest stays
 * illegal. A candidate must also be self-contained (Model.isSelfContained: no read of a value
 * whose write was dropped), or every stale read would shrink to "read of a value never written".
 * Every re-check has its own small budget, and the whole shrink a time limit; an undecided
 * re-check counts as "not illegal", so the result is always a proven violation.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { assert } from '../../src/lib/assert.js';
import { checkPartition } from './porcupine.js';
import type { Model, Operation, Verdict } from './porcupine.js';

/** Limits on shrinking. */
export interface ShrinkBudget {
  /** Wall time for all re-checks together. */
  readonly timeoutMs?: number;
  /** Search steps for one re-check. */
  readonly checkStepsMax?: number;
}

/** Shrinking must not hold a failing run for long: the unshrunk history is still reported. */
export const SHRINK_TIMEOUT_MS_DEFAULT = 10_000;
/** A sub-history that needs more search than this is not "small" anyway. */
export const SHRINK_CHECK_STEPS_MAX_DEFAULT = 2_000_000;
/** The lane view is only drawn for histories this small; wider ones are unreadable. */
const LANES_OPERATIONS_MAX = 60;
/** Columns per call/return event in the lane view: room for `[#12]` between two events. */
const LANE_COLUMN_CHARS = 4;

/** A proven violation, as small as the budget allowed. */
export interface ShrunkViolation<I, O> {
  /** Still not linearizable; in call-time order. */
  readonly operations: readonly Operation<I, O>[];
  /** Operations in the partition that was given. */
  readonly originalCount: number;
  /** Operations in the shortest illegal prefix (call order) found by the binary search. */
  readonly prefixCount: number;
  /** The last operation of that prefix: adding it made the prefix illegal. Null if shrunk away. */
  readonly unplaceable: Operation<I, O> | null;
  /** True when every single operation was tried and each is needed (1-minimal). */
  readonly minimal: boolean;
  /** Re-checks run. */
  readonly checks: number;
  /** The verdict on the given operations under the shrink budget ('illegal' unless it ran out). */
  readonly initialVerdict: Verdict;
}

class ShrinkChecker<S, I, O> {
  checks = 0;
  /** Set when the full history is self-contained: then every candidate must be too. */
  requireSelfContained = false;
  readonly #deadlineMs: number;

  constructor(
    readonly model: Model<S, I, O>,
    readonly stepsMax: number,
    timeoutMs: number,
  ) {
    assert(stepsMax > 0 && timeoutMs > 0);
    this.#deadlineMs = performance.now() + timeoutMs;
  }

  expired(): boolean {
    return performance.now() > this.#deadlineMs;
  }

  verdict(operations: readonly Operation<I, O>[]): Verdict {
    this.checks += 1;
    return checkPartition(this.model, operations, {
      deadlineMs: this.#deadlineMs,
      stepsMax: this.stepsMax,
    }).verdict;
  }

  /** Illegal for a reason the full history has too (see Model.isSelfContained). */
  isIllegal(operations: readonly Operation<I, O>[]): boolean {
    if (operations.length === 0) return false;
    const selfContained = this.model.isSelfContained?.(operations) ?? true;
    if (this.requireSelfContained && !selfContained) return false;
    return this.verdict(operations) === 'illegal';
  }
}

function byCallTime<I, O>(operations: readonly Operation<I, O>[]): Operation<I, O>[] {
  return operations
    .map((operation, index) => ({ operation, index }))
    .sort((a, b) => a.operation.callTime - b.operation.callTime || a.index - b.index)
    .map(({ operation }) => operation);
}

/**
 * Shrinks one illegal partition (operations of one key) to a small sub-history that is still
 * illegal. If the given operations cannot be shown illegal within the budget, they come back
 * unshrunk with that verdict.
 */
export function shrinkViolation<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  budget: ShrinkBudget = {},
): ShrunkViolation<I, O> {
  const checker = new ShrinkChecker(
    model,
    budget.checkStepsMax ?? SHRINK_CHECK_STEPS_MAX_DEFAULT,
    budget.timeoutMs ?? SHRINK_TIMEOUT_MS_DEFAULT,
  );
  const ordered = byCallTime(operations);
  const initialVerdict = checker.verdict(ordered);
  if (initialVerdict !== 'illegal') {
    return {
      operations: ordered, originalCount: ordered.length, prefixCount: ordered.length,
      unplaceable: null, minimal: false, checks: checker.checks, initialVerdict,
    };
  }
  // A history that reads values nobody wrote is corrupt as a whole; only then may the shrunk
  // one do the same.
  checker.requireSelfContained = model.isSelfContained?.(ordered) ?? false;
  // Invariant: the prefix of length `legal` is not proven illegal; that of `illegal` is.
  let legal = 0;
  let illegal = ordered.length;
  while (illegal - legal > 1 && !checker.expired()) {
    const middle = Math.floor((legal + illegal) / 2);
    if (checker.isIllegal(ordered.slice(0, middle))) illegal = middle;
    else legal = middle;
  }
  const prefix = ordered.slice(0, illegal);
  const unplaceable = prefix[prefix.length - 1] ?? null;
  const { kept, minimal } = dropWhileIllegal(checker, prefix);
  assert(kept.length > 0);
  return {
    operations: kept, originalCount: ordered.length, prefixCount: prefix.length,
    unplaceable: unplaceable !== null && kept.includes(unplaceable) ? unplaceable : null,
    minimal, checks: checker.checks, initialVerdict,
  };
}

/** Delta debugging (ddmin's complement step): remove chunks while the rest stays illegal. */
function dropWhileIllegal<S, I, O>(
  checker: ShrinkChecker<S, I, O>,
  illegalOperations: readonly Operation<I, O>[],
): { kept: Operation<I, O>[]; minimal: boolean } {
  let kept = illegalOperations.slice();
  let chunk = Math.max(1, Math.floor(kept.length / 2));
  for (;;) {
    let removedAny = false;
    for (let start = 0; start < kept.length; ) {
      if (checker.expired()) return { kept, minimal: false };
      const candidate = [...kept.slice(0, start), ...kept.slice(start + chunk)];
      if (checker.isIllegal(candidate)) {
        kept = candidate;
        removedAny = true;
      } else {
        start += chunk;
      }
    }
    if (chunk > 1) chunk = Math.max(1, Math.floor(chunk / 2));
    else if (!removedAny) return { kept, minimal: true };
  }
}

/** Options of `writeViolationReport`. */
export interface ViolationReportOptions {
  /** First line of the report, e.g. the test or run name. */
  readonly title?: string;
  readonly shrink?: ShrinkBudget;
}

/** What `writeViolationReport` wrote. */
export interface ViolationReport<I, O> {
  readonly filePath: string;
  readonly text: string;
  readonly shrunk: ShrunkViolation<I, O>;
}

/**
 * Shrinks an illegal partition (e.g. `CheckResult.illegalOperations`) and writes the report to
 * `filePath` (parent directories are created). Returns the text too, for a test log.
 */
export function writeViolationReport<S, I, O>(
  filePath: string,
  model: Model<S, I, O>,
  illegalOperations: readonly Operation<I, O>[],
  options: ViolationReportOptions = {},
): ViolationReport<I, O> {
  assert(illegalOperations.length > 0, 'a violation needs operations');
  const shrunk = shrinkViolation(model, illegalOperations, options.shrink);
  const text = formatViolationReport(model, shrunk, options.title);
  mkdirSync(path.dirname(filePath), { recursive: true });
  writeFileSync(filePath, text);
  return { filePath, text, shrunk };
}

function formatTime(time: number): string {
  return time === Number.POSITIVE_INFINITY ? '∞' : String(time);
}

function describeOperation<S, I, O>(model: Model<S, I, O>, operation: Operation<I, O>): string {
  if (model.describeOperation) return model.describeOperation(operation.input, operation.output);
  return `${JSON.stringify(operation.input)} -> ${JSON.stringify(operation.output)}`;
}

/** The report text: summary, timeline, lanes, and the longest order the search could build. */
export function formatViolationReport<S, I, O>(
  model: Model<S, I, O>,
  shrunk: ShrunkViolation<I, O>,
  title = 'Linearizability violation',
): string {
  const { operations } = shrunk;
  const lines = [title, `model: ${model.name}`, ...summaryLines(shrunk), ''];
  lines.push("Operations (client, [call .. return], operation -> result; '∞': outcome unknown,");
  lines.push('it may take effect at any time after its call, or never):');
  // reduce, not Math.max(...): an unshrunk partition can be too long to spread into arguments.
  const widest = (text: (op: Operation<I, O>) => string): number =>
    operations.reduce((width, op) => Math.max(width, text(op).length), 0);
  const callWidth = widest((op) => formatTime(op.callTime));
  const returnWidth = widest((op) => formatTime(op.returnTime));
  const clientWidth = widest((op) => String(op.clientId));
  operations.forEach((operation, index) => {
    const label = `#${index}`.padStart(4);
    const client = `client ${String(operation.clientId).padEnd(clientWidth)}`;
    const callText = formatTime(operation.callTime).padStart(callWidth);
    const times = `[${callText} .. ${formatTime(operation.returnTime).padStart(returnWidth)}]`;
    const mark = operation === shrunk.unplaceable ? '   <- cannot be placed' : '';
    lines.push(`${label}  ${client}  ${times}  ${describeOperation(model, operation)}${mark}`);
  });
  lines.push('');
  lines.push(...laneLines(operations), '');
  lines.push(...longestOrderLines(model, operations));
  return `${lines.join('\n')}\n`;
}

function summaryLines<I, O>(shrunk: ShrunkViolation<I, O>): string[] {
  if (shrunk.initialVerdict !== 'illegal') {
    const count = shrunk.originalCount;
    return [
      `not shrunk: re-checking the ${count} operations gave '${shrunk.initialVerdict}'`,
      'within the shrink budget; the whole partition follows.',
    ];
  }
  const minimality = shrunk.minimal
    ? 'every one is needed: dropping any makes the rest linearizable'
    : 'the shrink budget ran out before every operation was tried';
  const shrunkCount = shrunk.operations.length;
  return [
    `partition: ${shrunk.originalCount} operations; ` +
      `shortest illegal prefix (by call time): ${shrunk.prefixCount};`,
    `shrunk to ${shrunkCount} operations that are still not linearizable (${minimality}).`,
    `re-checks: ${shrunk.checks}.`,
  ];
}

/**
 * One row per client (more if a client's operations overlap), time left to right. Columns are
 * the distinct call/return times in order, not to scale; `>` runs to the edge for ∞.
 */
function laneLines<I, O>(operations: readonly Operation<I, O>[]): string[] {
  if (operations.length > LANES_OPERATIONS_MAX) {
    return [`(lanes omitted: more than ${LANES_OPERATIONS_MAX} operations)`];
  }
  const times = [...new Set(operations.flatMap((op) => [op.callTime, op.returnTime]))]
    .filter((time) => Number.isFinite(time))
    .sort((a, b) => a - b);
  const columnOf = (time: number): number =>
    (Number.isFinite(time) ? times.indexOf(time) : times.length) * LANE_COLUMN_CHARS;
  const width = times.length * LANE_COLUMN_CHARS + 2;
  const rows: { clientId: number; cells: string[]; freeFrom: number }[] = [];
  operations.forEach((operation, index) => {
    const start = columnOf(operation.callTime);
    const end = columnOf(operation.returnTime);
    let row = rows.find((r) => r.clientId === operation.clientId && r.freeFrom <= start);
    if (row === undefined) {
      row = { clientId: operation.clientId, cells: Array<string>(width).fill(' '), freeFrom: 0 };
      rows.push(row);
    }
    drawBar(row.cells, start, end, `#${index}`, !Number.isFinite(operation.returnTime));
    row.freeFrom = end + 1;
  });
  rows.sort((a, b) => a.clientId - b.clientId);
  const labelWidth = Math.max(...rows.map((row) => String(row.clientId).length));
  return [
    'Lanes (time runs left to right; columns are call/return events in order, not to scale):',
    ...rows.map((row) => {
      const client = String(row.clientId).padEnd(labelWidth);
      return `  client ${client}  ${row.cells.join('').trimEnd()}`;
    }),
  ];
}

function drawBar(cells: string[], start: number, end: number, label: string, open: boolean): void {
  assert(end > start || (end === start && !open));
  for (let column = start; column <= end && column < cells.length; column++) cells[column] = '-';
  if (end === start) {
    cells[start] = '|'; // returned at the instant it was called
    return;
  }
  cells[start] = '[';
  if (open) {
    for (let column = end; column < cells.length; column++) cells[column] = '>';
  } else {
    cells[end] = ']';
  }
  for (let offset = 0; offset < label.length && start + 1 + offset < end; offset++) {
    cells[start + 1 + offset] = label[offset] ?? ' ';
  }
}

/** The search's longest linearizable order on the shrunk history, and the state it ends in. */
function longestOrderLines<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
): string[] {
  const result = checkPartition(model, operations, {
    deadlineMs: performance.now() + SHRINK_TIMEOUT_MS_DEFAULT,
    stepsMax: SHRINK_CHECK_STEPS_MAX_DEFAULT,
    trackLongest: true,
  });
  const order = result.longestLinearization;
  let state = model.init();
  for (const index of order) {
    const operation = operations[index];
    assert(operation !== undefined);
    const [legal, next] = model.step(state, operation.input, operation.output);
    assert(legal, 'the longest linearization replays');
    state = next;
  }
  const describeState = model.describeState ?? ((s: S): string => JSON.stringify(s));
  const left = operations.map((_, index) => index).filter((index) => !order.includes(index));
  const orderText = order.length === 0 ? '(none)' : order.map((index) => `#${index}`).join(' ');
  const lines = [
    `Longest linearizable order found: ${orderText}`,
    `state after it: ${describeState(state)}`,
  ];
  if (result.verdict === 'illegal') {
    const leftText = left.map((index) => `#${index}`).join(' ');
    lines.push(`never placed: ${leftText} (no order fits them all)`);
  } else {
    lines.push(`(the search for this order ended '${result.verdict}')`);
  }
  return lines;
}
