import { publishAtRate, publishChecks, publishSaturating } from '../publisher';
import { check, counter, type ScenarioResult, trend } from '../result';
import type { SyncTarget } from '../sync-target';
import type { RunEnv } from './run-env';

export interface MutationsOptions {
  /** Agent scopes written to (writes to one scope serialise on its log head). */
  scopes: number;
  /** Writers in flight (closed loop), like k6 VUs. */
  vus: number;
  /** When set, an open-loop rate in writes/s instead of closed-loop writers. */
  ratePerSecond?: number;
  durationMs: number;
  /** Messages per request: 1 is `POST /api/messages`, more is one `POST /api/mutations` batch. */
  batch: number;
  contentBytes: number;
}

export const MUTATIONS_DEFAULTS: MutationsOptions = {
  scopes: 50,
  vus: 16,
  durationMs: 10_000,
  batch: 1,
  contentBytes: 200,
};

/**
 * Write throughput and latency through the mutation workers. Afterwards every scope's log is
 * read back through `/sync/delta`: the acknowledged ids must be exactly 1..N with no gap or
 * duplicate, and the log must hold nothing else.
 */
export async function runMutations(
  target: SyncTarget,
  options: MutationsOptions,
  env: RunEnv,
): Promise<ScenarioResult> {
  const startedAt = new Date();
  const t0 = performance.now();
  const scopes = await target.prepareScopes(options.scopes);
  let done = 0;
  const base = { batch: options.batch, contentBytes: options.contentBytes, keepIds: true };
  env.progress.start('mutations', () => `scopes ${scopes.length}  vus ${options.vus}  acked so far ${done}`);
  const stats = options.ratePerSecond
    ? await publishAtRate(target, scopes, {
        ...base,
        eventsPerSecond: options.ratePerSecond * options.batch,
        durationMs: options.durationMs,
        maxInFlight: Math.max(options.vus, 64),
      })
    : await publishSaturating(target, scopes, {
        ...base,
        concurrency: options.vus,
        durationMs: options.durationMs,
      });
  done = stats.events;
  env.progress.stop();

  let contiguous = 0;
  let broken = 0;
  let logMismatch = 0;
  let firstProblem: string | undefined;
  for (const scope of scopes) {
    const ids = [...(stats.acked.get(scope) ?? [])].sort((a, b) => a - b);
    const ok = ids.every((id, i) => id === i + 1);
    if (ok) contiguous++;
    else {
      broken++;
      firstProblem ??= `${scope}: acked ids ${ids.slice(0, 10).join(',')}…`;
    }
    const log = await target.delta(scope, 0, 1);
    if (log.latestSyncId !== ids.length) {
      logMismatch++;
      firstProblem ??= `${scope}: log head ${log.latestSyncId}, acked ${ids.length}`;
    }
  }
  const seconds = stats.elapsedMs / 1000;
  return {
    scenario: 'mutations',
    target: target.name,
    startedAt: startedAt.toISOString(),
    durationMs: performance.now() - t0,
    options: { ...options },
    metrics: {
      mutation_requests: counter(stats.requests - stats.failures, seconds),
      mutations: counter(stats.events, seconds),
      mutation_ms: trend(stats.latency.summary()),
      mutation_failures: counter(stats.failures),
      mutation_dropped: counter(stats.dropped),
    },
    checks: [
      check(
        'every write acknowledged',
        stats.failures === 0 && stats.dropped === 0,
        stats.failures === 0 && stats.dropped === 0
          ? `${stats.requests} requests`
          : `${stats.failures} failed (${JSON.stringify(stats.failuresBy)}), ${stats.dropped} dropped; ${stats.firstFailure ?? ''}`,
      ),
      check('acknowledged ids are 1..N per scope', broken === 0, firstProblem ?? `${contiguous} scopes`),
      check(
        'each log holds exactly the acknowledged writes',
        logMismatch === 0,
        firstProblem ?? `${scopes.length} scopes`,
      ),
      check('writes were made', stats.events > 0, `${stats.events} events`),
      ...(options.ratePerSecond
        ? publishChecks(stats, {
            eventsPerSecond: options.ratePerSecond * options.batch,
            durationMs: options.durationMs,
            batch: options.batch,
          }).filter((c) => c.name.startsWith('target rate'))
        : []),
    ],
  };
}
