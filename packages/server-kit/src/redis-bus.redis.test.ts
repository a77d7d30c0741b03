import type { SyncEvent } from '@openagents/sync-protocol';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type RedisServer,
  startRedisServer,
  TEST_REDIS_URL,
  uniqueChannelPrefix,
} from '../../../test/support/redis';
import type { BusMessage, BusStatus } from './bus';
import { createRedisBus } from './redis-bus';

const event = (id: number, scope: string): SyncEvent => ({
  id,
  scope,
  model: 'Agent',
  model_id: '00000000-0000-4000-8000-000000000001',
  action: 'insert',
  data: {},
  mutationId: null,
  created_at: new Date().toISOString(),
});

/** Resolves once `check()` holds (checked every 20 ms), or fails the test after `timeout`. */
const waitFor = (check: () => boolean, timeout = 5000) =>
  expect.poll(check, { timeout, interval: 20 }).toBe(true);

describe('redis bus', () => {
  it('delivers to subscribers of the scope only, and stops after the last handler leaves', async () => {
    const prefix = uniqueChannelPrefix();
    const a = createRedisBus({ url: TEST_REDIS_URL, channelPrefix: prefix });
    const b = createRedisBus({ url: TEST_REDIS_URL, channelPrefix: prefix });
    const got: BusMessage[] = [];
    const off = await b.subscribe('org:1', (m) => got.push(m));
    await waitFor(() => a.isHealthy());
    await a.publish({ scope: 'org:1', events: [event(1, 'org:1')] });
    await a.publish({ scope: 'org:2', events: [event(1, 'org:2')] });
    await waitFor(() => got.length === 1);
    expect(got[0]?.events[0]?.id).toBe(1);
    expect(b.activeScopes()).toBe(1);
    await off();
    expect(b.activeScopes()).toBe(0);
    await a.close();
    await b.close();
  });

  describe('when Redis restarts', () => {
    let server: RedisServer;
    beforeAll(async () => {
      server = await startRedisServer();
    });
    afterAll(() => server.stop());

    it('fails publishes fast while down, reports down/up, and resubscribes', async () => {
      const bus = createRedisBus({ url: server.url, publishTimeoutMs: 500 });
      const statuses: BusStatus[] = [];
      bus.onStatus((s) => statuses.push(s));
      const got: BusMessage[] = [];
      await bus.subscribe('agent:1', (m) => got.push(m));
      await waitFor(() => bus.isHealthy());

      await server.stop();
      await waitFor(() => statuses.includes('down'));
      const started = Date.now();
      await expect(bus.publish({ scope: 'agent:1', events: [event(1, 'agent:1')] })).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(2000);

      // When 'up' is reported the channel must already be joined: a catch-up read started then
      // must not leave a window in which a publish is lost. The probe and the listener exist before
      // Redis comes back: the bus can reconnect and report 'up' before restart() has seen PONG.
      const probe = new Redis(server.url, { retryStrategy: () => 10, maxRetriesPerRequest: null });
      probe.on('error', () => {});
      let subscribersAtUp: number | undefined;
      bus.onStatus((s) => {
        if (s !== 'up') return;
        void probe.pubsub('NUMSUB', 'sync:agent:1').then((reply) => {
          subscribersAtUp = Number((reply as [string, number])[1]);
        });
      });
      await server.restart(0);
      await waitFor(() => statuses.includes('up'), 10_000);
      await waitFor(() => subscribersAtUp !== undefined);
      expect(subscribersAtUp).toBe(1);
      probe.disconnect();
      await waitFor(() => bus.isHealthy(), 10_000);
      await bus.publish({ scope: 'agent:1', events: [event(2, 'agent:1')] });
      await waitFor(() => got.some((m) => m.events[0]?.id === 2));
      await bus.close();
    });
  });
});
