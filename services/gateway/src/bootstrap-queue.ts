import type { BootstrapResponse } from '@openagents/sync-protocol';
import { type BootstrapOptions, createSlots, type DeltaSource } from '@openagents/sync-server-kit';

/**
 * A DeltaSource whose bootstrap may say whether its answer is still wanted: `wanted()` is asked
 * when a queued read's turn comes, and a read nobody wants any more is not sent.
 */
export interface BootstrapLine extends DeltaSource {
  bootstrap(scope: string, options?: BootstrapOptions, wanted?: () => boolean): Promise<BootstrapResponse>;
}

/**
 * What a queued bootstrap rejects with when its turn came and `wanted()` said nobody waits for it
 * any more (every subscription that asked for it closed, e.g. its client disconnected).
 */
export class BootstrapSkipped extends Error {
  constructor(scope: string) {
    super(`bootstrap of ${scope} skipped: no subscription waits for it any more`);
    this.name = 'BootstrapSkipped';
  }
}

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
 * gateway's single-flight before they get here) and bounded by the node's subscriptions. A read
 * whose turn comes after everyone who asked for it left (`wanted()` false: a client that
 * subscribed and disconnected at once) is dropped with BootstrapSkipped instead of read, and the
 * slot goes straight to the next in line. Deltas and heads pass straight through: the delta
 * service does not gate them.
 */
export function queueBootstraps(source: DeltaSource, concurrency: number): BootstrapLine {
  // A slot given back passes to the next in line without being freed in between.
  const slots = createSlots(concurrency);
  return {
    async bootstrap(scope, options, wanted) {
      if (!slots.tryTake()) await slots.take();
      if (wanted && !wanted()) {
        slots.give();
        throw new BootstrapSkipped(scope);
      }
      try {
        return await source.bootstrap(scope, options);
      } finally {
        slots.give();
      }
    },
    delta: (scope, lastSyncId, limit, options) => source.delta(scope, lastSyncId, limit, options),
    heads: (scopes) => source.heads(scopes),
  };
}
