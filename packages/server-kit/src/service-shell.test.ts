import { describe, expect, it } from 'vitest';
import { createLogger } from './logger';
import { createMemoryBus } from './memory-bus';
import { createRegistry } from './metrics';
import { createServiceShell, poolOptionsFrom } from './service-shell';

const log = createLogger({ name: 'shell-test', level: 'silent' });
// pg pools connect lazily: nothing listens here, and nothing needs to.
const poolOptions = { url: 'postgres://nobody@127.0.0.1:1/none', max: 3, applicationName: 'shell-test' };

describe('createServiceShell', () => {
  it('ends the pool it created on stop, and reports it in the registry', async () => {
    const shell = createServiceShell('t', { log, registry: createRegistry('t', { defaultMetrics: false }) });
    const pool = shell.pool(poolOptions);
    expect(await shell.registry.getSingleMetric('sync_pg_pool_connections')?.get()).toMatchObject({
      values: expect.arrayContaining([expect.objectContaining({ labels: { state: 'max' }, value: 3 })]),
    });
    await shell.lifecycle({}).stop();
    expect(pool.ended).toBe(true);
  });

  it('hands back a shared pool and bus and never closes them', async () => {
    const { createPool } = await import('./db');
    const pool = createPool(poolOptions);
    const bus = createMemoryBus();
    const shell = createServiceShell('t', { log, pool, bus });
    expect(shell.pool(poolOptions)).toBe(pool);
    expect(shell.bus({})).toBe(bus);
    await shell.lifecycle({}).stop();
    expect(pool.ended).toBe(false);
    await pool.end();
  });

  it('asks for REDIS_URL when it has to build the bus itself', () => {
    const shell = createServiceShell('api', { log });
    expect(() => shell.bus({})).toThrow(/REDIS_URL/);
  });

  it('drains: readiness turns at once, then waits for in-flight requests and the hook', async () => {
    const shell = createServiceShell('t', { log }, { drainTimeoutMs: 60_000 });
    let release!: () => void;
    const fetch = shell.track(
      () =>
        new Promise<Response>((resolve) => {
          release = () => resolve(new Response('ok'));
        }),
    );
    const response = fetch(new Request('http://x/'));
    expect(shell.inFlight()).toBe(1);
    const order: string[] = [];
    const service = shell.lifecycle({ drain: async () => void order.push('hook') });
    const drained = service.drain().then(() => order.push('drained'));
    expect(shell.isDraining()).toBe(true);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(order).toEqual(['hook']);
    release();
    await response;
    await drained;
    expect(order).toEqual(['hook', 'drained']);
    expect(shell.inFlight()).toBe(0);
  });

  it('runs the start and stop hooks, the stop hook before its resources end', async () => {
    const shell = createServiceShell('t', { log });
    const pool = shell.pool(poolOptions);
    const seen: string[] = [];
    const service = shell.lifecycle({
      start: async () => void seen.push('start'),
      stop: async () => void seen.push(`stop (pool ended: ${pool.ended})`),
    });
    await service.start();
    await service.stop();
    expect(seen).toEqual(['start', 'stop (pool ended: false)']);
    expect(pool.ended).toBe(true);
  });
});

describe('poolOptionsFrom', () => {
  it('sizes the pool with PG_POOL_MAX and sets a statement timeout only when given one', () => {
    const config = { DATABASE_URL: 'postgres://db/sync', PG_POOL_MAX: 7 };
    expect(poolOptionsFrom(config, 'sync-api')).toEqual({
      url: 'postgres://db/sync',
      max: 7,
      applicationName: 'sync-api',
    });
    expect(poolOptionsFrom(config, 'sync-delta', 15_000)).toEqual({
      url: 'postgres://db/sync',
      max: 7,
      applicationName: 'sync-delta',
      statementTimeoutMs: 15_000,
    });
  });
});
