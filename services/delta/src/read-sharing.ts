import type { BootstrapResponse, DeltaResponse } from '@openagents/sync-protocol';
import type { DeltaSource } from '@openagents/sync-server-kit';
import { LRUCache } from 'lru-cache';
import type { DeltaMetrics } from './metrics';

/** Where a shared read's answer came from: the `source` label of `sync_delta_reads_total`. */
export type ReadSource = 'postgres' | 'cache' | 'in_flight';

/** An answer and how old it is: 0 when it was read for this request. */
export interface SharedAnswer<T> {
  value: T;
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
  ): Promise<SharedAnswer<DeltaResponse>>;
  /** A snapshot, shared the same way per scope. */
  bootstrap(scope: string, maxAgeMs: number): Promise<SharedAnswer<BootstrapResponse>>;
}

export interface ReadSharingOptions {
  reader: DeltaSource;
  metrics: Pick<DeltaMetrics, 'reads'>;
  /** The largest age honoured, whatever a request asks for; 0 turns sharing off. */
  maxAgeCapMs: number;
  /** Bound of the page cache, in events held. */
  cacheEvents: number;
  /** Bound of the snapshot cache, in records held. */
  cacheRecords: number;
}

interface Stamped<T> {
  value: T;
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
 *   const sharing = createReadSharing({ reader, metrics, maxAgeCapMs: 10_000, cacheEvents: 200_000, cacheRecords: 200_000 });
 *   const { value: page, ageMs } = await sharing.delta('org:7f1c…', 41, undefined, 10_000);
 */
export function createReadSharing(options: ReadSharingOptions): ReadSharing {
  const { reader, metrics, maxAgeCapMs } = options;
  const inFlight = new Map<string, Promise<Stamped<unknown>>>();
  const pages = new LRUCache<string, Stamped<DeltaResponse>>({
    max: 10_000,
    maxSize: Math.max(1, options.cacheEvents),
    sizeCalculation: (entry) => Math.max(1, entry.value.events.length),
    ttl: Math.max(1, maxAgeCapMs),
  });
  const snapshots = new LRUCache<string, Stamped<BootstrapResponse>>({
    max: 1000,
    maxSize: Math.max(1, options.cacheRecords),
    sizeCalculation: (entry) => {
      let records = 0;
      for (const rows of Object.values(entry.value.models)) records += rows.length;
      return Math.max(1, records);
    },
    ttl: Math.max(1, maxAgeCapMs),
  });

  const shared = async <T>(
    kind: 'delta' | 'bootstrap',
    key: string,
    maxAgeMs: number,
    cache: LRUCache<string, Stamped<T>>,
    read: () => Promise<T>,
  ): Promise<SharedAnswer<T>> => {
    const allowed = Math.min(maxAgeMs, maxAgeCapMs);
    if (!(allowed > 0)) {
      metrics.reads.inc({ kind, source: 'postgres' });
      return { value: await read(), source: 'postgres', ageMs: 0 };
    }
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && now - hit.readAt <= allowed) {
      metrics.reads.inc({ kind, source: 'cache' });
      return { value: hit.value, source: 'cache', ageMs: now - hit.readAt };
    }
    const pending = inFlight.get(key) as Promise<Stamped<T>> | undefined;
    if (pending) {
      metrics.reads.inc({ kind, source: 'in_flight' });
      const joined = await pending;
      return { value: joined.value, source: 'in_flight', ageMs: Math.max(0, Date.now() - joined.readAt) };
    }
    metrics.reads.inc({ kind, source: 'postgres' });
    const readAt = Date.now();
    const promise = read().then((value) => {
      const stamped = { value, readAt };
      cache.set(key, stamped);
      return stamped;
    });
    inFlight.set(key, promise);
    try {
      const { value } = await promise;
      return { value, source: 'postgres', ageMs: 0 };
    } finally {
      inFlight.delete(key);
    }
  };

  return {
    delta: (scope, lastSyncId, limit, maxAgeMs) =>
      shared('delta', `${scope}\0${lastSyncId}\0${limit ?? ''}`, maxAgeMs, pages, () =>
        reader.delta(scope, lastSyncId, limit),
      ),
    bootstrap: (scope, maxAgeMs) =>
      shared('bootstrap', scope, maxAgeMs, snapshots, () => reader.bootstrap(scope)),
  };
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
