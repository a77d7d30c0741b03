import type { Socket } from 'node:net';
import { createMemoryBus } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { tokenFor } from '../../../test/support/tokens';
import {
  newScope,
  pgDeltaSource,
  startGateway,
  TestClient,
  writeEvents,
} from '../test/support/gateway-harness';
import { closeCodeLabel } from './metrics';

// The connection signals an on-call needs and logs alone did not give: disconnects by close code,
// connection lifetime, and the bytes waiting in send buffers.

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('gw_conn_metrics');
});
afterAll(async () => {
  await db?.drop();
});

const sample = (text: string, pattern: string) =>
  Number(new RegExp(`^${pattern}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);

describe('closeCodeLabel', () => {
  it('keeps the known close codes and folds every other one into other', () => {
    expect([1000, 1006, 1012, 1013].map(closeCodeLabel)).toEqual(['1000', '1006', '1012', '1013']);
    expect([4001, 3000, 1, 65535].map(closeCodeLabel)).toEqual(['other', 'other', 'other', 'other']);
  });
});

describe('connection metrics', () => {
  it('counts disconnects by close code, observes lifetimes, and reports send buffers', async () => {
    const bus = createMemoryBus();
    const gw = await startGateway(
      { bus, delta: pgDeltaSource(db.pool) },
      { MAX_BACKPRESSURE_BYTES: 64 * 1024 * 1024, HEAD_CHECK_INTERVAL_MS: 60_000 },
    );
    try {
      const scope = newScope();
      const token = await tokenFor([scope]);
      const metrics = async () => (await fetch(`${gw.url}/metrics`)).text();

      // A client that stops reading: its send buffer grows on the gateway.
      const slow = await TestClient.connect(gw.wsUrl, token);
      slow.subscribe(scope);
      await slow.waitFor((f) => f.type === 'subscribed');
      const raw = (slow.socket as unknown as { _socket: Socket })._socket;
      raw.pause();
      let buffered = 0;
      for (let i = 0; i < 40 && buffered < 512 * 1024; i++) {
        await writeEvents(db.pool, bus, scope, 4, 200 * 1024);
        const text = await metrics();
        buffered = sample(text, 'sync_gateway_send_buffer_bytes\\{stat="sum"[^}]*\\}');
        expect(sample(text, 'sync_gateway_send_buffer_bytes\\{stat="max"[^}]*\\}')).toBe(buffered);
      }
      expect(buffered).toBeGreaterThanOrEqual(512 * 1024);
      raw.resume();
      slow.socket.terminate(); // no close frame: the gateway sees 1006

      const polite = await TestClient.connect(gw.wsUrl, token);
      polite.socket.close(1000);
      const odd = await TestClient.connect(gw.wsUrl, token);
      odd.socket.close(4001);
      await Promise.all([slow.closed, polite.closed, odd.closed]);

      let text = '';
      for (let i = 0; i < 100; i++) {
        text = await metrics();
        if (sample(text, 'sync_gateway_connection_duration_seconds_count') === 3) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(sample(text, 'sync_gateway_disconnects_total\\{code="1006"[^}]*\\}')).toBe(1);
      expect(sample(text, 'sync_gateway_disconnects_total\\{code="1000"[^}]*\\}')).toBe(1);
      expect(sample(text, 'sync_gateway_disconnects_total\\{code="other"[^}]*\\}')).toBe(1);
      expect(sample(text, 'sync_gateway_connection_duration_seconds_count')).toBe(3);
      expect(
        sample(text, 'sync_gateway_connection_duration_seconds_bucket\\{le="1"[^}]*\\}'),
      ).toBeGreaterThanOrEqual(2);
      expect(sample(text, 'sync_gateway_send_buffer_bytes\\{stat="sum"[^}]*\\}')).toBe(0);
      expect(text).toMatch(/^sync_build_info\{version="[^"]+",commit="[^"]+"[^}]*\} 1$/m);
    } finally {
      await gw.stop();
    }
  });
});
