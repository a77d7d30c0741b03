/**
 * Concurrent calls with the same key share one run: the first starts it, the others join it
 * until it settles (either way), after which the next call starts afresh. Nothing is cached.
 *
 * @example
 *   const flights = createSingleFlight<Page>();
 *   const { promise, joined } = flights.run(`${scope}:${cursor}`, () => readPage(scope, cursor));
 */
export interface SingleFlight<T> {
  run(key: string, start: () => Promise<T>): { promise: Promise<T>; joined: boolean };
}

export function createSingleFlight<T>(): SingleFlight<T> {
  const inFlight = new Map<string, Promise<T>>();
  return {
    run(key, start) {
      const existing = inFlight.get(key);
      if (existing) return { promise: existing, joined: true };
      const promise = start().finally(() => inFlight.delete(key));
      inFlight.set(key, promise);
      return { promise, joined: false };
    },
  };
}
