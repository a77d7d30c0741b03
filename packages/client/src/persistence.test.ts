import 'fake-indexeddb/auto';
import type { ClientFrame } from '@openagents/sync-protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WebSocketLike } from './connection';
import type { LockManagerLike } from './persistence';
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
  vi.useRealTimers();
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
  it('a write made before storage was read survives a tab closed before it was', async () => {
    const storage = makeStorage();
    // The first tab's storage answers no read: the tab closes while it is still hydrating.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow: SyncStorage = {
      get: async (key) => {
        await gate;
        return storage.get(key);
      },
      set: (key, value) => storage.set(key, value),
      del: (key) => storage.del(key),
      ...(storage.update ? { update: storage.update.bind(storage) } : {}),
    };
    try {
      const first = makeClient(slow, never);
      const write = first.insert(
        'Agent',
        { id: A2, org_id: ORG, name: 'early' },
        { mutationId: 'before-ready' },
      );
      write.catch(() => {});
      expect(first.getState().records.get('Agent', A2)?.name).toBe('early');
      // What the closing tab left is what the next one finds: the write, adopted and sent again.
      await vi.waitFor(async () => {
        const next = makeClient(storage, never);
        await next.ready;
        expect(next.getState().pending.map((p) => p.mutationId)).toEqual(['before-ready']);
        expect(next.getState().records.get('Agent', A2)?.name).toBe('early');
      });
    } finally {
      release();
    }
  });

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
    expect(state.records.get('Agent', A1)?.name).toBe('uno');
    expect(state.records.get('Agent', A2)?.name).toBe('offline'); // the pending insert, still applied
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
    // Unfollowing is deferred a tick (a remount keeps the scope): wait until it has happened.
    await vi.waitFor(() => expect(client.getState().scopes).toEqual({}));
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
    expect(client.getState().records.get('Agent', A1)?.name).toBe('kept');
    expect(client.getState().pending).toEqual([]);
    expect(Object.keys(client.getState().scopes)).toEqual([SCOPE]);
  });
});

describe('persistence: throttling', () => {
  it('writes a busy scope at most once per throttle window', async () => {
    vi.useFakeTimers();
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
    // 50 changes, one write, at the end of the window; the next window starts with nothing owed.
    await vi.advanceTimersByTimeAsync(59_999);
    expect(writes.filter((k) => k.startsWith('v1:scope:'))).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(writes.filter((k) => k.startsWith('v1:scope:'))).toEqual([`v1:scope:${SCOPE}`]);
    expect(await base.get(`v1:scope:${SCOPE}`)).toMatchObject({ lastSyncId: 50 });
    await vi.advanceTimersByTimeAsync(600_000);
    await client.close();
    expect(writes.filter((k) => k.startsWith('v1:scope:'))).toEqual([`v1:scope:${SCOPE}`]);
  });
});

/**
 * The Web Locks semantics the client relies on (exclusive, named, `ifAvailable`), in memory: Node
 * 20 has no `navigator.locks`. Real Chromium runs the real one in test/console.browser.test.ts.
 */
function createLocks() {
  const held = new Set<string>();
  const waiting = new Map<string, (() => void)[]>();
  const acquire = (name: string) =>
    new Promise<void>((resolve) => {
      if (!held.has(name)) {
        held.add(name);
        resolve();
      } else waiting.set(name, [...(waiting.get(name) ?? []), resolve]);
    });
  const release = (name: string) => {
    const next = waiting.get(name)?.shift();
    if (next) next();
    else held.delete(name);
  };
  const request = async (
    name: string,
    ...rest: [(lock: unknown) => unknown] | [{ ifAvailable?: boolean }, (lock: unknown) => unknown]
  ) => {
    const [options, callback] = rest.length === 1 ? [{}, rest[0]] : rest;
    if (options.ifAvailable && held.has(name)) return callback(null);
    await acquire(name);
    try {
      return await callback({ name });
    } finally {
      release(name);
    }
  };
  return { held, locks: { request } as unknown as LockManagerLike };
}

