import { createDeltaApp } from '@openagents/sync-delta-service';
import type { DeltaSource } from '@openagents/sync-server-kit';
import { createMemoryBus, createRegistry } from '@openagents/sync-server-kit';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { tokenFor } from '../../../test/support/tokens';
import {
  auth,
  newScope,
  pgDeltaSource,
  quietLog,
  range,
  startGateway,
  TestClient,
  writeEvents,
} from '../test/support/gateway-harness';
import { createHttpDeltaSource } from './http-delta-source';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('gw_http');
});
afterAll(async () => {
  await db?.drop();
});

describe('one port: ops, bridged HTTP and /sync', () => {
  it('serves /healthz, /readyz with named checks, /metrics with the gateway metrics, and 404/426', async () => {
    const gw = await startGateway({ bus: createMemoryBus(), delta: pgDeltaSource(db.pool) });
    try {
      expect(await (await fetch(`${gw.url}/healthz`)).json()).toEqual({ status: 'ok' });
      // Ready once the first head check has reached the delta source (it runs right after listen;
      // on a loaded machine the first /readyz can arrive before it answered).
      await expect
        .poll(async () => (await fetch(`${gw.url}/readyz`)).status, { timeout: 5_000, interval: 100 })
        .toBe(200);
      const ready = await fetch(`${gw.url}/readyz`);
      expect(await ready.json()).toEqual({
        status: 'ready',
        draining: false,
        checks: { bus: true },
      });
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      for (const name of [
        'sync_gateway_connections',
        'sync_gateway_subscriptions',
        'sync_gateway_active_scopes',
        'sync_gateway_bus_events_received_total',
        'sync_gateway_events_delivered_total',
        'sync_gateway_frames_sent_total',
        'sync_gateway_bytes_sent_total',
        'sync_gateway_fanout_latency_seconds',
        'sync_gateway_gap_fills_total',
        'sync_gateway_duplicates_dropped_total',
        'sync_gateway_resumes_total',
        'sync_gateway_slow_consumer_closes_total',
        'sync_gateway_bus_reconnects_total',
        'sync_gateway_bus_up',
        'sync_gateway_delta_requests_total',
        'sync_gateway_frames_received_total',
        'sync_gateway_frame_errors_total',
        'sync_gateway_upgrades_total',
        'sync_gateway_handler_errors_total',
        'sync_gateway_bus_messages_dropped_total',
        'sync_gateway_token_refreshes_total',
      ]) {
        expect(metrics).toContain(`# TYPE ${name} `);
      }
      expect((await fetch(`${gw.url}/api/agents`)).status).toBe(404);
      expect((await fetch(`${gw.url}/sync`)).status).toBe(426);
    } finally {
      await gw.stop();
    }
  });

  it('stays ready while the delta source fails, and reports it in sync_dependency_up', async () => {
    const failing: DeltaSource = {
      bootstrap: () => Promise.reject(new Error('down')),
      delta: () => Promise.reject(new Error('down')),
      heads: () => Promise.reject(new Error('down')),
    };
    const gw = await startGateway({ bus: createMemoryBus(), delta: failing });
    try {
      const res = await fetch(`${gw.url}/readyz`);
      expect(res.status).toBe(200);
      expect(await (await fetch(`${gw.url}/metrics`)).text()).toMatch(
        /^sync_dependency_up\{dependency="delta"[^}]*\} 0$/m,
      );
    } finally {
      await gw.stop();
    }
  });

  it('bridges other HTTP to a fetch handler, so the delta service and /sync share the port', async () => {
    // The standalone arrangement: the delta app served through the gateway's port, and the
    // gateway reading the log over HTTP from that same port with its own service token.
    const deltaApp = createDeltaApp({
      reader: pgDeltaSource(db.pool),
      auth,
      log: quietLog,
      registry: createRegistry('delta-test', { defaultMetrics: false }),
    });
    const extra = new Hono().post('/api/echo', async (c) => c.json(await c.req.json(), 201));
    let remote: DeltaSource | undefined;
    const lazy: DeltaSource = {
      bootstrap: (s) => remote!.bootstrap(s),
      delta: (s, id, limit) => remote!.delta(s, id, limit),
      heads: (scopes) => (remote ? remote.heads(scopes) : Promise.resolve(new Map())),
    };
    const bus = createMemoryBus();
    const gw = await startGateway({
      bus,
      delta: lazy,
      http: (req) =>
        new URL(req.url).pathname.startsWith('/sync/') ? deltaApp.fetch(req) : extra.fetch(req),
    });
    try {
      const serviceToken = await auth.sign({ sub: 'service:gateway', scopes: ['*'] });
      remote = createHttpDeltaSource({ baseUrl: gw.url, token: serviceToken });
      const echo = await fetch(`${gw.url}/api/echo`, {
        method: 'POST',
        body: JSON.stringify({ hello: 'world' }),
        headers: { authorization: `Bearer ${serviceToken}` },
      });
      expect(echo.status).toBe(201);
      expect(await echo.json()).toEqual({ hello: 'world' });

      const scope = newScope('org');
      await writeEvents(db.pool, bus, scope, 5);
      const unauth = await fetch(`${gw.url}/sync/delta?scope=${scope}&lastSyncId=0`);
      expect(unauth.status).toBe(401);

      const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
      client.subscribe(scope, 2);
      await client.waitFor((f) => f.type === 'subscribed');
      const boot = new TestClient(`${gw.wsUrl}?token=${await tokenFor([scope])}`);
      await boot.opened;
      boot.subscribe(scope);
      expect(await boot.waitFor((f) => f.type === 'bootstrap')).toMatchObject({ lastSyncId: 5 });
      await writeEvents(db.pool, bus, scope, 2);
      expect(await client.untilEvent(scope, 7)).toEqual(range(3, 7));
      expect(await boot.untilEvent(scope, 7)).toEqual([6, 7]);
      client.close();
      boot.close();
    } finally {
      await gw.stop();
    }
  });
});
