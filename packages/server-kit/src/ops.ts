import { Hono } from 'hono';
import { Gauge, type Registry } from 'prom-client';

export type ReadinessCheck = () => Promise<Record<string, boolean>>;

interface ReadinessSource {
  readiness: ReadinessCheck;
  isDraining: () => boolean;
}

/** Every readiness source of a registry: in the standalone server several apps share one. */
const sourcesByRegistry = new WeakMap<Registry, Set<ReadinessSource>>();

/**
 * `sync_ready` (1 when every check of every app on this registry passes and none drains) and
 * `sync_draining`, computed at scrape time from the same checks as `/readyz`, so an alert can
 * tell a process that answers `/metrics` but is out of the load balancer.
 */
function registerReadinessGauges(registry: Registry, source: ReadinessSource): void {
  let sources = sourcesByRegistry.get(registry);
  if (sources) {
    sources.add(source);
    return;
  }
  sources = new Set([source]);
  sourcesByRegistry.set(registry, sources);
  const all = sources;
  new Gauge({
    name: 'sync_draining',
    help: '1 while the service drains (SIGTERM received; /readyz answers 503), else 0.',
    registers: [registry],
    collect() {
      this.set([...all].some((s) => s.isDraining()) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'sync_ready',
    help: '1 when /readyz would answer 200 (dependencies answer, not draining), else 0.',
    registers: [registry],
    async collect() {
      const results = await Promise.all(
        [...all].map(async (s) => !s.isDraining() && Object.values(await s.readiness()).every(Boolean)),
      );
      this.set(results.every(Boolean) ? 1 : 0);
    },
  });
}

/**
 * `/healthz` (200 while the process lives), `/readyz` (200 only when every dependency check passes
 * and the service is not draining; the body names each check) and `/metrics` (Prometheus text).
 */
export function createOpsRoutes(options: {
  registry: Registry;
  readiness: ReadinessCheck;
  isDraining: () => boolean;
}): Hono {
  registerReadinessGauges(options.registry, options);
  const ops = new Hono();
  ops.get('/healthz', (c) => c.json({ status: 'ok' }));
  ops.get('/readyz', async (c) => {
    const checks = await options.readiness();
    const draining = options.isDraining();
    const ready = !draining && Object.values(checks).every(Boolean);
    return c.json({ status: ready ? 'ready' : 'not_ready', draining, checks }, ready ? 200 : 503);
  });
  ops.get('/metrics', async (c) => {
    const body = await options.registry.metrics();
    return c.body(body, 200, { 'content-type': options.registry.contentType });
  });
  return ops;
}
