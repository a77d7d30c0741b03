import type { BootstrapResponse, DeltaResponse } from '@openagents/sync-protocol';

/**
 * Reads of the log and of snapshots, as the gateway needs them. The delta service implements it
 * over Postgres (`createDeltaReader`); the gateway also has an HTTP implementation that calls a
 * remote delta service. Errors are AppErrors: `reset_required` when a cursor is older than the
 * retained log (or ahead of it), `unavailable` when the store cannot be reached.
 */
export interface DeltaSource {
  /**
   * One page of the scope's records and the id to resume the log from (contract v1.1). The first
   * page is asked for without a cursor; each page but the last carries `nextCursor`, passed back
   * as `options.cursor` for the next one. Every page of one bootstrap has the same `lastSyncId`.
   */
  bootstrap(scope: string, options?: BootstrapOptions): Promise<BootstrapResponse>;
  /** Events with id > lastSyncId, ascending, at most `limit` (a default when omitted). */
  delta(scope: string, lastSyncId: number, limit?: number, options?: ReadOptions): Promise<DeltaResponse>;
  /** The last committed id of each scope (0 when it has none), in one round trip. */
  heads(scopes: readonly string[]): Promise<Map<string, number>>;
}

export interface ReadOptions {
  /**
   * The caller accepts an answer read up to this long ago for someone else (a remote delta
   * service shares it between gateways). Only for reads whose answer the caller treats as a
   * prefix to continue from; a gap fill must not set it. Sources that always read fresh ignore it.
   */
  maxAgeMs?: number;
}

export interface BootstrapOptions extends ReadOptions {
  /** The previous page's `nextCursor`; omitted for the first page. */
  cursor?: string;
}
