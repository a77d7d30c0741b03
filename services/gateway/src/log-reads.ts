import type { BootstrapResponse, DeltaResponse } from '@openagents/sync-protocol';
import { createSingleFlight, type DeltaSource, staleSweeper, toAppError } from '@openagents/sync-server-kit';
import { LRUCache } from 'lru-cache';
import { type BootstrapLine, BootstrapSkipped } from './bootstrap-queue';
import type { GatewayMetrics } from './metrics';

/** How the gateway reads the log: the DeltaSource plus request sharing. */
export interface LogReads {
  /**
   * A resume read. Concurrent calls with the same (scope, cursor, limit) share one request, and
   * the answer is kept for `cacheMs`, so a thousand clients reconnecting to one scope at one
   * cursor after a gateway restart cost one query. A cached answer may be slightly stale; callers
   * treat it as a prefix and continue from its end (the subscribe flow does).
   */
  resume(scope: string, lastSyncId: number, limit?: number): Promise<DeltaResponse>;
  /** A fresh read for gap fills: shared while in flight, never cached. */
  fresh(scope: string, lastSyncId: number, limit?: number): Promise<DeltaResponse>;
  /**
   * A bootstrap page (the first without `cursor`), shared while in flight per (scope, cursor) and
   * kept for `bootstrapCacheMs`: a page carrying L stays a correct part of a bootstrap at L, since
   * the subscribe flow continues from L through its buffered live events and a gap fill (the same
   * argument as for the resume cache), and a later page's cursor names its L.
   *
   * `wanted`: whether the caller still needs the page. A read waiting in the node's bootstrap line
   * is dropped when its turn comes and no caller sharing it is wanted any more; they get
   * BootstrapSkipped (a caller that is gone ignores it), a caller still wanted never does.
   */
  bootstrap(scope: string, cursor?: string, wanted?: () => boolean): Promise<BootstrapResponse>;
  heads(scopes: readonly string[]): Promise<Map<string, number>>;
}

type Kind = 'bootstrap' | 'delta' | 'heads';

export interface LogReadsOptions {
  metrics: GatewayMetrics;
  /** How long a resume answer is reused. A reconnect storm spreads over seconds of backoff. */
  cacheMs?: number;
  /** Bound of the resume cache, in events held. */
  cacheEvents?: number;
  bootstrapCacheMs?: number;
  /** Bound of the bootstrap cache, in records held. */
  bootstrapCacheRecords?: number;
  /** Bound of the bootstrap cache, in pages held (each at most the delta service's page bytes). */
  bootstrapCachePages?: number;
}

/**
 * Wraps a DeltaSource (the node's bootstrap line, bootstrap-queue.ts, or any other) with
 * single-flight maps, a short resume cache and request metrics.
 */
