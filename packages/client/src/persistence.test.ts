import 'fake-indexeddb/auto';
import type { ClientFrame } from '@openagents/sync-protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WebSocketLike } from './connection';
import { createIndexedDbStorage, createMemoryStorage, type SyncStorage } from './storage';
import { createSyncClient, type SyncClient } from './sync-client';

const ORG = '00000000-0000-4000-8000-0000000000aa';
const SCOPE = `org:${ORG}`;
const A1 = '10000000-0000-4000-8000-000000000001';
const A2 = '10000000-0000-4000-8000-000000000002';
const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [] };
const agent = (id: string, name: string) => ({
  id,
  org_id: ORG,
  name,
  status: 'idle',
  created_at: 't',
  updated_at: 't',
});

/** Records what the client subscribes with; the server side is not needed here. */
class RecordingSocket implements WebSocketLike {
  static last: RecordingSocket | undefined;
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  sent: ClientFrame[] = [];
  constructor(readonly url: string) {
    RecordingSocket.last = this;
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
}

const clients: SyncClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  RecordingSocket.last = undefined;
});

function makeClient(storage: SyncStorage, fetch: typeof globalThis.fetch) {
  const client = createSyncClient({
    url: 'http://sync.test',
    token: 't',
    WebSocket: RecordingSocket,
    fetch,
    storage,
    persistThrottleMs: 5,
  });
  clients.push(client);
  return client;
}

const never = (() => new Promise<Response>(() => {})) as unknown as typeof globalThis.fetch;

async function firstSession(storage: SyncStorage) {
  const client = makeClient(storage, never);
  await client.ready;
  client.subscribeScope(SCOPE);
  client.receiveFrame(
    JSON.stringify({
      type: 'bootstrap',
      scope: SCOPE,
      models: { ...empty, Agent: [agent(A1, 'one')] },
      lastSyncId: 4,
    }),
  );
  client.receiveFrame(
    JSON.stringify({
      type: 'sync',
      scope: SCOPE,
      latestSyncId: 5,
      events: [
        {
          id: 5,
          scope: SCOPE,
          model: 'Agent',
          model_id: A1,
          action: 'update',
          data: { name: 'uno' },
          mutationId: null,
          created_at: 't',
        },
      ],
    }),
  );
  const write = client.insert('Agent', { id: A2, org_id: ORG, name: 'offline' }, { mutationId: 'keep-me' });
  write.catch(() => {});
  await client.close(); // flushes what storage still owes
}

