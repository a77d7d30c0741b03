import { Hono } from 'hono';
import type { Registry } from 'prom-client';
import { defineMetrics } from './metrics';

/**
 * Checks of this process alone (e.g. the standalone server's own embedded Postgres): when one
 * fails, `/readyz` answers 503. A dependency that every replica shares belongs in
 * {@link DependencyCheck} instead (contract §8, v1.1).
 */
export type ReadinessCheck = () => Promise<Record<string, boolean>>;

/**
 * Shared dependencies (`postgres`, `redis`, `delta`): reported by `sync_dependency_up{dependency}`
 * at scrape time, never by `/readyz` (which does not even wait for them: a probe must not time
 * out because Postgres is slow). If they did, one Redis
 * outage would take every gateway out of the load balancer at once although each can still serve
 * its clients from the log (head checks): the outage is the alert's job, not the balancer's.
 */
export type DependencyCheck = () => Promise<Record<string, boolean>>;

interface ReadinessSource {
  readiness: ReadinessCheck;
  dependencies: DependencyCheck;
  isDraining: () => boolean;
}

const noChecks = async () => ({});

/**
 * `sync_ready` (1 when `/readyz` would answer 200 for every app on this registry),
 * `sync_draining`, and `sync_dependency_up{dependency}`, all computed at scrape time from the same
 * checks as `/readyz`, so an alert can tell a process out of the load balancer from one whose
 * shared dependency is down. The set holds every readiness source of the registry: in the
 * standalone server several apps share one.
 */
const readinessSourcesFor = defineMetrics((m): Set<ReadinessSource> => {
  const all = new Set<ReadinessSource>();
  m.gauge({
    name: 'sync_draining',
    help: '1 while the service drains (SIGTERM received; /readyz answers 503), else 0.',
    collect() {
      this.set([...all].some((s) => s.isDraining()) ? 1 : 0);
    },
  });
  m.gauge({
    name: 'sync_ready',
    help: '1 when /readyz would answer 200 (this process can serve and is not draining), else 0.',
    async collect() {
      const results = await Promise.all([...all].map((s) => isReady(s)));
      this.set(results.every(Boolean) ? 1 : 0);
    },
  });
  m.gauge({
    name: 'sync_dependency_up',
    help: '1 when this process reaches the shared dependency (postgres, redis, delta), else 0. Not part of readiness.',
    labelNames: ['dependency'],
    async collect() {
      const up = new Map<string, boolean>();
      for (const checks of await Promise.all([...all].map((s) => s.dependencies()))) {
        for (const [name, ok] of Object.entries(checks)) up.set(name, (up.get(name) ?? true) && ok);
      }
      this.reset();
      for (const [name, ok] of up) this.set({ dependency: name }, ok ? 1 : 0);
    },
  });
  return all;
});

async function isReady(source: ReadinessSource): Promise<boolean> {
  return !source.isDraining() && Object.values(await source.readiness()).every(Boolean);
}

/**
 * `/healthz` (200 while the process lives), `/readyz` (200 unless this process drains or one of
 * its own checks fails; the body names each check; shared dependencies are in `/metrics`)
 * and `/metrics` (Prometheus text).
 */
export function createOpsRoutes(options: {
  registry: Registry;
  /** Checks of this process alone; a failing one turns `/readyz` to 503. */
  readiness?: ReadinessCheck;
  /** Shared dependencies: exported as `sync_dependency_up`, never a reason for 503. */
  dependencies?: DependencyCheck;
  isDraining: () => boolean;
}): Hono {
  const source: ReadinessSource = {
    readiness: options.readiness ?? noChecks,
    dependencies: options.dependencies ?? noChecks,
    isDraining: options.isDraining,
  };
  readinessSourcesFor(options.registry).add(source);
  const ops = new Hono();
  ops.get('/healthz', (c) => c.json({ status: 'ok' }));
  ops.get('/readyz', async (c) => {
    const checks = await source.readiness();
    const draining = source.isDraining();
    const ready = !draining && Object.values(checks).every(Boolean);
    return c.json({ status: ready ? 'ready' : 'not_ready', draining, checks }, ready ? 200 : 503);
  });
  ops.get('/metrics', async (c) => {
    const body = await options.registry.metrics();
    return c.body(body, 200, { 'content-type': options.registry.contentType });
  });
  return ops;
}
