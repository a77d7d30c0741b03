import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { publishAtRate, publishChecks } from './publisher';
import { passed, type ScenarioResult } from './result';
import { HttpStatusError, type LoadTarget } from './target';

// A run that could not do what it was asked must fail (exit 1): before, the driver dropped 207
// publishes and still passed every check. The publisher runs on fake timers (its schedule reads
// performance.now and sleeps with setTimeout), against targets that answer at once, never, or
// with an error.

/** A target whose publish answers as `answer` says; only publish is used by the publisher. */
function targetAnswering(answer: 'at-once' | 'error'): LoadTarget {
  const heads = new Map<string, number>();
  return {
    name: `fake-${answer}`,
    prepareScopes: async () => [],
    connectionSpec: async () => {
      throw new Error('not used');
    },
    deltaRequests: async () => undefined,
    gatewayRssBytes: async () => undefined,
    publish(scope, count) {
      if (answer === 'error') return Promise.reject(new HttpStatusError(503, 'unavailable'));
      const first = (heads.get(scope) ?? 0) + 1;
      heads.set(scope, first + count - 1);
      return Promise.resolve({ first, last: first + count - 1 });
    },
  };
}

const asResult = (checks: ReturnType<typeof publishChecks>): ScenarioResult => ({
  scenario: 'fanout',
  target: 'fake',
  startedAt: '',
  durationMs: 0,
  options: {},
  metrics: {},
  checks,
});

/** 100 events/s in batches of 2 for 2 s (50 publishes a second, 99 in the window), fake time. */
async function run(answer: 'at-once' | 'error') {
  const options = { eventsPerSecond: 100, durationMs: 2_000, batch: 2, contentBytes: 8, maxInFlight: 8 };
  const running = publishAtRate(targetAnswering(answer), ['s1', 's2'], options);
  await vi.advanceTimersByTimeAsync(options.durationMs + 50);
  return { stats: await running, options };
}

describe('publisher checks', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('pass when every publish was issued and acknowledged at the target rate', async () => {
    const { stats, options } = await run('at-once');
    expect(stats.dropped).toBe(0);
    expect(stats.events).toBeGreaterThanOrEqual(196);
    const checks = publishChecks(stats, options);
    expect(checks.map((c) => [c.name, c.ok])).toEqual([
      ['no publish dropped', true],
      ['no publish failed', true],
      ['target rate reached (≥ 95 %)', true],
    ]);
    expect(passed(asResult(checks))).toBe(true);
  });

  it('fail when the target cannot keep up: publishes dropped at the in-flight cap, rate missed', async () => {
    const options = { eventsPerSecond: 100, durationMs: 2_000, batch: 2, contentBytes: 8, maxInFlight: 8 };
    const stalled = targetAnswering('at-once');
    let release: (() => void) | undefined;
    // Publishes hang until released, so the cap of 8 in flight is hit and the rest are dropped.
    const target: LoadTarget = {
      ...stalled,
      publish: (scope, count) =>
        new Promise((resolve) => {
          const previous = release;
          release = () => {
            previous?.();
            resolve({ first: 1, last: count });
          };
          void scope;
        }),
    };
    const running = publishAtRate(target, ['s1'], options);
    await vi.advanceTimersByTimeAsync(options.durationMs + 50);
    release?.();
    const stats = await running;
    // 99 publishes fall due in the window (the last slot is at 2 s itself); 8 fit in flight.
    expect(stats.dropped).toBe(99 - 8);
    const checks = publishChecks(stats, options);
    expect(checks.find((c) => c.name === 'no publish dropped')).toMatchObject({
      ok: false,
      detail: '91 dropped at the in-flight cap',
    });
    expect(checks.find((c) => c.name.startsWith('target rate'))).toMatchObject({ ok: false });
    expect(passed(asResult(checks))).toBe(false);
  });

  it('fail when publishes are refused', async () => {
    const { stats, options } = await run('error');
    expect(stats.failures).toBeGreaterThan(0);
    const checks = publishChecks(stats, options);
    expect(checks.find((c) => c.name === 'no publish failed')).toMatchObject({ ok: false });
    expect(checks.find((c) => c.name === 'no publish failed')!.detail).toContain('{"503":');
    expect(passed(asResult(checks))).toBe(false);
  });

  it('leave the rate alone for closed-loop runs (no target rate to miss)', () => {
    const checks = publishChecks({
      requests: 3,
      events: 3,
      failures: 0,
      failuresBy: {},
      dropped: 0,
      latency: undefined as never,
      heads: new Map(),
      acked: new Map(),
      elapsedMs: 1,
    });
    expect(checks.map((c) => c.name)).toEqual(['no publish dropped', 'no publish failed']);
  });
});
