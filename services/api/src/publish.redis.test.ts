import { randomUUID } from 'node:crypto';
import { SyncEvent, WriteResult } from '@openagents/sync-protocol';
import { type Bus, type BusMessage, createMemoryBus, createRedisBus } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, TEST_REDIS_URL, uniqueChannelPrefix } from '../../../test/support/redis';
import { type ApiHarness, createApiHarness } from '../test/api-harness';

/** Resolves with the first `count` messages a handler receives on `scope`. */
async function collect(
  bus: Bus,
  scope: string,
  count: number,
): Promise<{ done: Promise<BusMessage[]>; stop: () => Promise<void> }> {
  const received: BusMessage[] = [];
  let resolve!: (messages: BusMessage[]) => void;
  const done = new Promise<BusMessage[]>((r) => {
    resolve = r;
  });
  const stop = await bus.subscribe(scope, (message) => {
    received.push(message);
    if (received.length === count) resolve(received);
  });
  return { done, stop };
}

function withTimeout<T>(promise: Promise<T>, ms = 5000): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timed out')), ms)),
  ]);
}

describe('with a real Redis bus', () => {
  const prefix = uniqueChannelPrefix();
  let h: ApiHarness;
  let subscriber: Bus;
  beforeAll(async () => {
    h = await createApiHarness({
      label: 'api_publish',
      bus: createRedisBus({ url: TEST_REDIS_URL, channelPrefix: prefix }),
    });
    subscriber = createRedisBus({ url: TEST_REDIS_URL, channelPrefix: prefix });
  });
  afterAll(async () => {
    await subscriber?.close();
    await h?.close();
  });

  it('publishes each committed write to its scope channel after commit', async () => {
    const org = randomUUID();
    const orgScope = `org:${org}`;
    const { done, stop } = await collect(subscriber, orgScope, 2);
    const created = WriteResult.parse(
      await (await h.request('POST', '/api/agents', { org_id: org, name: 'pub' })).json(),
    );
    await h.request('PATCH', `/api/agents/${created.data.id}`, { status: 'running' });
    const messages = await withTimeout(done);
    await stop();
    expect(messages.map((m) => m.scope)).toEqual([orgScope, orgScope]);
    const events = messages.flatMap((m) => m.events.map((e) => SyncEvent.parse(e)));
    expect(events.map((e) => [e.id, e.action])).toEqual([
      [1, 'insert'],
      [2, 'update'],
    ]);
    expect(events[0]!.data).toEqual(created.data);
    expect(events[1]!.data).toEqual({ status: 'running', updated_at: expect.any(String) });
  });

  it('publishes one message per scope for a batch, carrying the mutationIds', async () => {
    const org = randomUUID();
    const agentId = randomUUID();
    const orgSub = await collect(subscriber, `org:${org}`, 1);
    const agentSub = await collect(subscriber, `agent:${agentId}`, 1);
    const res = await h.request('POST', '/api/mutations', {
      mutations: [
        {
          mutationId: 'm-agent',
          model: 'Agent',
          action: 'insert',
          data: { id: agentId, org_id: org, name: 'x' },
        },
        {
          mutationId: 'm-msg1',
          model: 'Message',
          action: 'insert',
          data: { agent_id: agentId, role: 'user', content: '1' },
        },
        { model: 'Message', action: 'insert', data: { agent_id: agentId, role: 'user', content: '2' } },
      ],
    });
    expect(res.status).toBe(200);
    const [orgMessages, agentMessages] = await withTimeout(Promise.all([orgSub.done, agentSub.done]));
    await Promise.all([orgSub.stop(), agentSub.stop()]);
    expect(orgMessages[0]!.events.map((e) => e.mutationId)).toEqual(['m-agent']);
    expect(agentMessages[0]!.events.map((e) => [e.id, e.mutationId])).toEqual([
      [1, 'm-msg1'],
      [2, null],
    ]);
  });
});

describe('publish order', () => {
  it('publishes only after COMMIT: the published events are already readable by another connection', async () => {
    const memory = createMemoryBus();
    const seen: { scope: string; ids: number[]; visible: number[] }[] = [];
    let h!: ApiHarness;
    const probe: Bus = {
      ...memory,
      kind: 'memory',
      async publish(message) {
        const { rows } = await h.db.pool.query<{ id: number }>(
          'SELECT id FROM sync_events WHERE scope = $1 AND id = ANY($2::bigint[]) ORDER BY id',
          [message.scope, message.events.map((e) => e.id)],
        );
        seen.push({
          scope: message.scope,
          ids: message.events.map((e) => e.id),
          visible: rows.map((r) => r.id),
        });
      },
    };
    h = await createApiHarness({ label: 'api_pub_order', bus: probe });
    try {
      const agent = await h.createAgent();
      await h.createMessage(agent.id);
      await h.request('POST', '/api/mutations', {
        mutations: [
          { model: 'Message', action: 'insert', data: { agent_id: agent.id, role: 'user', content: 'a' } },
          { model: 'Agent', action: 'update', id: agent.id, data: { name: 'b' } },
        ],
      });
      expect(seen).toHaveLength(4);
      for (const s of seen) expect(s.visible).toEqual(s.ids);
    } finally {
      await h.close();
    }
  });
});

describe('when the bus cannot publish', () => {
  it('still answers 2xx with the event in the log when publish rejects, and counts the failure', async () => {
    const memory = createMemoryBus();
    const down: Bus = {
      ...memory,
      kind: 'memory',
      publish: async () => Promise.reject(new Error('bus down')),
    };
    const h = await createApiHarness({ label: 'api_pub_reject', bus: down });
    try {
      const org = randomUUID();
      const res = await h.request('POST', '/api/agents', { org_id: org, name: 'x' });
      expect(res.status).toBe(201);
      expect(await h.events(`org:${org}`)).toHaveLength(1);
      expect(await h.metric('sync_bus_publish_failures_total')).toBe(1);
    } finally {
      await h.close();
    }
  });

  it('still answers 2xx with a Redis bus whose server is stopped', async () => {
    const redis = await startRedisServer();
    const bus = createRedisBus({ url: redis.url, channelPrefix: uniqueChannelPrefix() });
    const h = await createApiHarness({ label: 'api_pub_stopped', bus });
    try {
      const org = randomUUID();
      expect((await h.request('POST', '/api/agents', { org_id: org, name: 'before' })).status).toBe(201);
      await redis.stop();
      const before = await h.metric('sync_bus_publish_failures_total');
      const res = await h.request('POST', '/api/agents', { org_id: org, name: 'during' });
      expect(res.status).toBe(201);
      expect(((await res.json()) as WriteResult).syncId).toBe(2);
      expect((await h.events(`org:${org}`)).map((e) => e.id)).toEqual([1, 2]);
      expect(await h.metric('sync_bus_publish_failures_total')).toBe(before + 1);
      // Redis is shared: reported by the metric, not by readiness (contract §8).
      expect((await h.app.request('/readyz')).status).toBe(200);
      expect(await h.metric('sync_dependency_up{dependency="redis"')).toBe(0);
    } finally {
      await h.close();
      await redis.stop();
    }
  });
});
