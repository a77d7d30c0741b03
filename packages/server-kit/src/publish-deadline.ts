interface PublishTurn {
  timer: ReturnType<typeof setTimeout>;
  /** Publishes of the turn not settled yet; the timer is cleared when none is left. */
  open: number;
  /** Rejects each publish of the turn (a no-op for those already settled). */
  expire: ((err: Error) => void)[];
}

/**
 * Bounds publishes by `timeoutMs` with one timer per turn of the event loop instead of one per
 * publish: the publishes issued in the same turn (synchronously one after another, as a commit
 * issues its scopes' messages) share a timer, cleared once all of them have settled. A publish
 * that outlives it rejects with a timeout, like ioredis's `commandTimeout` would have.
 */
export function createPublishDeadline(timeoutMs: number): (sent: Promise<unknown>) => Promise<void> {
  let turn: PublishTurn | undefined;
  const settled = (t: PublishTurn) => {
    t.open--;
    if (t.open === 0) clearTimeout(t.timer);
  };
  return (sent) => {
    let t = turn;
    if (t === undefined) {
      const created: PublishTurn = {
        open: 0,
        expire: [],
        timer: setTimeout(() => {
          const err = new Error(`redis publish timed out after ${timeoutMs} ms`);
          for (const expire of created.expire) expire(err);
        }, timeoutMs),
      };
      created.timer.unref?.();
      t = turn = created;
      queueMicrotask(() => {
        turn = undefined;
      });
    }
    const current = t;
    current.open++;
    return new Promise<void>((resolve, reject) => {
      current.expire.push(reject);
      sent.then(
        () => {
          resolve();
          settled(current);
        },
        (err: unknown) => {
          reject(err);
          settled(current);
        },
      );
    });
  };
}
