/**
 * When each connection of a draining node is closed: in random order (so the clients of one
 * scope do not all reconnect to the same node at once), spread evenly over the drain window, the
 * last one at the window's end. Pure functions; the gateway runs them on a timer.
 */

/** A shuffled copy of `items` (Fisher–Yates; `random` returns [0, 1)). */
export function drainOrder<T>(items: readonly T[], random: () => number): T[] {
  const order = [...items];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/**
 * How many of `count` connections are due to be closed `elapsedMs` into a window of `windowMs`:
 * connection i is due at i × window / count, so one is due at once and all are by the window's end.
 */
export function closesDue(elapsedMs: number, windowMs: number, count: number): number {
  return Math.min(count, Math.floor((elapsedMs / windowMs) * count) + 1);
}

/** How often the schedule is looked at: the spacing of the closes, within 10–250 ms. */
export function drainTickMs(windowMs: number, count: number): number {
  return Math.max(10, Math.min(250, windowMs / count));
}
