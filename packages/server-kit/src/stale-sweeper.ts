/**
 * A function that drops a TTL cache's expired entries, at most once per `everyMs`; call it
 * before each write. lru-cache only notices an expired entry when it is read again or pushed out
 * by the size bound, so a cache of short-lived answers fills up to its bound with dead ones and
 * stays there. Sweeping on writes keeps its memory near what is live, without a timer.
 *
 * @example
 *   const sweep = staleSweeper(cache, 10_000);
 *   sweep();
 *   cache.set(key, value);
 */
export function staleSweeper(
  cache: { purgeStale(): unknown },
  everyMs: number,
  now: () => number = Date.now,
): () => void {
  let last = now();
  return () => {
    const t = now();
    if (t - last < everyMs) return;
    last = t;
    cache.purgeStale();
  };
}
