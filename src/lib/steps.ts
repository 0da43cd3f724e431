/**
 * Runs `steps` to its end, one step per event-loop turn (setImmediate between steps), so other
 * work — Raft heartbeats, HTTP requests — runs in between. Resolves with the generator's return
 * value, or null when `stop()` turned true between two steps: the rest is not run, and the
 * generator is closed (its `finally` blocks run, releasing what it holds).
 */
export async function runBetweenTurns<T>(steps: Generator<void, T, void>, stop: () => boolean = () => false): Promise<T | null> {
  for (let step = steps.next(); ; step = steps.next()) {
    if (step.done === true) return step.value;
    await new Promise((resolve) => setImmediate(resolve));
    if (stop()) {
      steps.return(undefined as T);
      return null;
    }
  }
}
