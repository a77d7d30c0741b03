import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { BootstrapFrame, ModelsSnapshot, SyncEvent } from '@openagents/sync-protocol';
import { createMemoryBus, readHead } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { tokenFor } from '../../../test/support/tokens';
import {
  deleteRecord,
  insertRecord,
  scopeTables,
  sortedSnapshot,
  updateRecord,
} from '../../delta/test/writes';
import {
  countingDeltaSource,
  pgDeltaSource,
  range,
  startGateway,
  TestClient,
} from '../test/support/gateway-harness';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('gw_paged');
});
afterAll(async () => {
  await db?.drop();
});

/** Union of bootstrap pages, then events applied the way the client's store applies them. */
function clientState(pages: readonly BootstrapFrame[], events: readonly SyncEvent[]): ModelsSnapshot {
  const byModel = new Map<string, Map<string, Record<string, unknown>>>();
  for (const page of pages) {
    for (const [model, records] of Object.entries(page.models)) {
      const rows = byModel.get(model) ?? new Map();
      for (const r of records) rows.set(String(r.id), r);
      byModel.set(model, rows);
    }
  }
  for (const e of events) {
    const rows = byModel.get(e.model) ?? new Map();
    byModel.set(e.model, rows);
    if (e.action === 'insert') rows.set(e.model_id, { ...e.data });
    else if (e.action === 'delete') rows.delete(e.model_id);
    else if (rows.has(e.model_id)) rows.set(e.model_id, { ...rows.get(e.model_id), ...e.data });
  }
  const out = {
    Agent: [],
    Message: [],
    Payment: [],
    CodeChange: [],
    ReasoningStep: [],
    ToolCall: [],
  } as ModelsSnapshot;
  for (const [model, rows] of byModel) out[model as keyof ModelsSnapshot] = [...rows.values()];
  return sortedSnapshot(out);
}

describe('paged bootstrap over WebSocket', () => {
  it('subscribes to a scope far larger than the send-buffer limit, with writes landing between pages', async () => {
    const bus = createMemoryBus();
    const maxBackpressure = 64 * 1024;
    const counted = countingDeltaSource(pgDeltaSource(db.pool, { bootstrapPageBytes: 16 * 1024 }));
    const gw = await startGateway(
      { bus, delta: counted.source },
      { MAX_BACKPRESSURE_BYTES: maxBackpressure, HEAD_CHECK_INTERVAL_MS: 60_000 },
    );
    try {
      const agent = await insertRecord(db.pool, 'Agent', { org_id: randomUUID(), name: 'big' });
      const agentId = String(agent.record.id);
      const scope = `agent:${agentId}`;
      const ids: string[] = [];
      // About 600 KB of records: ten times the slow-consumer limit, forty pages.
      for (let i = 0; i < 150; i++) {
        const m = await insertRecord(db.pool, 'Message', {
          agent_id: agentId,
          role: 'user',
          content: `${i} ${'w'.repeat(4000)}`,
        });
        ids.push(String(m.record.id));
      }
      const publish = async (written: { scope: string; event: SyncEvent }) => {
        await bus.publish({ scope: written.scope, events: [written.event] });
      };

      const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
      const raw = (client.socket as unknown as { _socket: Socket })._socket;
      raw.pause(); // the client reads nothing for a while: the gateway must wait, not close it
      client.subscribe(scope);
      await vi.waitFor(() => expect(counted.calls.bootstrap).toBeGreaterThan(3), { timeout: 10_000 });
      // Writes land while the pages go out: updates and deletes of records in early and late
      // pages, and inserts.
      for (let i = 0; i < 30; i++) {
        if (i % 3 === 0)
          await publish(await updateRecord(db.pool, 'Message', ids[i]!, { content: `edit ${i}` }));
        else if (i % 3 === 1) await publish(await deleteRecord(db.pool, 'Message', ids[149 - i]!));
        else {
          await publish(
            await insertRecord(db.pool, 'Message', { agent_id: agentId, role: 'tool', content: `new ${i}` }),
          );
        }
      }
      raw.resume();
      await client.waitFor((f) => f.type === 'subscribed', 30_000);
      const head = (await readHead(db.pool, scope)).lastId;
      await client.untilEvent(scope, head, 30_000);

      const pages = client.frames.filter((f): f is BootstrapFrame => f.type === 'bootstrap');
      expect(pages.length).toBeGreaterThan(10);
      expect(pages.slice(0, -1).every((p) => p.more === true)).toBe(true);
      expect(pages.at(-1)!.more).toBeUndefined();
      const lastSyncId = pages[0]!.lastSyncId;
      expect(pages.every((p) => p.lastSyncId === lastSyncId)).toBe(true);
      // Every bootstrap frame comes before the first event, and the events are L+1… with no gap.
      const firstSync = client.frames.findIndex((f) => f.type === 'sync');
      const lastPage = client.frames.lastIndexOf(pages.at(-1)!);
      expect(firstSync === -1 || firstSync > lastPage).toBe(true);
      expect(client.eventIds(scope)).toEqual(range(lastSyncId + 1, head));
      const events = client.frames.flatMap((f) => (f.type === 'sync' ? f.events : []));
      expect(clientState(pages, events)).toEqual(await scopeTables(db.pool, scope));
      expect(client.closeCode).toBeUndefined();

      // Then live: new writes arrive in order, without gaps.
      for (let i = 0; i < 5; i++) {
        await publish(
          await insertRecord(db.pool, 'Message', { agent_id: agentId, role: 'user', content: `live ${i}` }),
        );
      }
      expect(await client.untilEvent(scope, head + 5)).toEqual(range(lastSyncId + 1, head + 5));
      client.close();
    } finally {
      await gw.stop();
    }
  });

  it('waits for the socket to drain a page larger than the kernel buffers before the next', async () => {
    const bus = createMemoryBus();
    const counted = countingDeltaSource(pgDeltaSource(db.pool, { bootstrapPageBytes: 64 * 1024 }));
    const gw = await startGateway(
      { bus, delta: counted.source },
      { MAX_BACKPRESSURE_BYTES: 64 * 1024, HEAD_CHECK_INTERVAL_MS: 60_000 },
    );
    try {
      const agent = await insertRecord(db.pool, 'Agent', { org_id: randomUUID(), name: 'huge' });
      const agentId = String(agent.record.id);
      const scope = `agent:${agentId}`;
      // Two records of 4 MB: each page is one record, far more than a socket's kernel buffer takes
      // at once, so uWS holds the rest until the client has read it. The second page is read only when uWS's drain says so; without the
      // drain wake-up the subscription would wait forever.
      for (let i = 0; i < 2; i++) {
        await insertRecord(db.pool, 'CodeChange', {
          agent_id: agentId,
          path: `big${i}`,
          diff: String(i).repeat(4 << 20),
        });
      }
      const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
      client.subscribe(scope);
      await client.waitFor((f) => f.type === 'subscribed', 60_000);
      const pages = client.frames.filter((f): f is BootstrapFrame => f.type === 'bootstrap');
      // One record per page (the last page may be empty: it ends the models after CodeChange).
      expect(pages.flatMap((p) => p.models.CodeChange ?? []).map((r) => r.path)).toEqual(['big0', 'big1']);
      expect(pages.slice(0, -1).every((p) => p.more === true && p.models.CodeChange?.length === 1)).toBe(
        true,
      );
      expect(pages.at(-1)!.more).toBeUndefined();
      expect(counted.calls.bootstrap).toBe(pages.length);
      expect(client.closeCode).toBeUndefined();
      client.close();
    } finally {
      await gw.stop();
    }
  });
});
