import type { BootstrapResponse } from '@openagents/sync-protocol';
import { createSingleFlight, type DeltaSource, staleSweeper } from '@openagents/sync-server-kit';
import { LRUCache } from 'lru-cache';
import type { DeltaMetrics } from './metrics';

/** Where a shared read's answer came from: the `source` label of `sync_delta_reads_total`. */
export type ReadSource = 'postgres' | 'cache' | 'in_flight';

/**
 * An answer as JSON (serialised once, however often it is handed out), how many events or
 * records it holds, where it came from and its age in ms (0 when read for this request).
 */
export interface SharedAnswer {
  json: string;
  items: number;
  source: ReadSource;
  ageMs: number;
}

export interface ReadSharing {
  /**
   * Events after `lastSyncId`. With `maxAgeMs` > 0 the caller accepts an answer read up to that
   * long ago (a request's `Cache-Control: max-age`): a page read for another caller at the same
   * (scope, cursor, limit), finished or still in flight, is handed out again. A stale page is still
   * a correct page (events cursor+1… contiguous, a head that was true when it was read); only its
   * end may be behind. Without `maxAgeMs` the read goes to Postgres.
   */
  delta(
    scope: string,
    lastSyncId: number,
    limit: number | undefined,
    maxAgeMs: number,
  ): Promise<SharedAnswer>;
  /**
   * A bootstrap page, shared the same way per (scope, cursor). A shared first page is a correct
   * first page (its lastSyncId is only older, so more events follow it); a later page's cursor
   * carries the bootstrap's lastSyncId, so sharing it mixes no two bootstraps.
   */
  bootstrap(scope: string, cursor: string | undefined, maxAgeMs: number): Promise<SharedAnswer>;
}

export interface ReadSharingOptions {
  reader: DeltaSource;
  metrics: Pick<DeltaMetrics, 'reads'>;
  /** The largest age honoured, whatever a request asks for; 0 turns sharing off. */
  maxAgeCapMs: number;
  /** Bound of the cache: the JSON of the answers it holds, in bytes (UTF-16 code units). */
  cacheBytes: number;
}

interface Stamped {
  json: string;
  items: number;
  readAt: number;
}

/**
 * Shares reads between the gateways. Each gateway already shares a resume among its own clients,
 * so after a gateway restart or a network blip every gateway asks once per (scope, cursor): N
 * gateways, N identical queries. Here they become one. Sharing is opt-in per request, because a
 * client polling for news must not be handed a page from a second ago; the gateway opts in for
 * resumes and bootstraps (it treats the answer as a prefix and continues from its end through its
 * buffered live events) and never for gap fills.
 *
 * @example
 *   const sharing = createReadSharing({ reader, metrics, maxAgeCapMs: 10_000, cacheBytes: 64 << 20 });
 *   const { json, ageMs } = await sharing.delta('org:7f1c…', 41, undefined, 10_000);
 */
export function createReadSharing(options: ReadSharingOptions): ReadSharing {
  const { reader, metrics, maxAgeCapMs } = options;
  const flights = createSingleFlight<Stamped>();
  // One cache for pages and snapshots, bounded by the bytes of their JSON: a page of 1,000 code
  // diffs and one of 1,000 short messages differ a hundredfold, so a count would bound nothing.
  // An answer larger than the whole bound is not kept (lru-cache refuses it).
  const cache = new LRUCache<string, Stamped>({
    max: 10_000,
    maxSize: Math.max(1, options.cacheBytes),
    sizeCalculation: (entry) => Math.max(1, entry.json.length),
    ttl: Math.max(1, maxAgeCapMs),
  });
  // lru-cache keeps an expired answer until it is read or evicted: sweep on writes instead, so
  // memory follows the live answers rather than the byte bound.
  const sweep = staleSweeper(cache, Math.max(1, maxAgeCapMs));

  const shared = async (
    kind: 'delta' | 'bootstrap',
    key: string,
    maxAgeMs: number,
    read: () => Promise<Stamped>,
  ): Promise<SharedAnswer> => {
    const allowed = Math.min(maxAgeMs, maxAgeCapMs);
    if (!(allowed > 0)) {
      metrics.reads.inc({ kind, source: 'postgres' });
      const { json, items } = await read();
      return { json, items, source: 'postgres', ageMs: 0 };
    }
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && now - hit.readAt <= allowed) {
      metrics.reads.inc({ kind, source: 'cache' });
      return { json: hit.json, items: hit.items, source: 'cache', ageMs: now - hit.readAt };
    }
    const flight = flights.run(key, () =>
      read().then((stamped) => {
        sweep();
        cache.set(key, stamped);
        return stamped;
      }),
    );
    const source = flight.joined ? 'in_flight' : 'postgres';
    metrics.reads.inc({ kind, source });
    const { json, items, readAt } = await flight.promise;
    return { json, items, source, ageMs: flight.joined ? Math.max(0, Date.now() - readAt) : 0 };
  };

  return {
    delta: (scope, lastSyncId, limit, maxAgeMs) =>
      shared('delta', `d\0${scope}\0${lastSyncId}\0${limit ?? ''}`, maxAgeMs, () =>
        stamp(
          () => reader.delta(scope, lastSyncId, limit),
          (page) => page.events.length,
        ),
      ),
    bootstrap: (scope, cursor, maxAgeMs) =>
      shared('bootstrap', `b\0${scope}\0${cursor ?? ''}`, maxAgeMs, () =>
        stamp(() => reader.bootstrap(scope, cursor === undefined ? {} : { cursor }), recordCount),
      ),
  };
}

/** Reads, noting when the read began (its age counts from there), and serialises the answer once. */
async function stamp<T>(read: () => Promise<T>, items: (value: T) => number): Promise<Stamped> {
  const readAt = Date.now();
  const value = await read();
  return { json: JSON.stringify(value), items: items(value), readAt };
}

function recordCount(snapshot: BootstrapResponse): number {
  let records = 0;
  for (const rows of Object.values(snapshot.models)) records += rows.length;
  return records;
}

/**
 * The age a request accepts, from its `Cache-Control` header: `max-age=N` seconds (RFC 9111
 * §5.2.1.1); `no-cache`, `no-store`, a missing or malformed header accept nothing. Never throws:
 * a header the service does not understand only means a fresh read.
 */
export function acceptedAgeMs(header: string | undefined): number {
  if (!header) return 0;
  let maxAge = 0;
  for (const directive of header.toLowerCase().split(',')) {
    const [name, value] = directive
      .trim()
      .split('=', 2)
      .map((s) => s.trim());
    if (name === 'no-cache' || name === 'no-store') return 0;
    if (name === 'max-age' && value !== undefined && /^\d{1,9}$/.test(value)) maxAge = Number(value) * 1000;
  }
  return maxAge;
}