describe('persistence: tabs sharing one storage', () => {
  const tab = (storage: SyncStorage, locks: LockManagerLike | null, fetch = never) => {
    const client = createSyncClient({
      url: 'http://sync.test',
      token: 't',
      WebSocket: RecordingSocket,
      fetch,
      storage,
      locks,
      persistThrottleMs: 5,
    });
    clients.push(client);
    return client;
  };
  const insert = (client: SyncClient, id: string, mutationId: string) => {
    client.insert('Agent', { id, org_id: ORG, name: mutationId }, { mutationId }).catch(() => {});
  };
  const pendingIds = (client: SyncClient) =>
    client
      .getState()
      .pending.map((p) => p.mutationId)
      .sort();

  it.each([
    ['IndexedDB (fake-indexeddb)', () => createIndexedDbStorage(`tabs-${Math.random()}`)],
    ['memory', () => createMemoryStorage()],
  ])(
    '%s: one tab never overwrites another’s unsent writes, and a closed tab’s are adopted once',
    async (_n, make) => {
      const storage = make();
      const { locks } = createLocks();
      const a = tab(storage, locks);
      const b = tab(storage, locks);
      await Promise.all([a.ready, b.ready]);
      insert(a, A1, 'from-a');
      insert(b, A2, 'from-b'); // written after A's: with one shared key it would replace A's list
      await vi.waitFor(async () => expect(await storage.get('v1:pending-owners')).toHaveLength(2));

      await a.close(); // tab A goes away with its write unsent
      const c = tab(storage, locks); // a new tab while B is still open
      await c.ready;
      expect(pendingIds(c)).toEqual(['from-a']); // A's, not B's: B is alive and sends its own
      const d = tab(storage, locks);
      await d.ready;
      expect(pendingIds(d)).toEqual([]); // adopted once: C owns it now

      await b.close();
      await c.close();
      const e = tab(storage, locks);
      await e.ready;
      expect(pendingIds(e)).toEqual(['from-a', 'from-b']);
    },
  );

  it('without Web Locks adopts every other instance’s writes, once, under the same keys', async () => {
    const storage = createMemoryStorage();
    const a = tab(storage, null);
    await a.ready;
    insert(a, A1, 'from-a');
    await vi.waitFor(async () => expect(await storage.get('v1:pending-owners')).toHaveLength(1));
    const b = tab(storage, null);
    await b.ready;
    expect(pendingIds(b)).toEqual(['from-a']);
    const c = tab(storage, null);
    await c.ready;
    expect(pendingIds(c)).toEqual(['from-a']); // b wrote it under its own key before a's went
  });

  it('adopts writes left under the shared key of earlier versions, and cleans up after itself', async () => {
    const storage = createMemoryStorage();
    const { locks, held } = createLocks();
    await storage.set('v1:pending', [
      {
        mutationId: 'legacy',
        model: 'Agent',
        action: 'insert',
        id: A1,
        data: { org_id: ORG, name: 'old' },
        status: 'sent',
        createdAt: 't',
        attempts: 0,
      },
    ]);
    const sent: string[] = [];
    const fetch = vi.fn(async (_url: unknown, init?: RequestInit) => {
      sent.push((init!.headers as Record<string, string>)['idempotency-key']!);
      return new Response(JSON.stringify({ data: {}, scope: SCOPE, syncId: 1 }), { status: 201 });
    }) as unknown as typeof globalThis.fetch;
    const client = tab(storage, locks, fetch);
    await client.ready;
    expect(pendingIds(client)).toEqual(['legacy']);
    expect(await storage.get('v1:pending')).toBeUndefined();
    await vi.waitFor(() => expect(sent).toEqual(['legacy']));
    expect(held.size).toBe(1); // its own lock, while it runs

    // Confirmed by the log: nothing pending, so closing removes its key and lets go of the lock.
    client.subscribeScope(SCOPE);
    client.receiveFrame(
      JSON.stringify({
        type: 'bootstrap',
        scope: SCOPE,
        models: { ...empty, Agent: [agent(A1, 'old')] },
        lastSyncId: 1,
      }),
    );
    await vi.waitFor(() => expect(pendingIds(client)).toEqual([]));
    await client.close();
    expect(held.size).toBe(0);
    expect(await storage.get('v1:pending-owners')).toEqual([]);
    expect([...storage.data.keys()].filter((k) => k.startsWith('v1:pending:'))).toEqual([]);
  });
});
