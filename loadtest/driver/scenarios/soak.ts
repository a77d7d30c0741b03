import { ChurnSchedule } from '../churn';
import type { ClientPool } from '../client-pool';
import { type DriftSample, deliveryRate, rssDrift } from '../drift';
import { Histogram, type HistogramData } from '../histogram';
import { type PublishStats, publishAtRate, publishChecks } from '../publisher';
import { check, counter, gauge, type ScenarioResult, trend } from '../result';
import type { LoadTarget } from '../target';
import type { ConnectionSpec } from '../worker-messages';
import type { FanoutHooks } from './fanout';
import {
  connectionSpecs,
  describeErrors,
  errorCount,
  guaranteeChecks,
  type RunEnv,
  subscribersPerScope,
  withPool,
} from './run-env';

export interface SoakOptions {
  connections: number;
  scopes: number;
  /** Events per second over all scopes, published through the hold. */
  eventsPerSecond: number;
  /** The whole run: the ramp, then the hold. */
  durationMs: number;
  /** Subscribers connect over this long, in `rampSteps` equal steps, before publishing starts. */
  rampMs: number;
  rampSteps: number;
  /** Fraction of the connections that drop and resume from their cursors per minute (0.03: 3 %). */
  churnPerMinute: number;
  /** How long a churned client stays away on average (each draws 0.5× to 1.5×). */
  churnAwayMs: number;
  /** How often the gateways' memory and the delivery rate are read during the hold. */
  sampleMs: number;
  /** Events per publish (one transaction, one frame). */
  batch: number;
  contentBytes: number;
  /** How long to wait after publishing for every client, returning ones included, to catch up. */
  settleMs: number;
}

/** An hour in all, as the k6 soak: ten minutes of ramp, then 50 minutes of hold. */
export const SOAK_DEFAULTS: SoakOptions = {
  connections: 1000,
  scopes: 100,
  eventsPerSecond: 50,
  durationMs: 3_600_000,
  rampMs: 600_000,
  rampSteps: 10,
  churnPerMinute: 0.03,
  churnAwayMs: 2000,
  sampleMs: 5000,
  batch: 1,
  contentBytes: 64,
  settleMs: 30_000,
};

export interface SoakHooks extends FanoutHooks {
  /** Each reading of the hold as it is taken (to watch a long run). */
  onSample?: (sample: DriftSample) => void;
}

/** A reading with the clients' latency histogram at that moment, to cut the hold into thirds. */
interface Reading {
  sample: DriftSample;
  latency: HistogramData;
}

/** The hold's readings: every sample, and the readings at its start, its thirds and its end. */
interface HoldReadings {
  samples: DriftSample[];
  start: Reading;
  firstThird: Reading;
  lastThird: Reading;
  end: Reading;
}

const TICK_MS = 100;

