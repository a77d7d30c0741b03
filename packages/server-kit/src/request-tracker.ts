/**
 * Counts the requests a service is serving, so `drain` can wait for them: readiness turns 503
 * first (`draining`), then drain resolves when nothing is in flight, or after a timeout.
 */
export interface RequestTracker {
  /** Wraps a fetch handler so each request is counted while it runs. */
  wrap(fetch: (request: Request) => Response | Promise<Response>): (request: Request) => Promise<Response>;
  readonly inFlight: number;
  readonly draining: boolean;
  /** Marks the service draining and resolves once no request is in flight (at most `timeoutMs`). */
  drain(timeoutMs: number): Promise<void>;
}

export function createRequestTracker(): RequestTracker {
  let inFlight = 0;
  let draining = false;
  const waiters = new Set<() => void>();
  return {
    wrap(fetch) {
      return async (request) => {
        inFlight++;
        try {
          return await fetch(request);
        } finally {
          inFlight--;
          if (inFlight === 0) for (const wake of waiters) wake();
        }
      };
    },
    get inFlight() {
      return inFlight;
    },
    get draining() {
      return draining;
    },
    async drain(timeoutMs) {
      draining = true;
      if (inFlight === 0) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        waiters.add(done);
      });
    },
  };
}
