import { randomUUID } from 'node:crypto';
import type { BootstrapFrame, ServerFrame } from '@openagents/sync-protocol';
import { createMemoryBus, createRegistry } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { insertRecord } from '../../delta/test/writes';
import { countingDeltaSource, pgDeltaSource, quietLog } from '../test/support/gateway-harness';
import { createLogReads } from './log-reads';
import { createGatewayMetrics } from './metrics';
import { ScopeRegistry } from './scope-registry';
import { type SubscriberChannel, Subscription } from './subscription';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('gw_sub_pages');
});
afterAll(async () => {
  await db?.drop();
});

describe('Subscription, paged bootstrap', () => {
  it('reads the next page only once the connection is writable again', async () => {
    const agent = await insertRecord(db.pool, 'Agent', { org_id: randomUUID(), name: 'a' });
    const agentId = String(agent.record.id);
    const scope = `agent:${agentId}`;
    for (let i = 0; i < 6; i++) {
      await insertRecord(db.pool, 'Message', { agent_id: agentId, role: 'user', content: 'p'.repeat(3000) });
    }
    const { source, calls } = countingDeltaSource(pgDeltaSource(db.pool, { bootstrapPageBytes: 4000 }));
    const metrics = createGatewayMetrics(createRegistry('gateway-test', { defaultMetrics: false }));
    const reads = createLogReads(source, { metrics });
    const streams = new ScopeRegistry({
      bus: createMemoryBus(),
      reads,
      metrics,
      log: quietLog,
      holdMs: 50,
      fanOut: () => {},
    });
    // The socket side: frames recorded, and `writable` answered only when the test says so.
    const frames: ServerFrame[] = [];
    const waiting: (() => void)[] = [];
    const channel: SubscriberChannel = {
      send: (frame) => {
        frames.push(frame);
        return true;
      },
      writable: () => new Promise((resolve) => waiting.push(resolve)),
      joinTopic: () => {},
      leaveTopic: () => {},
    };
    const subscription = new Subscription(scope, channel, { streams, reads, metrics, log: quietLog });
    const flow = subscription.start(undefined);

    const pages = () => frames.filter((f): f is BootstrapFrame => f.type === 'bootstrap');
    for (let page = 1; page <= 5; page++) {
      // A page is sent, then the flow waits: no further read while the buffer is "full".
      await vi.waitFor(() => expect(waiting).toHaveLength(1));
      expect(pages()).toHaveLength(page);
      expect(calls.bootstrap).toBe(page);
      expect(pages().at(-1)!.more).toBe(true);
      waiting.shift()!();
    }
    await flow;
    expect(pages()).toHaveLength(6);
    expect(pages().at(-1)!.more).toBeUndefined();
    expect(waiting).toHaveLength(0);
    expect(pages().flatMap((p) => p.models.Message ?? [])).toHaveLength(6);
    expect(frames.at(-1)).toMatchObject({ type: 'subscribed', scope, lastSyncId: pages()[0]!.lastSyncId });
    subscription.close();
  });
});
