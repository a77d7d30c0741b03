import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { tokenFor } from '../../../test/support/tokens';
import { startTestStandalone } from '../test/test-server';

/**
 * The standalone server is the api, delta and gateway services built by their own factories:
 * draining it drains every one of them (not only the gateway), and they read the same variables
 * as the services they are.
 */
describe('standalone drain', () => {
  let server: Awaited<ReturnType<typeof startTestStandalone>>['server'];
  let close: () => Promise<void> = async () => {};

  beforeAll(async () => {
    ({ server, close } = await startTestStandalone('sa_drain', {
      DRAIN_WINDOW_MS: '200',
      PG_POOL_MAX: '3',
      MAX_FRAME_BYTES: '2048',
    }));
  });
  afterAll(() => close());

  it("configures each part with the services' own variables", async () => {
    const { gateway } = server.parts();
    // MAX_FRAME_BYTES reaches the gateway: a bigger frame closes the socket with 1009.
    const ws = new WebSocket(`${server.info().wsUrl}?token=${await tokenFor(['org:*'])}`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const closed = new Promise<number>((resolve) => ws.once('close', resolve));
    ws.send(JSON.stringify({ type: 'subscribe', scope: 'org:x', pad: 'p'.repeat(4096) }));
    expect(await closed).toBe(1009);
    expect(gateway.gateway.draining).toBe(false);
    // PG_POOL_MAX sizes the shared write pool, reported as the pool of the process.
    const metrics = await (await fetch(`${server.info().url}/metrics`)).text();
    expect(metrics).toMatch(/sync_pg_pool_connections\{state="max"[^}]*\} 3/);
  });

  it('drains the api, the delta service and the gateway', async () => {
    const { api, delta, gateway } = server.parts();
    for (const app of [api.app, delta.app]) expect((await app.request('/readyz')).status).toBe(200);
    await server.drain();
    expect(gateway.gateway.draining).toBe(true);
    expect((await api.app.request('/readyz')).status).toBe(503);
    expect((await delta.app.request('/readyz')).status).toBe(503);
  });
});
