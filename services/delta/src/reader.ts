import {
  type BootstrapResponse,
  DEFAULT_DELTA_LIMIT,
  type DeltaResponse,
  MAX_DELTA_LIMIT,
  MODEL_REGISTRY,
  type ModelDef,
  type ModelRegistry,
} from '@openagents/sync-protocol';
import {
  AppError,
  type DeltaSource,
  inTransaction,
  type Pool,
  readEventsWithin,
  readHead,
  readHeads,
} from '@openagents/sync-server-kit';
import { type BootstrapCursor, decodeCursor, encodeCursor, type KeysetPosition } from './bootstrap-cursor';
import { selectModelPage } from './queries';
import { toRecord } from './records';
import { type ScopeTarget, scopeTarget } from './scope-target';

/** Default bound of a bootstrap page's records and of a delta page's events, in bytes of JSON. */
export const DEFAULT_PAGE_BYTES = 1024 * 1024;
/** Rows one model's query of a page looks at, at most (bounds the scan, not the page). */
const MAX_ROWS_PER_QUERY = 10_000;

export interface DeltaReaderOptions {
  pool: Pool;
  /** Most bytes of records in one bootstrap page (BOOTSTRAP_PAGE_BYTES); one record always fits. */
  bootstrapPageBytes?: number;
  /** Most bytes of events in one delta page (DELTA_PAGE_BYTES); one event always fits. */
  deltaPageBytes?: number;
  /** The models whose records bootstrap serves; default the built-in MODEL_REGISTRY. */
  models?: ModelRegistry;
}

/**
 * Reads bootstrap pages and the log straight from Postgres. The gateway calls it in-process in
 * standalone mode; the delta service's HTTP app serves it to remote gateways and clients.
 *
 * @example
 *   const reader = createDeltaReader({ pool });
 *   let page = await reader.bootstrap('org:7f1c…');
 *   while (page.nextCursor) page = await reader.bootstrap('org:7f1c…', { cursor: page.nextCursor });
 *   const events = await reader.delta('org:7f1c…', page.lastSyncId);
 */
export function createDeltaReader(options: DeltaReaderOptions): DeltaSource {
  const { pool } = options;
  const pageBytes = options.bootstrapPageBytes ?? DEFAULT_PAGE_BYTES;
  const deltaBytes = options.deltaPageBytes ?? DEFAULT_PAGE_BYTES;
  const models = options.models ?? MODEL_REGISTRY;
  return {
    bootstrap: (scope, read) => readBootstrapPage(pool, models, scope, read?.cursor, pageBytes),
    delta: (scope, lastSyncId, limit = DEFAULT_DELTA_LIMIT) =>
      readDelta(pool, scope, lastSyncId, limit, deltaBytes),
    heads: (scopes) => readHeads(pool, scopes),
  };
}

/**
 * The models a scope owns, in the order bootstrap pages walk them (a cursor's `model` indexes it):
 * the registry's declaration order, so a model added at the end keeps existing cursors valid.
 */
function scopeModels(models: ModelRegistry, target: ScopeTarget): readonly ModelDef[] {
  return target.kind === 'records' ? models.modelsOf(target.prefix) : [];
}

/**
 * One bootstrap page: the scope's records in keyset order (model, created_at, id) from the cursor
 * on, up to `pageBytes` of JSON, and the id to resume the log from.
 *
 * Each page is one short REPEATABLE READ, READ ONLY transaction; nothing is held between pages,
 * which a client may fetch minutes apart. The first page reads the scope's head L in the same
 * snapshot as its records (a single-page scope is exactly the old consistent snapshot), and every
 * later page reports the same L, carried in the cursor. Why L and not each page's own head, and
 * why pages read at different times plus events L+1… still give exactly the current state, is
 * argued in docs/delta.md ("Paged bootstraps"); bootstrap-pages.pg.test.ts checks it with writes
 * between the pages.
 */
