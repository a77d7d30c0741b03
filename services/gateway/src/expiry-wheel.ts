/**
 * Deadlines of many items on one timer: items are kept in one-second buckets and a single
 * interval expires every bucket that is due. A gateway with 100k connections holds one timer for
 * their token expiries instead of 100k, which matters for memory per idle connection.
 */
export class ExpiryWheel<T> {
  readonly #buckets = new Map<number, Set<T>>();
  readonly #onExpire: (item: T) => void;
  readonly #resolutionMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(onExpire: (item: T) => void, resolutionMs = 1000) {
    this.#onExpire = onExpire;
    this.#resolutionMs = resolutionMs;
  }

  /** Schedules `item` to expire at `atMs` (epoch ms), within one resolution step after it. */
  add(item: T, atMs: number): void {
    const slot = Math.ceil(atMs / this.#resolutionMs);
    let bucket = this.#buckets.get(slot);
    if (!bucket) {
      bucket = new Set();
      this.#buckets.set(slot, bucket);
    }
    bucket.add(item);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.expireDue(Date.now()), this.#resolutionMs);
      this.#timer.unref();
    }
  }

  remove(item: T, atMs: number): void {
    const slot = Math.ceil(atMs / this.#resolutionMs);
    const bucket = this.#buckets.get(slot);
    if (bucket?.delete(item) && bucket.size === 0) this.#buckets.delete(slot);
  }

  /** Expires every item due at `nowMs`; called by the interval, public for tests. */
  expireDue(nowMs: number): void {
    const now = Math.floor(nowMs / this.#resolutionMs);
    for (const [slot, bucket] of this.#buckets) {
      if (slot > now) continue;
      this.#buckets.delete(slot);
      for (const item of bucket) this.#onExpire(item);
    }
    if (this.#buckets.size === 0) this.stop();
  }

  get size(): number {
    let n = 0;
    for (const bucket of this.#buckets.values()) n += bucket.size;
    return n;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