async function sleepUntil(at: number): Promise<void> {
  const ms = at - performance.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

/**
 * Opens the connections in `rampSteps` equal steps spread over `rampMs`, each step adding to the
 * last without resetting the counters, and returns once the ramp's time is up.
 */
async function rampUp(
  pool: ClientPool,
  specs: readonly ConnectionSpec[],
  options: SoakOptions,
): Promise<{ ready: number; firstError?: string; elapsedMs: number }> {
  const started = performance.now();
  const steps = Math.max(1, Math.min(options.rampSteps, specs.length));
  let ready = 0;
  let firstError: string | undefined;
  for (let step = 0; step < steps; step++) {
    await sleepUntil(started + (step * options.rampMs) / steps);
    const from = Math.floor((step * specs.length) / steps);
    const to = Math.floor(((step + 1) * specs.length) / steps);
    const opened = await pool.open(specs.slice(from, to), {
      measureLatency: true,
      timeoutMs: 60_000,
      keepCounters: step > 0,
    });
    ready += opened.ready;
    firstError ??= opened.firstError;
  }
  await sleepUntil(started + options.rampMs);
  const elapsedMs = performance.now() - started;
  return firstError === undefined ? { ready, elapsedMs } : { ready, firstError, elapsedMs };
}

async function read(pool: ClientPool, target: LoadTarget, atMs: number): Promise<Reading> {
  const [snapshot, rssBytes] = await Promise.all([
    pool.snapshot(),
    target.gatewayRssBytes().catch(() => undefined),
  ]);
  return { sample: { atMs, rssBytes, delivered: snapshot.delivered }, latency: snapshot.latency.toData() };
}

/**
 * Runs the hold until `publishing` is done: brings churned clients back and sends others away as
 * `churn` plans, and reads the target every `sampleMs` and at each third of `holdMs`.
 */
async function watchHold(
  pool: ClientPool,
  target: LoadTarget,
  churn: ChurnSchedule,
  publishing: Promise<PublishStats>,
  options: { holdMs: number; sampleMs: number; onSample: (sample: DriftSample) => void },
): Promise<HoldReadings> {
  let published = false;
  publishing.then(
    () => {
      published = true;
    },
    () => {
      published = true;
    },
  );
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  const samples: DriftSample[] = [];
  const take = async () => {
    const reading = await read(pool, target, elapsed());
    options.onSample(reading.sample);
    samples.push(reading.sample);
    return reading;
  };
  const start = await take();
  const thirds: Reading[] = [];
  let nextSample = options.sampleMs;
  for (;;) {
    await new Promise((r) => setTimeout(r, TICK_MS));
    if (published) break;
    const now = elapsed();
    // Churn stops with the hold; publishes still in flight after it only need to land.
    if (now < options.holdMs) {
      const { drop, resume } = churn.due(now);
      if (resume.length > 0) await pool.resume(resume);
      if (drop.length > 0) await pool.drop(drop);
    }
    const third = thirds.length < 2 && now >= ((thirds.length + 1) * options.holdMs) / 3;
    const due = now >= nextSample;
    if (!third && !due) continue;
    const reading = await take();
    if (third) thirds.push(reading);
    while (nextSample <= now) nextSample += options.sampleMs;
  }
  const end = await take();
  return { samples, start, firstThird: thirds[0] ?? end, lastThird: thirds[1] ?? start, end };
}

/**
 * Soak: subscribers ramp up in steps, then hold while events are published at a fixed rate;
 * throughout the hold a few clients per minute drop and resume from their cursors, as users do.
 * Reads the gateways' memory and the delivery rate every few seconds and reports the drift (RSS at
 * the hold's start and end, its slope per minute, p99 and delivery rate in the first and last
 * third), so a leak or a slowdown shows. At the end every client, returning ones included, must
 * hold every event once and in order: the fanout checks.
 */
export async function runSoak(
  target: LoadTarget,
  options: SoakOptions,
  env: RunEnv,
  hooks: SoakHooks = {},
): Promise<ScenarioResult> {
  if (options.rampMs >= options.durationMs) {
    throw new Error(
      `the ramp (${options.rampMs} ms) must be shorter than the run (${options.durationMs} ms)`,
    );
  }
  const startedAt = new Date();
  const t0 = performance.now();
  const holdMs = options.durationMs - options.rampMs;
  const scopes = await target.prepareScopes(options.scopes);
  const specs = await connectionSpecs(target, scopes, options.connections);
  const subscribers = subscribersPerScope(specs);
  return withPool(env, async (pool) => {
    let phase = 'ramp';
    let rss: number | undefined;
    env.progress.start(`soak[${target.name}]`, async () => {
      const s = await pool.snapshot();
      const memory = rss === undefined ? '' : `  gateways ${(rss / 2 ** 20).toFixed(1)} MiB`;
      return `${phase}  conns ${s.open}/${s.connections}  delivered ${s.delivered}  lost ${s.lost}  dup ${s.duplicates}  p99 ${s.latency.percentile(99).toFixed(1)}ms${memory}`;
    });
    const ramp = await rampUp(pool, specs, options);
    // Nothing was published during the ramp: every subscriber starts the hold at its scope's
    // (empty) head, so from here each must receive every event.
    await pool.window();
    phase = 'hold';
    const churn = new ChurnSchedule({
      connections: specs.length,
      perMinute: options.churnPerMinute,
      awayMs: options.churnAwayMs,
    });
    hooks.publishWindow?.('start');
    const publishing = publishAtRate(target, scopes, {
      eventsPerSecond: options.eventsPerSecond,
      durationMs: holdMs,
      batch: options.batch,
      contentBytes: options.contentBytes,
      maxInFlight: 64,
    });
    const readings = await watchHold(pool, target, churn, publishing, {
      holdMs,
      sampleMs: options.sampleMs,
      onSample: (sample) => {
        rss = sample.rssBytes ?? rss;
        hooks.onSample?.(sample);
      },
    });
    const published = await publishing;
    hooks.publishWindow?.('end');

    phase = 'settle';
    await pool.resume(churn.rest());
    await pool.expect(published.heads);
    const settled = await pool.waitCaughtUp(options.settleMs);
    env.progress.stop();

    const seconds = published.elapsedMs / 1000;
    let expected = 0;
    for (const [scope, head] of published.heads) expected += head * (subscribers.get(scope) ?? 0);
    const errors = errorCount(settled.errors);
    const frameErrors = errors - (settled.errors.transport ?? 0);
    const { start, firstThird, lastThird, end } = readings;
    const p99 = (from: Reading, to: Reading) => Histogram.from(to.latency).since(from.latency).percentile(99);
    const metrics: ScenarioResult['metrics'] = {
      connections_ready: gauge(ramp.ready),
      ramp_ms: gauge(ramp.elapsedMs, 'ms'),
      events_published: counter(published.events, seconds),
      publish_ms: trend(published.latency.summary()),
      publish_failures: counter(published.failures),
      publish_dropped: counter(published.dropped),
      events_delivered: counter(end.sample.delivered, seconds),
      events_delivered_total: counter(settled.delivered),
      sync_delivery_ms: trend(settled.latency.summary()),
      sync_delivery_p99_first_third: gauge(p99(start, firstThird), 'ms'),
      sync_delivery_p99_last_third: gauge(p99(lastThird, end), 'ms'),
      delivered_rate_first_third: gauge(deliveryRate(start.sample, firstThird.sample), '/s'),
      delivered_rate_last_third: gauge(deliveryRate(lastThird.sample, end.sample), '/s'),
      churn_reconnects: counter(churn.drops),
      reconnect_retries: counter(settled.reconnects),
      events_lost: counter(settled.lost),
      events_duplicated: counter(settled.duplicates),
      events_undelivered: counter(settled.behind),
      ws_errors: counter(errors),
      ws_unexpected_closes: counter(settled.unexpectedCloses),
    };
    // The slope leaves out the hold's first third: the gateways first give back what the ramp's
    // handshakes and bootstraps allocated, which would hide a slow leak behind a falling line.
    const drift = rssDrift(readings.samples, firstThird.sample.atMs);
    if (drift) {
      metrics.gateway_rss_hold_start = gauge(drift.startBytes / 2 ** 20, 'MiB');
      metrics.gateway_rss_end = gauge(drift.endBytes / 2 ** 20, 'MiB');
      metrics.gateway_rss_slope = gauge(drift.slopeBytesPerMinute, 'B/min');
      metrics.gateway_rss_samples = gauge(drift.samples);
    }
    return {
      scenario: 'soak',
      target: target.name,
      startedAt: startedAt.toISOString(),
      durationMs: performance.now() - t0,
      options: { ...options },
      metrics,
      checks: [
        check(
          'every connection subscribed',
          ramp.ready === options.connections,
          `${ramp.ready}/${options.connections}${ramp.firstError ? `, ${ramp.firstError}` : ''}`,
        ),
        ...guaranteeChecks(settled, expected, `, ${settled.caughtUp}/${options.connections} caught up`),
        check(
          'no error frames (transport retries aside)',
          frameErrors === 0,
          describeErrors(settled.errors) || 'none',
        ),
        check('events were published', published.events > 0, `${published.events} events`),
        ...publishChecks(published, {
          eventsPerSecond: options.eventsPerSecond,
          durationMs: holdMs,
          batch: options.batch,
        }),
      ],
      samples: readings.samples.map((sample, i) => {
        const previous = readings.samples[i - 1];
        const values: Record<string, number> = { atMs: Math.round(sample.atMs), delivered: sample.delivered };
        if (sample.rssBytes !== undefined) values.rssBytes = sample.rssBytes;
        if (previous) values.deliveredPerSecond = deliveryRate(previous, sample);
        return values;
      }),
    };
  });
}
