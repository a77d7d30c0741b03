import type { DeltaSource } from '@openagents/sync-server-kit';

/**
 * The node's line for bootstrap pages: at most `concurrency` are asked of the delta source at
 * once, the others wait here in order instead of being sent.
 *
 * The delta service reads bootstrap pages a few at a time and refuses (503) past a short line of
 * waiting requests, so that a flood of them cannot take its pool and memory. Without this line a
 * subscribe storm (1,500 viewers arriving at once, a gateway restart) sent every distinct scope's
 * bootstrap at the same moment; most were refused, retried with backoff, and some subscribes gave
 * up with `internal` after the last retry. Queued here, a storm costs time, not failures: the
 * delta service sees at most `concurrency` requests of this node, which its line admits as long
 * as `concurrency` × gateways stays within its MAX_CONCURRENT_BOOTSTRAPS plus its line.
 *
 * Waiting is cheap (one resolver per queued read; identical reads are already shared by the
 * gateway's single-flight before they get here) and bounded by the node's subscriptions.
 * Deltas and heads pass straight through: the delta service does not gate them.
 */
export function queueBootstraps(source: DeltaSource, concurrency: number): DeltaSource {
  const slots = Math.max(1, concurrency);
  let active = 0;
  const line: (() => void)[] = [];
  const release = () => {
    const next = line.shift();
    // The slot passes to the next in line without being freed in between.
    if (next) next();
    else active--;
  };
  return {
    async bootstrap(scope, options) {
      if (active < slots) active++;
      else await new Promise<void>((resolve) => line.push(resolve));
      try {
        return await source.bootstrap(scope, options);
      } finally {
        release();
      }
    },
    delta: (scope, lastSyncId, limit, options) => source.delta(scope, lastSyncId, limit, options),
    heads: (scopes) => source.heads(scopes),
  };
}