export function createLogReads(source: DeltaSource | BootstrapLine, options: LogReadsOptions): LogReads {
  const line = source as BootstrapLine;
  const flights = createSingleFlight<unknown>();
  const shared = <T>(key: string, run: () => Promise<T>): Promise<T> =>
    flights.run(key, run).promise as Promise<T>;
  const counted = countedRead(options.metrics);
  const cacheMs = options.cacheMs ?? 10_000;
  const bootstrapCacheMs = options.bootstrapCacheMs ?? 1000;
  const resumes = resumeCache(cacheMs, options.cacheEvents ?? 200_000);
  const bootstraps = bootstrapCache(bootstrapCacheMs, options);
  /**
   * The `wanted` of every caller of a bootstrap flight, by key, while it is in flight; each
   * caller is added before the flight can reach the line, which asks them.
   */
  const wanters = new Map<string, Set<() => boolean>>();
  const bootstrapFlight = (scope: string, cursor: string | undefined, callers: Set<() => boolean>) => {
    const anyWanted = () => {
      for (const wanted of callers) if (wanted()) return true;
      return false;
    };
    const options = { maxAgeMs: bootstrapCacheMs, ...(cursor === undefined ? {} : { cursor }) };
    return counted('bootstrap', () => line.bootstrap(scope, options, anyWanted));
  };

  // A resume accepts what another gateway's resume read just now (`maxAgeMs`), as it accepts
  // this gateway's own cache: other nodes asking for the same (scope, cursor) cost the database
  // one query. A gap fill must be fresh, so the two never share a flight.
  const readDelta = (scope: string, lastSyncId: number, limit: number | undefined, maxAgeMs?: number) =>
    shared(`${maxAgeMs === undefined ? 'd' : 'r'}\0${scope}\0${lastSyncId}\0${limit ?? ''}`, () =>
      counted('delta', () =>
        maxAgeMs === undefined
          ? source.delta(scope, lastSyncId, limit)
          : source.delta(scope, lastSyncId, limit, { maxAgeMs }),
      ),
    );

  return {
    resume: (scope, lastSyncId, limit) =>
      resumes.through(`${scope}\0${lastSyncId}\0${limit ?? ''}`, () =>
        readDelta(scope, lastSyncId, limit, cacheMs),
      ),
    fresh: (scope, lastSyncId, limit) => readDelta(scope, lastSyncId, limit),
    bootstrap(scope, cursor, wanted = ALWAYS) {
      const key = `${scope}\0${cursor ?? ''}`;
      return bootstraps.through(key, async () => {
        for (;;) {
          let callers = wanters.get(key);
          if (!callers) {
            const fresh = new Set<() => boolean>();
            wanters.set(key, fresh);
            callers = fresh;
          }
          callers.add(wanted);
          const mine = callers;
          const flight = shared(`b\0${key}`, () =>
            bootstrapFlight(scope, cursor, mine).finally(() => {
              if (wanters.get(key) === mine) wanters.delete(key);
            }),
          );
          try {
            return await flight;
          } catch (err) {
            // Joined a flight dropped as unwanted just before: this caller still wants it.
            if (err instanceof BootstrapSkipped && wanted()) continue;
            throw err;
          }
        }
      });
    },
    heads: (scopes) => counted('heads', () => source.heads(scopes)),
  };
}

const ALWAYS = () => true;

/**
 * Runs a read of the delta source and counts it by kind and result (ok, reset, error); a
 * bootstrap dropped in the line was never sent, and is counted apart.
 */
function countedRead(metrics: GatewayMetrics) {
  return async <T>(kind: Kind, run: () => Promise<T>): Promise<T> => {
    try {
      const result = await run();
      metrics.deltaRequests.inc({ kind, result: 'ok' });
      return result;
    } catch (err) {
      if (err instanceof BootstrapSkipped) {
        metrics.bootstrapsSkipped.inc();
        throw err;
      }
      const error = toAppError(err);
      metrics.deltaRequests.inc({ kind, result: error.code === 'reset_required' ? 'reset' : 'error' });
      throw error;
    }
  };
}

/** A bounded cache of answers, each kept for `ttl`, that a read goes through. */
interface AnswerCache<T extends {}> {
  /** The cached answer of `key`, or `read()`'s, which is then cached. */
  through(key: string, read: () => Promise<T>): Promise<T>;
}

function answerCache<T extends {}>(ttl: number, cache: LRUCache<string, T>): AnswerCache<T> {
  // Expired answers are dropped as new ones come in, so the cache holds what is live, not its
  // bounds' worth of dead snapshots (lru-cache alone keeps an expired entry until it is evicted).
  const sweep = staleSweeper(cache, ttl);
  return {
    through(key, read) {
      const hit = cache.get(key);
      if (hit) return Promise.resolve(hit);
      return read().then((answer) => {
        sweep();
        cache.set(key, answer);
        return answer;
      });
    },
  };
}

function resumeCache(ttl: number, maxEvents: number): AnswerCache<DeltaResponse> {
  return answerCache(
    ttl,
    new LRUCache<string, DeltaResponse>({
      max: 10_000,
      maxSize: maxEvents,
      sizeCalculation: (response) => Math.max(1, response.events.length),
      ttl,
    }),
  );
}

function bootstrapCache(ttl: number, options: LogReadsOptions): AnswerCache<BootstrapResponse> {
  return answerCache(
    ttl,
    new LRUCache<string, BootstrapResponse>({
      // Pages are at most BOOTSTRAP_PAGE_BYTES each (1 MiB by default), so a count bounds the bytes.
      max: options.bootstrapCachePages ?? 64,
      maxSize: options.bootstrapCacheRecords ?? 200_000,
      sizeCalculation: (response) =>
        Math.max(
          1,
          Object.values(response.models).reduce((n, records) => n + records.length, 0),
        ),
      ttl,
    }),
  );
}
