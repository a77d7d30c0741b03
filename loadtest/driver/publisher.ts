import { Histogram } from './histogram';
import { type Check, check } from './result';
import { HttpStatusError, type LoadTarget } from './target';

/** Share of the target rate an open-loop run must reach (acknowledged events) to pass. */
export const RATE_TOLERANCE = 0.95;

/** What a publisher did: requests, events acknowledged, failures, latency, and each scope's head. */
export interface PublishStats {
  requests: number;
  /** Events acknowledged by the target. */
  events: number;
  failures: number;
  /** Failures by HTTP status (or `network`). */
  failuresBy: Record<string, number>;
  firstFailure?: string;
  /** Publishes not issued because `maxInFlight` were outstanding (k6's dropped_iterations). */
  dropped: number;
  latency: Histogram;
  /** The highest id acknowledged per scope: what subscribers must reach. */
  heads: Map<string, number>;
  /** Every acknowledged id per scope, to check the log is gap- and duplicate-free. */
  acked: Map<string, number[]>;
  elapsedMs: number;
}

export interface PublishOptions {
  /** Events per publish (one transaction). */
  batch: number;
  contentBytes: number;
  /** Keep every acknowledged id (for the mutation scenario's log check). */
  keepIds?: boolean;
}

function emptyStats(): PublishStats {
  return {
    requests: 0,
    events: 0,
    failures: 0,
    failuresBy: {},
    dropped: 0,
    latency: new Histogram(),
    heads: new Map(),
    acked: new Map(),
    elapsedMs: 0,
  };
}

async function publishOnce(
  target: LoadTarget,
  scope: string,
  options: PublishOptions,
  stats: PublishStats,
): Promise<void> {
  const started = performance.now();
  stats.requests++;
  try {
    const ack = await target.publish(scope, options.batch, options.contentBytes);
    stats.latency.record(performance.now() - started);
    stats.events += ack.last - ack.first + 1;
    if (ack.last > (stats.heads.get(scope) ?? 0)) stats.heads.set(scope, ack.last);
    if (options.keepIds) {
      let ids = stats.acked.get(scope);
      if (!ids) {
        ids = [];
        stats.acked.set(scope, ids);
      }
      for (let id = ack.first; id <= ack.last; id++) ids.push(id);
    }
  } catch (err) {
    stats.failures++;
    const key = err instanceof HttpStatusError ? String(err.status) : 'network';
    stats.failuresBy[key] = (stats.failuresBy[key] ?? 0) + 1;
    stats.firstFailure ??= err instanceof Error ? err.message : String(err);
  }
}

/**
 * Open-loop publishing at a fixed rate (like k6's constant-arrival-rate), round-robin over the
 * scopes, for `durationMs`. Publishes that would exceed `maxInFlight` are dropped and counted, so
 * a slow target shows up as dropped publishes instead of a silently lower rate.
 */
export async function publishAtRate(
  target: LoadTarget,
  scopes: readonly string[],
  options: PublishOptions & { eventsPerSecond: number; durationMs: number; maxInFlight: number },
): Promise<PublishStats> {
  const stats = emptyStats();
  const perSecond = options.eventsPerSecond / options.batch;
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  let issued = 0;
  let next = 0;
  for (;;) {
    const elapsed = performance.now() - started;
    if (elapsed >= options.durationMs) break;
    const due = Math.floor((elapsed / 1000) * perSecond) - issued;
    for (let i = 0; i < due; i++) {
      issued++;
      if (inFlight.size >= options.maxInFlight) {
        stats.dropped++;
        continue;
      }
      const scope = scopes[next++ % scopes.length]!;
      const p: Promise<void> = publishOnce(target, scope, options, stats).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(inFlight);
  stats.elapsedMs = performance.now() - started;
  return stats;
}

/**
 * Closed-loop publishing as fast as the target answers: `concurrency` loops, each publishing to
 * the next scope as soon as its previous publish is acknowledged, for `durationMs`.
 */
export async function publishSaturating(
  target: LoadTarget,
  scopes: readonly string[],
  options: PublishOptions & { concurrency: number; durationMs: number },
): Promise<PublishStats> {
  const stats = emptyStats();
  const started = performance.now();
  let next = 0;
  const loop = async () => {
    while (performance.now() - started < options.durationMs) {
      await publishOnce(target, scopes[next++ % scopes.length]!, options, stats);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, loop));
  stats.elapsedMs = performance.now() - started;
  return stats;
}

/** Publishes `perScope` events into every scope (in batches), `concurrency` requests at a time. */
export async function publishEach(
  target: LoadTarget,
  scopes: readonly string[],
  perScope: number,
  options: PublishOptions & { concurrency: number },
): Promise<PublishStats> {
  const stats = emptyStats();
  const started = performance.now();
  const jobs: { scope: string; count: number }[] = [];
  for (const scope of scopes) {
    for (let left = perScope; left > 0; left -= options.batch) {
      jobs.push({ scope, count: Math.min(options.batch, left) });
    }
  }
  const lane = async () => {
    for (let job = jobs.shift(); job; job = jobs.shift()) {
      await publishOnce(target, job.scope, { ...options, batch: job.count }, stats);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, lane));
  stats.elapsedMs = performance.now() - started;
  return stats;
}

/**
 * The publisher's own checks, so a run that could not do what it was asked fails (exit 1) instead
 * of printing a lower rate next to green checks: no publish dropped (the in-flight cap was hit,
 * k6's `dropped_iterations`), none failed, and, for an open-loop run, at least
 * {@link RATE_TOLERANCE} of the target rate acknowledged (one batch of slack for the schedule's
 * rounding on short runs).
 */
export function publishChecks(
  stats: PublishStats,
  rate?: { eventsPerSecond: number; durationMs: number; batch: number },
): Check[] {
  const checks = [
    check(
      'no publish dropped',
      stats.dropped === 0,
      stats.dropped === 0 ? `${stats.requests} issued` : `${stats.dropped} dropped at the in-flight cap`,
    ),
    check(
      'no publish failed',
      stats.failures === 0,
      stats.failures === 0
        ? `${stats.requests} acknowledged`
        : `${stats.failures} failed (${JSON.stringify(stats.failuresBy)}); ${stats.firstFailure ?? ''}`,
    ),
  ];
  if (rate) {
    const wanted = (rate.eventsPerSecond * rate.durationMs) / 1000;
    const achieved = stats.events / (rate.durationMs / 1000);
    checks.push(
      check(
        `target rate reached (≥ ${RATE_TOLERANCE * 100} %)`,
        stats.events >= RATE_TOLERANCE * wanted - rate.batch,
        `${achieved.toFixed(1)}/s of ${rate.eventsPerSecond}/s (${stats.events} of ${Math.round(wanted)} events)`,
      ),
    );
  }
  return checks;
}
