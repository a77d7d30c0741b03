import { describe, expect, it } from 'vitest';
import { createRegistry } from './metrics';
import { createOpsRoutes } from './ops';

const gauge = (text: string, name: string) =>
  Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1]);

describe('ops routes', () => {
  it('answers readyz from the checks and reports the same in sync_ready', async () => {
    const registry = createRegistry('test', { defaultMetrics: false });
    let db = true;
    let draining = false;
    const ops = createOpsRoutes({ registry, readiness: async () => ({ db }), isDraining: () => draining });

    expect((await ops.request('/readyz')).status).toBe(200);
    expect(gauge(await registry.metrics(), 'sync_ready')).toBe(1);

    db = false;
    const res = await ops.request('/readyz');
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'not_ready', checks: { db: false } });
    expect(gauge(await registry.metrics(), 'sync_ready')).toBe(0);

    db = true;
    draining = true;
    expect((await ops.request('/readyz')).status).toBe(503);
    const text = await registry.metrics();
    expect(gauge(text, 'sync_ready')).toBe(0);
    expect(gauge(text, 'sync_draining')).toBe(1);
  });

  it('reports shared dependencies in sync_dependency_up and stays ready while they are down (contract §8)', async () => {
    const registry = createRegistry('test', { defaultMetrics: false });
    let redis = true;
    const ops = createOpsRoutes({
      registry,
      dependencies: async () => ({ postgres: true, redis }),
      isDraining: () => false,
    });
    const up = (text: string, dependency: string) =>
      Number(
        new RegExp(`^sync_dependency_up\\{dependency="${dependency}"[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1],
      );
    let text = await registry.metrics();
    expect([up(text, 'postgres'), up(text, 'redis')]).toEqual([1, 1]);

    redis = false;
    const res = await ops.request('/readyz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', draining: false, checks: {} });
    text = await registry.metrics();
    expect([up(text, 'postgres'), up(text, 'redis')]).toEqual([1, 0]);
    expect(gauge(text, 'sync_ready')).toBe(1);
  });

  it('combines every app that shares a registry (the standalone server)', async () => {
    const registry = createRegistry('test', { defaultMetrics: false });
    createOpsRoutes({ registry, readiness: async () => ({ a: true }), isDraining: () => false });
    createOpsRoutes({ registry, readiness: async () => ({ b: false }), isDraining: () => false });
    expect(gauge(await registry.metrics(), 'sync_ready')).toBe(0);
    const shared = createRegistry('test', { defaultMetrics: false });
    createOpsRoutes({
      registry: shared,
      dependencies: async () => ({ postgres: true }),
      isDraining: () => false,
    });
    createOpsRoutes({
      registry: shared,
      dependencies: async () => ({ postgres: false }),
      isDraining: () => false,
    });
    expect(await shared.metrics()).toMatch(/^sync_dependency_up\{dependency="postgres"[^}]*\} 0$/m);
  });
});
