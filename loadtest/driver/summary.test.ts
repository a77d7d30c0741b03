import { describe, expect, it } from 'vitest';
import { Histogram } from './histogram';
import { check, counter, gauge, passed, type ScenarioResult, trend } from './result';
import { formatSummary } from './summary';

describe('formatSummary', () => {
  it('prints checks and metrics like k6', () => {
    const h = new Histogram();
    for (const v of [1, 2, 3, 4, 250]) h.record(v);
    const result: ScenarioResult = {
      scenario: 'fanout',
      target: 'sync',
      startedAt: new Date(0).toISOString(),
      durationMs: 12_500,
      options: { connections: 20, scopes: 2 },
      metrics: {
        sync_delivery_ms: trend(h.summary()),
        events_delivered: counter(5000, 10),
        rss_per_connection: gauge(6.5, 'KiB'),
      },
      checks: [check('no lost events', true), check('no duplicates', false, '3 duplicates')],
    };
    const text = formatSummary(result);
    expect(text).toContain('scenario: fanout  target: sync  connections=20 scopes=2');
    expect(text).toContain('duration: 12.5s');
    expect(text).toContain('✓ no lost events');
    expect(text).toContain('✗ no duplicates (3 duplicates)');
    expect(text).toMatch(
      /sync_delivery_ms\.+: avg=52ms min=1ms med=(2\.9\d|3(\.0\d)?)ms max=250ms p\(90\)=2\d\d(\.\d+)?ms/,
    );
    expect(text).toMatch(/events_delivered\.+: 5000 {2}500\/s/);
    expect(text).toMatch(/rss_per_connection\.+: 6.5 KiB/);
    expect(passed(result)).toBe(false);
  });
});