async function readBootstrapPage(
  pool: Pool,
  registry: ModelRegistry,
  scope: string,
  cursorText: string | undefined,
  pageBytes: number,
): Promise<BootstrapResponse> {
  const target = scopeTarget(scope, registry);
  const models = scopeModels(registry, target);
  const cursor = cursorText === undefined ? undefined : decodeCursor(scope, cursorText);
  if (cursor && cursor.model > models.length) {
    throw new AppError('bad_request', 'Invalid bootstrap cursor: no such position; start again without one', {
      details: [{ path: 'cursor', message: 'no such position' }],
    });
  }
  const scopeId = target.kind === 'records' ? target.id : '';
  return inTransaction(
    pool,
    async (client) => {
      const head = await readHead(client, scope);
      let lastSyncId = head.lastId;
      if (cursor) {
        if (cursor.lastSyncId > head.lastId) {
          throw new AppError(
            'bad_request',
            'Invalid bootstrap cursor: ahead of the log; start again without one',
            {
              details: [{ path: 'cursor', message: 'ahead of the log' }],
            },
          );
        }
        if (cursor.lastSyncId < head.prunedThrough) {
          // The bootstrap took longer than the retention: the events it must resume from are gone.
          throw new AppError(
            'reset_required',
            `Events after ${cursor.lastSyncId} of ${scope} are no longer retained; bootstrap again from the first page`,
          );
        }
        lastSyncId = cursor.lastSyncId;
      }

      // Every model of the registry, empty or not (the snapshot names them all).
      const out: Record<string, Record<string, unknown>[]> = Object.fromEntries(
        registry.names.map((name) => [name, []]),
      );
      let remaining = pageBytes;
      let taken = 0;
      let m = cursor?.model ?? 0;
      let after: KeysetPosition | undefined = cursor?.after;
      let next: BootstrapCursor | undefined;
      while (m < models.length) {
        const model = models[m]!;
        const page = await selectModelPage(
          client,
          model,
          scopeId,
          after,
          Math.max(1, remaining),
          MAX_ROWS_PER_QUERY,
          lastSyncId,
        );
        let complete = page.exhausted;
        for (const { row, createdUs, id } of page.rows) {
          const record = toRecord(row);
          // The exact size on the wire (plus its comma); the SQL estimate only chose candidates.
          const bytes = Buffer.byteLength(JSON.stringify(record)) + 1;
          if (taken > 0 && bytes > remaining) {
            complete = false;
            break;
          }
          out[model.name]!.push(record);
          remaining -= bytes;
          taken++;
          after = { createdUs, id };
        }
        if (!complete) {
          next = { lastSyncId, model: m, ...(after ? { after } : {}) };
          break;
        }
        m++;
        after = undefined;
        if (remaining <= 0 && m < models.length) {
          next = { lastSyncId, model: m };
          break;
        }
      }
      return {
        scope,
        models: out,
        lastSyncId,
        ...(next ? { nextCursor: encodeCursor(scope, next) } : {}),
      };
    },
    { isolation: 'repeatable read', readOnly: true },
  );
}

/**
 * Events after `lastSyncId`, ascending, at most `limit` and `maxBytes` of JSON (one event always:
 * a larger one goes out alone). A page cut by either bound has `hasMore: true`.
 *
 * Two statements, no transaction: the head first (for the cursor checks), then the page. Events
 * committed between the two can only extend the page, so `latestSyncId` is the larger of the head
 * and the last event returned. Pruning between the two is caught by checking that the page starts
 * exactly at lastSyncId+1 — a page must never silently skip ids.
 */
async function readDelta(
  pool: Pool,
  scope: string,
  lastSyncId: number,
  limit: number,
  maxBytes: number,
): Promise<DeltaResponse> {
  if (!Number.isSafeInteger(lastSyncId) || lastSyncId < 0) {
    throw new AppError('bad_request', 'lastSyncId must be a non-negative integer', {
      details: { lastSyncId },
    });
  }
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_DELTA_LIMIT) {
    throw new AppError('bad_request', `limit must be an integer in 1..${MAX_DELTA_LIMIT}`, {
      details: { limit },
    });
  }
  const head = await readHead(pool, scope);
  if (lastSyncId < head.prunedThrough) throw cursorPruned(scope, lastSyncId, head.prunedThrough);
  if (lastSyncId > head.lastId) throw cursorAhead(scope, lastSyncId, head.lastId);

  const events =
    lastSyncId === head.lastId ? [] : await readEventsWithin(pool, scope, lastSyncId, limit, maxBytes);
  // The exact bytes on the wire: the SQL estimate chose candidates, this keeps the bound exact.
  let bytes = 0;
  for (let i = 0; i < events.length; i++) {
    const size = Buffer.byteLength(JSON.stringify(events[i])) + 1;
    if (i > 0 && bytes + size > maxBytes) {
      events.length = i;
      break;
    }
    bytes += size;
  }
  if (lastSyncId < head.lastId && events[0]?.id !== lastSyncId + 1) {
    // The retained log moved past the cursor after the head was read: a concurrent prune.
    throw cursorPruned(scope, lastSyncId, (events[0]?.id ?? head.lastId + 1) - 1);
  }
  const last = events.at(-1)?.id ?? lastSyncId;
  const latestSyncId = Math.max(head.lastId, last);
  return { scope, events, latestSyncId, hasMore: last < latestSyncId };
}

// reset_required carries no details: the contract fixes its body to a code and a message.
function cursorPruned(scope: string, lastSyncId: number, prunedThrough: number): AppError {
  return new AppError(
    'reset_required',
    `Events after ${lastSyncId} of ${scope} are no longer retained (pruned through ${prunedThrough}); bootstrap again`,
  );
}

function cursorAhead(scope: string, lastSyncId: number, head: number): AppError {
  return new AppError(
    'reset_required',
    `Cursor ${lastSyncId} is ahead of the log of ${scope} (last event ${head}): it belongs to another history; bootstrap again`,
  );
}
