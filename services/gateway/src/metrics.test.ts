import { createRegistry } from '@openagents/sync-server-kit';
import { describe, expect, it } from 'vitest';
import { event, metricValue, silentLog, unitMetrics } from '../test/support/fake-log';
import { fakeSocket } from '../test/support/fake-socket';
import { ConnectionRegistry } from './connection-registry';
import { FrameWriter } from './frame-writer';
import { createGatewayMetrics } from './metrics';
import { SlowConsumerPolicy } from './slow-consumer';
import type { TemplatedApp } from './uws';

const SCOPE = 'agent:7f1c0000-0000-4000-8000-000000000001';

describe('the live tally', () => {
  it('adds its counts to the counters when read: each count once, nothing lost between scrapes', async () => {
    const registry = createRegistry('gateway-unit', { defaultMetrics: false });
    const metrics = createGatewayMetrics(registry);
    metrics.tally.busEvents += 3;
    metrics.tally.syncFrames += 6;
    metrics.tally.syncBytes += 600;
    metrics.tally.syncEvents += 9;
    const text = await registry.metrics();
    expect(text).toMatch(/sync_gateway_bus_events_received_total\{service="gateway-unit"\} 3\n/);
    expect(text).toMatch(/sync_gateway_frames_sent_total\{type="sync",service="gateway-unit"\} 6\n/);
    expect(text).toMatch(/sync_gateway_bytes_sent_total\{service="gateway-unit"\} 600\n/);
    expect(text).toMatch(/sync_gateway_events_delivered_total\{service="gateway-unit"\} 9\n/);
    // Counted since: added on top, and the earlier counts are not added twice.
    metrics.tally.syncEvents += 1;
    expect(await metricValue(metrics.eventsDelivered)).toBe(10);
    expect(await metricValue(metrics.eventsDelivered)).toBe(10);
    expect(await metricValue(metrics.busEventsReceived)).toBe(3);
  });

  it('holds what fan-out delivered: frames, bytes and events once per live socket', async () => {
    const metrics = unitMetrics();
    const connections = new ConnectionRegistry();
    const published: string[] = [];
    const app = {
      publish: (_topic: string, message: string) => {
        published.push(message);
        return true;
      },
    } as unknown as TemplatedApp;
    const writer = new FrameWriter({
      app,
      connections,
      metrics,
      slowConsumers: new SlowConsumerPolicy({
        connections,
        metrics,
        log: silentLog,
        maxBackpressureBytes: 1 << 20,
      }),
      failed: () => {},
    });
    for (let i = 0; i < 3; i++) {
      const socket = fakeSocket();
      connections.opened(socket.ws);
      connections.joinTopic(socket.ws, SCOPE);
    }
    writer.fanOut(SCOPE, [event(1, SCOPE), event(2, SCOPE)]);
    writer.fanOut(SCOPE, [event(3, SCOPE)]);
    const bytes = published.reduce((n, p) => n + Buffer.byteLength(p), 0);
    expect(await metricValue(metrics.framesSent, { type: 'sync' })).toBe(6);
    expect(await metricValue(metrics.eventsDelivered)).toBe(9);
    expect(await metricValue(metrics.bytesSent)).toBe(bytes * 3);
  });
});
