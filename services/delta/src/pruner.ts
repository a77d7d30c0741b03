import { type Logger, type Pool, pruneEvents } from '@openagents/sync-server-kit';
import type { DeltaMetrics } from './metrics';
import { deleteIdempotencyKeysBefore, tryLockPruning, unlockPruning } from './queries';

/** What one pruning run did. `skipped`: another replica held the prune lock. */
export type PruneRun =
  | { outcome: 'skipped' }
  | { outcome: 'pruned'; events: number; idempotencyKeys: number; seconds: number };

export interface Pruner {
  /** Runs now, then every `intervalMs`, until `stop`. */
  start(): void;
  /** Stops scheduling and waits for a run in progress to finish. */
  stop(): Promise<void>;
  /** One run, on demand (tests, an operator endpoint). Concurrent calls share the run in flight. */
  runOnce(): Promise<PruneRun>;
}

export interface PrunerOptions {
  pool: Pool;
  /** Events older than this many days are deleted (contract default 30). */
  retentionDays: number;
  /** Idempotency keys older than this many hours are deleted: a retry after that writes again. */
  idempotencyRetentionHours: number;
  intervalMs: number;
  log: Logger;
  metrics: Pick<DeltaMetrics, 'eventsPruned' | 'idempotencyKeysPruned' | 'pruneDuration' | 'pruneRuns'>;
  /** Clock, for tests; defaults to `Date.now`. */
  now?: () => number;
}

/** Scopes per `pruneEvents` call, and idempotency keys per delete. */
const EVENT_SCOPES_PER_BATCH = 500;
const KEYS_PER_BATCH = 5000;

/**
 * Retention of the log and of idempotency keys.
 *
 * Every replica of the delta service runs a pruner, but only one works at a time: a run first
 * takes a session-level advisory lock (`pg_try_advisory_lock`) on a dedicated connection and
 * skips the run when another session holds it. The deletes then run on that same connection, in
 * autocommitted batches (a long single transaction would hold back vacuum and block nothing
 * useful), and the lock is released at the end. If the process dies mid-run, Postgres drops the
 * session and its lock with it, so a crashed pruner never blocks the others.
 *
 * `pruneEvents` only ever deletes a prefix of a scope's log and records `pruned_through` in the
 * same statement, so readers answer a cursor that fell behind with `reset_required` instead of a
 * page with a hole in it.
 */
export function createPruner(options: PrunerOptions): Pruner {
  const { pool, log, metrics } = options;
  const now = options.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;
  let inFlight: Promise<PruneRun> | undefined;

  const run = async (): Promise<PruneRun> => {
    const client = await pool.connect();
    let broken = false;
    try {
      if (!(await tryLockPruning(client))) {
        metrics.pruneRuns.inc({ result: 'skipped' });
        return { outcome: 'skipped' };
      }
      try {
        const started = performance.now();
        const eventsBefore = new Date(now() - options.retentionDays * 86_400_000);
        const keysBefore = new Date(now() - options.idempotencyRetentionHours * 3_600_000);
        let events = 0;
        for (let n = -1; n !== 0; ) {
          n = await pruneEvents(client, eventsBefore, EVENT_SCOPES_PER_BATCH);
          events += n;
          metrics.eventsPruned.inc(n);
        }
        let idempotencyKeys = 0;
        for (let n = -1; n !== 0; ) {
          n = await deleteIdempotencyKeysBefore(client, keysBefore, KEYS_PER_BATCH);
          idempotencyKeys += n;
          metrics.idempotencyKeysPruned.inc(n);
        }
        const seconds = (performance.now() - started) / 1000;
        metrics.pruneDuration.observe(seconds);
        metrics.pruneRuns.inc({ result: 'ok' });
        if (events > 0 || idempotencyKeys > 0) {
          log.info({ events, idempotencyKeys, ms: Math.round(seconds * 1000) }, 'pruned');
        }
        return { outcome: 'pruned', events, idempotencyKeys, seconds };
      } finally {
        await unlockPruning(client);
      }
    } catch (err) {
      // The session's lock state is unknown now: discard the connection, which releases the lock.
      broken = true;
      metrics.pruneRuns.inc({ result: 'error' });
      throw err;
    } finally {
      client.release(broken);
    }
  };

  const runOnce = (): Promise<PruneRun> => {
    inFlight ??= run().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  const tick = async () => {
    try {
      await runOnce();
    } catch (err) {
      log.warn({ err }, 'pruning failed; retrying next interval');
    }
    if (!stopped) {
      timer = setTimeout(tick, options.intervalMs);
      timer.unref();
    }
  };

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      timer = setTimeout(tick, 0);
      timer.unref();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inFlight?.catch(() => {});
    },
    runOnce,
  };
}
