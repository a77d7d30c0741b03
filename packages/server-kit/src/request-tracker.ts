/**
 * Counts the requests a service is serving, so `drain` can wait for them: readiness turns 503
 * first (`draining`), then drain resolves when nothing is in flight, or after a timeout.
 */
export interface RequestTracker {
  /**
   * Wraps a fetch handler so each request is counted while it runs. The server's bindings (the
   * Node request and response under @hono/node-server) are passed through unchanged.
   */
  wrap(fetch: FetchHandler): (request: Request, env?: unknown) => Promise<Response>;
  readonly inFlight: number;
  readonly draining: boolean;
  /** Marks the service draining and resolves once no request is in flight (at most `timeoutMs`). */
  drain(timeoutMs: number): Promise<void>;
}

/** A Hono-style fetch: the request, and what the server binds to it (`c.env`). */
export type FetchHandler = (request: Request, env?: unknown) => Response | Promise<Response>;

export function createRequestTracker(): RequestTracker {
  let inFlight = 0;
  let draining = false;
  const waiters = new Set<() => void>();
  return {
    wrap(fetch) {
      return async (request, env) => {
        inFlight++;
        try {
          return await fetch(request, env);
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
