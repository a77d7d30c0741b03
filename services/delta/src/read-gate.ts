import { AppError, createSlots } from '@openagents/sync-server-kit';

/** Bounds how many reads of one kind run at once in this process. */
export interface ReadGate {
  /** Runs `work` when a slot is free (waiting in line if needed); refuses when the line is full. */
  run<T>(work: () => Promise<T>): Promise<T>;
  /** Reads running now. */
  readonly active: number;
  /** Reads waiting for a slot. */
  readonly waiting: number;
}

/**
 * A counting semaphore with a bounded FIFO line. Bootstrap pages are the heavy reads (a page is
 * up to BOOTSTRAP_PAGE_BYTES fetched, serialised and held while it is sent): at most
 * `concurrency` run at once, so a flood of them takes at most that many of the pool's connections
 * and that many pages of memory; up to `queue` more wait their turn, and beyond that a request is
 * answered 503 `unavailable` with `Retry-After` at once instead of piling up.
 *
 * @example
 *   const gate = createReadGate({ concurrency: 4, queue: 32 });
 *   const page = await gate.run(() => reader.bootstrap(scope));
 */
export function createReadGate(options: { concurrency: number; queue: number }): ReadGate {
  const slots = createSlots(options.concurrency);
  return {
    async run(work) {
      if (!slots.tryTake()) {
        if (slots.waiting >= options.queue) {
          throw new AppError('unavailable', 'Too many bootstrap reads in progress; retry shortly', {
            details: { retryAfterSeconds: 1 },
          });
        }
        await slots.take();
      }
      try {
        return await work();
      } finally {
        slots.give();
      }
    },
    get active() {
      return slots.active;
    },
    get waiting() {
      return slots.waiting;
    },
  };
}