describe.each([
  ['IndexedDB (fake-indexeddb)', () => createIndexedDbStorage(`test-${Math.random()}`)],
  ['memory', () => createMemoryStorage()],
])('persistence: %s', (_name, makeStorage) => {
  it('a reload resumes from the stored cursor with records and pending mutations restored', async () => {
    const storage = makeStorage();
    await firstSession(storage);

    const sent: RequestInit[] = [];
    const fetch = vi.fn(async (_url: unknown, init?: RequestInit) => {
      sent.push(init!);
      return new Response(JSON.stringify({ data: {}, scope: SCOPE, syncId: 6 }), { status: 201 });
    }) as unknown as typeof globalThis.fetch;
    const client = makeClient(storage, fetch);
    await client.ready;
    const state = client.getState();
    expect(state.records.Agent[A1]?.name).toBe('uno');
    expect(state.records.Agent[A2]?.name).toBe('offline'); // the pending insert, still applied
    expect(state.scopes[SCOPE]).toEqual({ status: 'pending', lastSyncId: 5 });
    // The restored write is sent again under its original key (the server dedupes if it landed).
    await vi.waitFor(() => expect(sent).toHaveLength(1));
    expect((sent[0]!.headers as Record<string, string>)['idempotency-key']).toBe('keep-me');

    client.subscribeScope(SCOPE);
    await vi.waitFor(() => expect(RecordingSocket.last).toBeDefined());
    RecordingSocket.last!.open();
    expect(RecordingSocket.last!.sent).toEqual([{ type: 'subscribe', scope: SCOPE, lastSyncId: 5 }]);
  });

  it('a scope followed before storage is read still resumes from its stored cursor', async () => {
    const storage = makeStorage();
    await firstSession(storage);
    const client = makeClient(storage, never);
    client.subscribeScope(SCOPE); // before `ready`
    await client.ready;
    expect(client.getState().scopes[SCOPE]?.lastSyncId).toBe(5);
    await vi.waitFor(() => expect(RecordingSocket.last).toBeDefined());
    RecordingSocket.last!.open();
    expect(RecordingSocket.last!.sent).toEqual([{ type: 'subscribe', scope: SCOPE, lastSyncId: 5 }]);
  });

  it('sends restored writes before writes made while storage was being read', async () => {
    const storage = makeStorage();
    await firstSession(storage);
    const keys: string[] = [];
    const fetch = vi.fn(async (_url: unknown, init?: RequestInit) => {
      keys.push((init!.headers as Record<string, string>)['idempotency-key']!);
      return new Response(JSON.stringify({ data: {}, scope: SCOPE, syncId: 9 }), { status: 200 });
    }) as unknown as typeof globalThis.fetch;
    const client = makeClient(storage, fetch);
    const early = client.update('Agent', A2, { name: 'renamed' }, { mutationId: 'early' });
    await client.ready;
    await early;
    expect(keys).toEqual(['keep-me', 'early']);
  });

  it('a restored batch goes out as one batch again', async () => {
    const storage = makeStorage();
    const first = makeClient(storage, never);
    await first.ready;
    first
      .mutateBatch([
        { model: 'Agent', action: 'insert', id: A1, data: { org_id: ORG, name: 'a' }, mutationId: 'b1' },
        { model: 'Agent', action: 'insert', id: A2, data: { org_id: ORG, name: 'b' }, mutationId: 'b2' },
      ])
      .catch(() => {});
    first.insert('Agent', { org_id: ORG, name: 'alone' }, { mutationId: 's1' }).catch(() => {});
    await first.close();
    const requests: string[] = [];
    const fetch = vi.fn(async (url: unknown, init?: RequestInit) => {
      const body = JSON.parse(String(init!.body));
      requests.push(
        body.mutations
          ? `batch ${body.mutations.map((m: { mutationId: string }) => m.mutationId)}`
          : String(url),
      );
      const result = { data: {}, scope: SCOPE, syncId: 1 };
      return new Response(JSON.stringify(body.mutations ? { results: [result, result] } : result), {
        status: 200,
      });
    }) as unknown as typeof globalThis.fetch;
    const second = makeClient(storage, fetch);
    await second.ready;
    await vi.waitFor(() => expect(second.getState().pending).toEqual([]));
    expect(requests).toEqual(['batch b1,b2', 'http://sync.test/api/agents']);
  });

  it('forgets an unfollowed scope in storage too', async () => {
    const storage = makeStorage();
    const client = makeClient(storage, never);
    await client.ready;
    const unfollow = client.subscribeScope(SCOPE);
    client.receiveFrame(JSON.stringify({ type: 'bootstrap', scope: SCOPE, models: empty, lastSyncId: 2 }));
    unfollow();
    await new Promise((r) => setTimeout(r, 10));
    await client.close();
    const again = makeClient(storage, never);
    await again.ready;
    expect(again.getState().scopes).toEqual({});
  });

  it('ignores garbage in storage', async () => {
    const storage = makeStorage();
    await storage.set('v1:scopes', ['org:x', 42, SCOPE]);
    await storage.set('v1:scope:org:x', 'nonsense');
    await storage.set(`v1:scope:${SCOPE}`, { lastSyncId: 3, models: { Agent: [agent(A1, 'kept')] } });
    await storage.set('v1:pending', [{ nope: true }, null, 7]);
    const client = makeClient(storage, never);
    await client.ready;
    expect(client.getState().records.Agent[A1]?.name).toBe('kept');
    expect(client.getState().pending).toEqual([]);
    expect(Object.keys(client.getState().scopes)).toEqual([SCOPE]);
  });
});

describe('persistence: throttling', () => {
  it('writes a busy scope at most once per throttle window', async () => {
    const base = createMemoryStorage();
    const writes: string[] = [];
    const storage: SyncStorage = {
      ...base,
      set: (k, v) => {
        writes.push(k);
        return base.set(k, v);
      },
    };
    const client = createSyncClient({
      url: 'http://sync.test',
      storage,
      autoConnect: false,
      persistThrottleMs: 60_000,
    });
    clients.push(client);
    await client.ready;
    client.subscribeScope(SCOPE);
    client.receiveFrame(JSON.stringify({ type: 'bootstrap', scope: SCOPE, models: empty, lastSyncId: 0 }));
    for (let i = 1; i <= 50; i++) {
      client.receiveFrame(
        JSON.stringify({
          type: 'sync',
          scope: SCOPE,
          latestSyncId: i,
          events: [
            {
              id: i,
              scope: SCOPE,
              model: 'Agent',
              model_id: A1,
              action: i === 1 ? 'insert' : 'update',
              data: i === 1 ? agent(A1, 'n1') : { name: `n${i}` },
              mutationId: null,
              created_at: 't',
            },
          ],
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 20));
    expect(writes.filter((k) => k.startsWith('v1:scope:'))).toEqual([]);
    await client.close();
    expect(writes.filter((k) => k.startsWith('v1:scope:'))).toEqual([`v1:scope:${SCOPE}`]);
    expect(await base.get(`v1:scope:${SCOPE}`)).toMatchObject({ lastSyncId: 50 });
  });
});
