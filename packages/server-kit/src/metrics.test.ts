import { describe, expect, it } from 'vitest';
import {
  createHttpMetrics,
  createRegistry,
  defineMetrics,
  LATENCY_BUCKETS,
  registerPoolMetrics,
} from './metrics';

const fresh = () => createRegistry('metrics-test', { defaultMetrics: false });

describe('defineMetrics', () => {
  const widgetsFor = defineMetrics((m) => ({
    made: m.counter({ name: 'sync_test_widgets_total', help: 'Widgets.', labelNames: ['kind'] as const }),
    latency: m.histogram({ name: 'sync_test_widget_seconds', help: 'Widget time.' }),
  }));

  it('builds a set once per registry and hands the same objects back', async () => {
    const registry = fresh();
    const first = widgetsFor(registry);
    expect(widgetsFor(registry)).toBe(first);
    first.made.inc({ kind: 'a' });
    widgetsFor(registry).made.inc({ kind: 'a' });
    expect((await registry.getSingleMetric('sync_test_widgets_total')!.get()).values[0]?.value).toBe(2);
  });

  it('keeps registries apart', async () => {
    const [a, b] = [fresh(), fresh()];
    widgetsFor(a).made.inc({ kind: 'x' });
    expect(widgetsFor(b)).not.toBe(widgetsFor(a));
    expect((await b.getSingleMetric('sync_test_widgets_total')!.get()).values).toEqual([]);
  });

  it('gives histograms the latency buckets unless told otherwise', async () => {
    const registry = fresh();
    widgetsFor(registry).latency.observe(0.001);
    const buckets = (await registry.getSingleMetric('sync_test_widget_seconds')!.get()).values
      .map((v) => v.labels.le)
      .filter((le) => le !== undefined && le !== '+Inf');
    expect(buckets).toEqual(LATENCY_BUCKETS);
  });

  it('lets sets share a family (the HTTP histogram of api and delta in one process)', () => {
    const registry = fresh();
    const apiLike = defineMetrics((_m, r) => ({ http: createHttpMetrics(r) }));
    const deltaLike = defineMetrics((_m, r) => ({ http: createHttpMetrics(r) }));
    expect(apiLike(registry).http.requestDuration).toBe(deltaLike(registry).http.requestDuration);
  });
});

describe('registerPoolMetrics', () => {
  it('reports the first pool registered on a registry', async () => {
    const registry = fresh();
    registerPoolMetrics(registry, { totalCount: 3, idleCount: 1, waitingCount: 0 }, 10);
    registerPoolMetrics(registry, { totalCount: 9, idleCount: 9, waitingCount: 9 }, 4);
    const values = (await registry.getSingleMetric('sync_pg_pool_connections')!.get()).values;
    expect(Object.fromEntries(values.map((v) => [v.labels.state, v.value]))).toEqual({
      total: 3,
      idle: 1,
      waiting: 0,
      max: 10,
    });
  });
});
