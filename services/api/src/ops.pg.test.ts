import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { ErrorBody } from '@openagents/sync-protocol';
import { createMemoryBus, createPool, createRegistry } from '@openagents/sync-server-kit';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/support/ports';
import { TEST_REDIS_URL } from '../../../test/support/redis';
import { TEST_JWT_SECRET, testAuth } from '../../../test/support/tokens';
import { type ApiHarness, createApiHarness } from '../test/api-harness';
import { createApiApp } from './app';
import { loadApiConfig } from './config';
import { createApiService } from './service';

/** A pino logger whose JSON lines land in `lines`. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

let shared: ApiHarness;
afterAll(async () => shared?.close());

describe('ops routes, metrics and logs', () => {
  let h: ApiHarness;
  let lines: Record<string, unknown>[];
  beforeAll(async () => {
    const captured = capturingLogger();
    lines = captured.lines;
    h = await createApiHarness({ label: 'api_ops', log: captured.log });
    shared = h;
  });
  it('/healthz and /readyz answer 200 while the database and bus answer', async () => {
    expect((await h.app.request('/healthz')).status).toBe(200);
    const ready = await h.app.request('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { bus: true } });
    expect(await (await h.app.request('/metrics')).text()).toMatch(
      /^sync_dependency_up\{dependency="postgres"[^}]*\} 1$/m,
    );
  });

  it('labels request metrics by route pattern and counts mutations, commits and publishes', async () => {
    const agent = await h.createAgent();
    await h.request('PATCH', `/api/agents/${agent.id}`, { name: 'renamed' });
    await h.request('PATCH', `/api/agents/${randomUUID()}`, { name: 'missing' });
    const text = await (await h.app.request('/metrics')).text();
    expect(text).toContain('route="/api/:model",method="POST",status="201"');
    expect(text).toContain('route="/api/:model/:id",method="PATCH",status="200"');
    expect(text).toContain('route="/api/:model/:id",method="PATCH",status="404"');
    expect(text).not.toContain(agent.id);
    expect(text).toMatch(/sync_mutations_total\{model="Agent",action="insert",result="ok"[^}]*\} [1-9]/);
    expect(text).toMatch(
      /sync_mutations_total\{model="Agent",action="update",result="client_error"[^}]*\} 1/,
    );
    expect(text).toMatch(/sync_commit_duration_seconds_count\{[^}]*\} [1-9]/);
    expect(text).toMatch(/sync_bus_publish_duration_seconds_count\{[^}]*\} [1-9]/);
    for (const name of [
      'sync_bus_publish_failures_total',
      'sync_idempotent_replays_total',
      'sync_rate_limited_total',
    ]) {
      expect(text).toContain(`# TYPE ${name} counter`);
    }
  });

  it('logs one info line per API request with method, route, status and ms, never the token', async () => {
    const before = lines.length;
    await h.request('POST', '/api/agents', { org_id: randomUUID(), name: 'logged' });
    await h.request('POST', '/api/agents', { name: '' });
    const mine = lines.slice(before).filter((l) => l.msg === 'request');
    expect(mine).toHaveLength(2);
    expect(mine[0]).toMatchObject({
      level: 30,
      method: 'POST',
      route: '/api/:model',
      status: 201,
      ms: expect.any(Number),
    });
    expect(mine[1]).toMatchObject({ status: 400 });
    expect(JSON.stringify(lines)).not.toContain(h.token);
  });
});

describe('failures of dependencies', () => {
  it('503 unavailable when the database cannot be reached; /readyz stays 200 and the metric says so', async () => {
    const port = await freePort();
    const deadPool = createPool({ url: `postgres://postgres@127.0.0.1:${port}/nowhere`, max: 2 });
    const h = await createApiHarness({ label: 'api_db_down', pool: deadPool });
    try {
      const requests = [
        () => h.request('POST', '/api/agents', { org_id: randomUUID(), name: 'x' }),
        () => h.request('PATCH', `/api/agents/${randomUUID()}`, { name: 'x' }),
        () => h.request('DELETE', `/api/agents/${randomUUID()}`),
        () =>
          h.request('POST', '/api/mutations', {
            mutations: [{ model: 'Agent', action: 'delete', id: randomUUID() }],
          }),
      ];
      for (const send of requests) {
        const res = await send();
        expect(res.status).toBe(503);
        expect(ErrorBody.parse(await res.json()).error.code).toBe('unavailable');
      }
      // Postgres is shared by every worker: its outage must not empty the load balancer (§8).
      expect((await h.app.request('/readyz')).status).toBe(200);
      expect(await (await h.app.request('/metrics')).text()).toMatch(
        /^sync_dependency_up\{dependency="postgres"[^}]*\} 0$/m,
      );
    } finally {
      await deadPool.end();
      await h.close();
    }
  });

  it('500 internal without details on an unexpected database error, logged with the error', async () => {
    const captured = capturingLogger();
    const h = await createApiHarness({ label: 'api_internal', log: captured.log });
    try {
      await h.db.pool.query('ALTER TABLE payments RENAME TO payments_moved');
      const res = await h.request('POST', '/api/payments', {
        org_id: randomUUID(),
        amount: 1,
        currency: 'USD',
      });
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({ error: { code: 'internal', message: 'Internal error' } });
      expect(text).not.toMatch(/payments|relation|at /);
      const logged = captured.lines.find((l) => l.msg === 'request failed');
      expect(logged).toMatchObject({ level: 50, code: 'internal' });
      expect(JSON.stringify(logged)).toContain('payments');
      await h.db.pool.query('ALTER TABLE payments_moved RENAME TO payments');
      expect((await h.counts()).sync_events).toBe(0);
    } finally {
      await h.close();
    }
  });

  it('/readyz 503 when its own in-process bus is down', async () => {
    const bus = createMemoryBus();
    await bus.close();
    const app = createApiApp({
      pool: shared.db.pool,
      bus,
      auth: testAuth,
      log: pino({ level: 'silent' }),
      registry: createRegistry('api-bus-down', { defaultMetrics: false }),
    });
    const ready = await app.request('/readyz');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ checks: { bus: false } });
  });
});

describe('createApiService', () => {
  it('migrates on start, serves writes, and drains: readiness 503 at once, in-flight requests finish first', async () => {
    const h = await createApiHarness({ label: 'api_service' });
    const config = loadApiConfig({
      DATABASE_URL: h.db.url,
      REDIS_URL: TEST_REDIS_URL,
      SYNC_JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: 'silent',
      PG_POOL_MAX: '4',
    });
    const service = createApiService({ config, log: pino({ level: 'silent' }), bus: createMemoryBus() });
    const locker = await h.db.pool.connect();
    try {
      await service.start();
      const agent = await h.createAgent();
      const call = (method: string, path: string, body?: unknown) =>
        service.fetch(
          new Request(`http://api${path}`, {
            method,
            headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          }),
        );
      expect((await call('GET', '/readyz')).status).toBe(200);

      // Hold the agent's row so the PATCH stays in flight while we drain.
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM agents WHERE id = $1 FOR UPDATE', [agent.id]);
      let patchDone = false;
      const patch = call('PATCH', `/api/agents/${agent.id}`, { name: 'during drain' }).then((res) => {
        patchDone = true;
        return res;
      });
      while (service.inFlight() === 0) await new Promise((r) => setImmediate(r));
      let drained = false;
      const drain = service.drain().then(() => {
        drained = true;
      });
      expect((await call('GET', '/readyz')).status).toBe(503);
      expect(drained).toBe(false);
      expect(patchDone).toBe(false);
      await locker.query('COMMIT');
      expect((await patch).status).toBe(200);
      await drain;
      expect(drained).toBe(true);
    } finally {
      locker.release();
      await service.stop();
      await h.close();
    }
  });
});
