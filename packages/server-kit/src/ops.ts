import { Hono } from 'hono';
import type { Registry } from 'prom-client';

export type ReadinessCheck = () => Promise<Record<string, boolean>>;

/**
 * `/healthz` (200 while the process lives), `/readyz` (200 only when every dependency check passes
 * and the service is not draining; the body names each check) and `/metrics` (Prometheus text).
 */
export function createOpsRoutes(options: {
  registry: Registry;
  readiness: ReadinessCheck;
  isDraining: () => boolean;
}): Hono {
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
