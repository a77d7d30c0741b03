import { publishAtRate, publishChecks, publishSaturating } from '../publisher';
import { check, counter, gauge, type ScenarioResult, trend } from '../result';
import type { LoadTarget } from '../target';
import {
  connectionSpecs,
  describeErrors,
  errorCount,
  guaranteeChecks,
  type RunEnv,
  subscribersPerScope,
  withPool,
} from './run-env';

export interface FanoutOptions {
  connections: number;
  scopes: number;
  /** `rate`: a fixed publish rate (latency). `saturate`: closed-loop publishers (throughput). */
  mode: 'rate' | 'saturate';
  /** Events per second over all scopes, in `rate` mode. */
  eventsPerSecond: number;
  /** Publishers in flight, in `saturate` mode. */
  concurrency: number;
  durationMs: number;
  /** Events per publish (one transaction, one frame). */
  batch: number;
  contentBytes: number;
  /** How long to wait after publishing for every subscriber to catch up. */
  settleMs: number;
}

export const FANOUT_DEFAULTS: FanoutOptions = {
  connections: 1000,
  scopes: 50,
  mode: 'rate',
  eventsPerSecond: 200,
  concurrency: 16,
  durationMs: 10_000,
  batch: 1,
  contentBytes: 64,
  settleMs: 10_000,
};

/** Callbacks around the measured window (the bench samples server CPU time there). */
export interface FanoutHooks {
  publishWindow?: (phase: 'start' | 'end') => void;
}

/**
 * Fan-out: subscribers spread over scopes, events published through the target, each delivery
 * timed from the event's `created_at` (its commit) to receipt. Checks the guarantee on every
 * connection: ids contiguous, none twice, every published event delivered to every subscriber.
 */
export async function runFanout(
  target: LoadTarget,
  options: FanoutOptions,
  env: RunEnv,
  hooks: FanoutHooks = {},
): Promise<ScenarioResult> {
  const startedAt = new Date();
  const t0 = performance.now();
  const scopes = await target.prepareScopes(options.scopes);
  const specs = await connectionSpecs(target, scopes, options.connections);
  const subscribers = subscribersPerScope(specs);
  return withPool(env, async (pool) => {
    const opened = await pool.open(specs, { measureLatency: true, timeoutMs: 60_000 });
    await pool.window();
    env.progress.start(`fanout[${target.name}]`, async () => {
      const s = await pool.snapshot();
      return `conns ${s.open}/${s.connections}  delivered ${s.delivered}  lost ${s.lost}  dup ${s.duplicates}  p99 ${s.latency.percentile(99).toFixed(1)}ms`;
    });
    hooks.publishWindow?.('start');
    const publishing =
      options.mode === 'rate'
        ? await publishAtRate(target, scopes, {
            eventsPerSecond: options.eventsPerSecond,
            durationMs: options.durationMs,
            batch: options.batch,
            contentBytes: options.contentBytes,
            maxInFlight: Math.max(64, options.concurrency),
          })
        : await publishSaturating(target, scopes, {
            concurrency: options.concurrency,
            durationMs: options.durationMs,
            batch: options.batch,
            contentBytes: options.contentBytes,
          });
    hooks.publishWindow?.('end');
    const atEnd = await pool.snapshot();
    await pool.expect(publishing.heads);
    const settled = await pool.waitCaughtUp(options.settleMs);
    env.progress.stop();

    const seconds = publishing.elapsedMs / 1000;
    let expected = 0;
    for (const [scope, head] of publishing.heads) expected += head * (subscribers.get(scope) ?? 0);
    const errors = errorCount(settled.errors);
    return {
      scenario: 'fanout',
      target: target.name,
      startedAt: startedAt.toISOString(),
      durationMs: performance.now() - t0,
      options: { ...options },
      metrics: {
        connections_ready: gauge(opened.ready),
        events_published: counter(publishing.events, seconds),
        publish_ms: trend(publishing.latency.summary()),
        publish_failures: counter(publishing.failures),
        publish_dropped: counter(publishing.dropped),
        events_delivered: counter(atEnd.delivered, seconds),
        events_delivered_total: counter(settled.delivered),
        sync_delivery_ms: trend(settled.latency.summary()),
        events_lost: counter(settled.lost),
        events_duplicated: counter(settled.duplicates),
        events_undelivered: counter(settled.behind),
        ws_errors: counter(errors),
        ws_unexpected_closes: counter(settled.unexpectedCloses),
      },
      checks: [
        check(
          'every connection subscribed',
          opened.ready === options.connections,
          `${opened.ready}/${options.connections}${opened.firstError ? `, ${opened.firstError}` : ''}`,
        ),
        ...guaranteeChecks(settled, expected),
        check('no error frames', errors === 0, describeErrors(settled.errors) || 'none'),
        check('events were published', publishing.events > 0, `${publishing.events} events`),
        ...publishChecks(
          publishing,
          options.mode === 'rate'
            ? {
                eventsPerSecond: options.eventsPerSecond,
                durationMs: options.durationMs,
                batch: options.batch,
              }
            : undefined,
        ),
      ],
    };
  });
}
