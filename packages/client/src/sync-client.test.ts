import type { ClientFrame } from '@openagents/sync-protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WebSocketLike } from './connection';
import { MutationError } from './errors';
import { createSyncClient, type SyncClient, type SyncClientOptions } from './sync-client';

/*
 * Unit tests of the client's transport behaviour. The socket and fetch here are scripted
 * stand-ins so that each close code, lost pong or failed request can be produced on demand;
 * the same behaviours run against the real gateway and API in sync-client.stack.test.ts.
 */

const ORG = '00000000-0000-4000-8000-0000000000aa';
const SCOPE = `org:${ORG}`;
const A1 = '10000000-0000-4000-8000-000000000001';
const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [] };
const agent = (id: string, name: string) => ({
  id,
  org_id: ORG,
  name,
  status: 'idle',
  created_at: 't',
  updated_at: 't',
});

class ScriptedSocket implements WebSocketLike {
  static all: ScriptedSocket[] = [];
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  sent: ClientFrame[] = [];
  closedWith: number | undefined;
  constructor(readonly url: string) {
    ScriptedSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000) {
    this.closedWith = code;
    this.readyState = 3;
  }
  // Server side of the script:
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(frame: unknown) {
    this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }
  drop(code: number, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const latest = () => ScriptedSocket.all.at(-1)!;

/** The device's network switch: `onLine` and the `online`/`offline` events, as a browser fires them. */
class FakeNetwork extends EventTarget {
  onLine = true;
  set(online: boolean) {
    this.onLine = online;
    this.dispatchEvent(new Event(online ? 'online' : 'offline'));
  }
}
const clients: SyncClient[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of clients.splice(0)) await c.close();
  ScriptedSocket.all = [];
});

function makeClient(options: Partial<SyncClientOptions> = {}): SyncClient {
  const client = createSyncClient({
    url: 'http://sync.test/',
    token: 'tok',
    WebSocket: ScriptedSocket,
    fetch: () => new Promise<Response>(() => {}),
    backoff: { initialDelayMs: 2, maxDelayMs: 5 },
    drainJitterMs: 5,
    ...options,
  });
  clients.push(client);
  return client;
}

function jwt(expSeconds: number): string {
  const b64 = (o: object) =>
    btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  return `${b64({ alg: 'HS256' })}.${b64({ sub: 'u', exp: expSeconds })}.sig`;
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

describe('createSyncClient: connection', () => {
  it('follows scopes over one socket and resumes from the cursor after a drop', async () => {
    const client = makeClient();
    client.subscribeScope(SCOPE);
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(1));
    expect(latest().url).toBe('ws://sync.test/sync?token=tok');
    expect(client.getState().connection).toBe('connecting');
    latest().open();
    expect(client.getState().connection).toBe('open');
    expect(latest().sent).toEqual([{ type: 'subscribe', scope: SCOPE }]);
    latest().receive({
      type: 'bootstrap',
      scope: SCOPE,
      models: { ...empty, Agent: [agent(A1, 'a')] },
      lastSyncId: 5,
    });
    expect(client.getState().scopes[SCOPE]).toEqual({ status: 'live', lastSyncId: 5 });

    latest().drop(1006);
    expect(client.getState().connection).toBe('reconnecting');
    expect(client.getState().records.get('Agent', A1)?.name).toBe('a'); // records stay while away
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(2));
    latest().open();
    expect(latest().sent).toEqual([{ type: 'subscribe', scope: SCOPE, lastSyncId: 5 }]);
  });

  it('opens one socket however many scopes are followed while the token is being fetched', async () => {
    vi.useFakeTimers();
    let resolveToken!: (t: string) => void;
    const client = makeClient({ token: undefined, getToken: () => new Promise((r) => (resolveToken = r)) });
    for (let i = 0; i < 5; i++) client.subscribeScope(`org:${i}`);
    client.connect();
    resolveToken('late');
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(1));
    latest().open();
    expect(latest().sent.map((f) => f.type === 'subscribe' && f.scope)).toEqual([
      'org:0',
      'org:1',
      'org:2',
      'org:3',
      'org:4',
    ]);
    // Many backoff windows later (short of the first ping), still that one socket.
    await vi.advanceTimersByTimeAsync(9_000);
    expect(ScriptedSocket.all).toHaveLength(1);
  });

  it('reconnects after a drain (1012) and a slow-consumer close (1013), resuming each time', async () => {
    const client = makeClient();
    client.subscribeScope(SCOPE);
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(1));
    latest().open();
    latest().receive({ type: 'bootstrap', scope: SCOPE, models: empty, lastSyncId: 2 });
    latest().drop(1012, 'draining');
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(2));
    latest().open();
    latest().drop(1013, 'slow');
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(3));
    latest().open();
    expect(latest().sent).toEqual([{ type: 'subscribe', scope: SCOPE, lastSyncId: 2 }]);
    // Neither close is an error worth showing: they are routine.
    expect(client.getState().errors.filter((e) => e.kind === 'connection')).toEqual([]);
  });

  it('refreshes the token on 1008 and after repeated refused upgrades (a 401 looks like a close)', async () => {
    let n = 0;
    const getToken = vi.fn(async () => `t${++n}`);
    const client = makeClient({ token: undefined, getToken });
    client.connect();
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(1));
    expect(latest().url).toContain('token=t1');
    latest().open();
    latest().drop(1008, 'token expired');
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(2));
    expect(latest().url).toContain('token=t2');
    // Two upgrades refused in a row (never opened): the next attempt asks for a new token.
    latest().drop(1006);
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(3));
    expect(latest().url).toContain('token=t2');
    latest().drop(1006);
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(4));
    expect(latest().url).toContain('token=t3');
    expect(getToken).toHaveBeenCalledTimes(3);
  });

  it('refreshes a token that is about to expire before connecting', async () => {
    const getToken = vi.fn(async () => jwt(Math.floor(Date.now() / 1000) + 3600));
    const client = makeClient({ token: jwt(Math.floor(Date.now() / 1000) + 5), getToken });
    client.connect();
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(1));
    expect(getToken).toHaveBeenCalledTimes(1);
  });

  it('declares a silent socket dead when no pong comes, and reconnects', async () => {
    const client = makeClient({ pingIntervalMs: 5, pongTimeoutMs: 10 });
    client.connect();
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(1));
    const first = latest();
    first.open();
    await vi.waitFor(() => expect(first.sent.some((f) => f.type === 'ping')).toBe(true));
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(2));
    expect(first.closedWith).toBe(4000);
    expect(client.getState().errors.some((e) => e.code === 'ping_timeout')).toBe(true);
  });

  it('goes offline at once on the browser’s offline event, waits for online, then resumes', async () => {
    vi.useFakeTimers();
    try {
      const network = new FakeNetwork();
      const client = makeClient({ network });
      client.subscribeScope(SCOPE);
      await vi.advanceTimersByTimeAsync(0);
      const first = latest();
      first.open();
      first.receive({ type: 'bootstrap', scope: SCOPE, models: empty, lastSyncId: 4 });
      expect(client.getState().connection).toBe('open');
      // The network goes: the socket still looks open (no close comes while the cable is out).
      network.set(false);
      await vi.advanceTimersByTimeAsync(0);
      expect(client.getState().connection).toBe('offline');
      expect(client.getState().scopes[SCOPE]?.status).toBe('pending');
      expect(first.closedWith).toBe(4001);
      // No attempts while offline, however long.
      await vi.advanceTimersByTimeAsync(120_000);
      expect(ScriptedSocket.all).toHaveLength(1);
      network.set(true);
      await vi.advanceTimersByTimeAsync(0);
      expect(ScriptedSocket.all).toHaveLength(2);
      latest().open();
      expect(client.getState().connection).toBe('open');
      expect(latest().sent).toContainEqual({ type: 'subscribe', scope: SCOPE, lastSyncId: 4 });
    } finally {
      vi.useRealTimers();
    }
  });

  it('by default declares a silent socket dead within 14 s (a ping every 10 s, 4 s to answer)', async () => {
    vi.useFakeTimers();
    try {
      const client = makeClient({ network: null });
      client.connect();
      await vi.advanceTimersByTimeAsync(0);
      const socket = latest();
      socket.open();
      await vi.advanceTimersByTimeAsync(13_999);
      expect(client.getState().connection).toBe('open');
      await vi.advanceTimersByTimeAsync(1);
      expect(client.getState().connection).toBe('reconnecting');
      expect(socket.closedWith).toBe(4000);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps a socket that answers its pings', async () => {
    const client = makeClient({ pingIntervalMs: 5, pongTimeoutMs: 15 });
    client.connect();
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(1));
    const socket = latest();
    socket.open();
    let answered = 0;
    await vi.waitFor(
      () => {
        for (const f of socket.sent.splice(0)) {
          if (f.type === 'ping') {
            socket.receive({ type: 'pong', t: f.t });
            answered++;
          }
        }
        expect(answered).toBeGreaterThanOrEqual(6);
      },
      { timeout: 2000, interval: 2 },
    );
    expect(ScriptedSocket.all).toHaveLength(1);
    expect(socket.closedWith).toBeUndefined();
  });

  it('after a rate_limited error, asks again for the scopes that got no answer', async () => {
    vi.useFakeTimers();
    const client = makeClient({ backoff: { initialDelayMs: 2, maxDelayMs: 5, random: () => 0.5 } });
    client.subscribeScope(SCOPE);
    client.subscribeScope('org:dropped');
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(1));
    const socket = latest();
    socket.open();
    expect(socket.sent).toHaveLength(2);
    socket.receive({ type: 'bootstrap', scope: SCOPE, models: empty, lastSyncId: 0 });
    socket.receive({ type: 'error', code: 'rate_limited', message: 'More than 50 frames per second' });
    socket.receive({ type: 'error', code: 'rate_limited', message: 'More than 50 frames per second' });
    // One resubscribe for both errors, 250 ms plus a jittered backoff (here 1 ms) later.
    await vi.advanceTimersByTimeAsync(250);
    expect(socket.sent).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.sent).toHaveLength(3);
    expect(socket.sent[2]).toEqual({ type: 'subscribe', scope: 'org:dropped' });
    await vi.advanceTimersByTimeAsync(9_000);
    expect(socket.sent).toHaveLength(3);
  });

  it('after an internal error naming a scope, subscribes it again with growing backoff until answered', async () => {
    vi.useFakeTimers();
    // random 0.5: each delay is half its full-jitter bound, 100 ms doubling (capped at 1 s).
    const client = makeClient({ backoff: { initialDelayMs: 100, maxDelayMs: 1000, random: () => 0.5 } });
    client.subscribeScope(SCOPE);
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(1));
    const socket = latest();
    // Pings go out on their own clock; only the subscribes matter here.
    const subscribes = () => socket.sent.filter((f) => f.type === 'subscribe');
    socket.open();
    expect(subscribes()).toEqual([{ type: 'subscribe', scope: SCOPE }]);
    const failed = {
      type: 'error',
      code: 'internal',
      scope: SCOPE,
      message: 'Subscribing failed (unavailable)',
    };
    socket.receive(failed);
    expect(client.getState().scopes[SCOPE]?.status).toBe('error');
    await vi.advanceTimersByTimeAsync(49);
    expect(subscribes()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(subscribes()).toHaveLength(2);
    expect(subscribes()[1]).toEqual({ type: 'subscribe', scope: SCOPE });
    // Failed again: the next wait is twice as long.
    socket.receive(failed);
    await vi.advanceTimersByTimeAsync(99);
    expect(subscribes()).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(subscribes()).toHaveLength(3);
    socket.receive({ type: 'bootstrap', scope: SCOPE, models: empty, lastSyncId: 4 });
    socket.receive({ type: 'subscribed', scope: SCOPE, lastSyncId: 4 });
    expect(client.getState().scopes[SCOPE]?.status).toBe('live');
    // Answered: no more retries, and a later failure starts from the first step again.
    await vi.advanceTimersByTimeAsync(5000);
    expect(subscribes()).toHaveLength(3);
    socket.receive(failed);
    await vi.advanceTimersByTimeAsync(50);
    expect(subscribes().at(-1)).toEqual({ type: 'subscribe', scope: SCOPE, lastSyncId: 4 });
    expect(subscribes()).toHaveLength(4);
  });

  it('does not retry a scope the server refused for good (forbidden)', async () => {
    vi.useFakeTimers();
    const client = makeClient({ backoff: { initialDelayMs: 100, maxDelayMs: 1000, random: () => 0.5 } });
    client.subscribeScope(SCOPE);
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(1));
    const socket = latest();
    // Pings go out on their own clock; only the subscribes matter here.
    const subscribes = () => socket.sent.filter((f) => f.type === 'subscribe');
    socket.open();
    socket.receive({ type: 'error', code: 'forbidden', scope: SCOPE, message: 'not in your token' });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(subscribes()).toHaveLength(1);
    expect(client.getState().scopes[SCOPE]?.status).toBe('error');
  });

  it('survives hostile frames: reports them, changes nothing, keeps the socket', async () => {
    const client = makeClient();
    client.subscribeScope(SCOPE);
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(1));
    latest().open();
    latest().receive({ type: 'bootstrap', scope: SCOPE, models: empty, lastSyncId: 0 });
    const before = client.getState().records;
    latest().receive('not json {');
    latest().receive({ type: 'mystery' });
    latest().receive({
      type: 'sync',
      scope: SCOPE,
      events: [{ id: 1, model_id: 'not-a-uuid' }],
      latestSyncId: 1,
    });
    latest().receive({ type: 'sync', scope: SCOPE, events: 'x', latestSyncId: -1 });
    latest().receive('null');
    latest().receive(`"${'x'.repeat(100_000)}"`);
    latest().onmessage?.({ data: new ArrayBuffer(8) });
    const state = client.getState();
    expect(state.records).toBe(before);
    expect(state.scopes[SCOPE]).toEqual({ status: 'live', lastSyncId: 0 });
    expect(state.errors.map((e) => e.code)).toEqual([
      'bad_json',
      'bad_frame',
      'bad_frame',
      'bad_frame',
      'bad_frame',
      'bad_frame',
      'binary_frame',
    ]);
    expect(state.connection).toBe('open');
    expect(ScriptedSocket.all).toHaveLength(1);
  });

  it('disconnect() goes idle without reconnecting; close() is terminal', async () => {
    vi.useFakeTimers();
    const client = makeClient();
    client.connect();
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(1));
    latest().open();
    client.disconnect();
    expect(client.getState().connection).toBe('idle');
    expect(latest().closedWith).toBe(1000);
    client.subscribeScope(SCOPE); // following a scope does not undo an explicit disconnect
    await vi.advanceTimersByTimeAsync(600_000);
    expect(ScriptedSocket.all).toHaveLength(1);
    client.connect();
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(2));
    latest().open();
    expect(latest().sent).toEqual([{ type: 'subscribe', scope: SCOPE }]);
    await client.close();
    client.connect();
    expect(client.getState().connection).toBe('closed');
    expect(ScriptedSocket.all).toHaveLength(2);
  });
});

describe('createSyncClient: mutations', () => {
  it('applies at once, retries network errors/5xx/429 under the same key, confirms on the event', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const answers: (() => Response)[] = [
      () => {
        throw new TypeError('fetch failed');
      },
      () => json(503, { error: { code: 'unavailable', message: 'db' } }),
      () => json(429, { error: { code: 'rate_limited', message: 'slow down' } }),
    ];
    const fetch = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
      calls.push({ url: String(url), init: init! });
      const next = answers.shift();
      if (next) return next();
      const body = JSON.parse(String(init!.body));
      return json(201, { data: { ...body, created_at: 'c', updated_at: 'c' }, scope: SCOPE, syncId: 1 });
    }) as unknown as typeof globalThis.fetch;
    const client = makeClient({ fetch });
    client.subscribeScope(SCOPE);
    await vi.waitFor(() => expect(ScriptedSocket.all).toHaveLength(1));
    latest().open();
    latest().receive({ type: 'bootstrap', scope: SCOPE, models: empty, lastSyncId: 0 });

    const promise = client.insert('Agent', { id: A1, org_id: ORG, name: 'new' }, { mutationId: 'key-1' });
    // Visible immediately, with the model's defaults and its client-side id.
    expect(client.getState().records.get('Agent', A1)).toMatchObject({ id: A1, name: 'new', status: 'idle' });
    expect(client.getState().pending).toMatchObject([{ mutationId: 'key-1', status: 'sending' }]);
    const result = await promise;
    expect(result.syncId).toBe(1);
    expect(calls).toHaveLength(4);
    for (const c of calls) {
      expect(c.url).toBe('http://sync.test/api/agents');
      expect(c.init.method).toBe('POST');
      expect((c.init.headers as Record<string, string>)['idempotency-key']).toBe('key-1');
      expect((c.init.headers as Record<string, string>).authorization).toBe('Bearer tok');
    }
    // Committed, but the event is not here yet: still pending (no flicker), marked sent.
    expect(client.getState().pending).toMatchObject([{ mutationId: 'key-1', status: 'sent', syncId: 1 }]);
    latest().receive({
      type: 'sync',
      scope: SCOPE,
      latestSyncId: 1,
      events: [
        {
          id: 1,
          scope: SCOPE,
          model: 'Agent',
          model_id: A1,
          action: 'insert',
          data: { ...agent(A1, 'new'), created_at: 'c' },
          mutationId: 'key-1',
          created_at: 'c',
        },
      ],
    });
    expect(client.getState().pending).toEqual([]);
    expect(client.getState().records.get('Agent', A1)).toMatchObject({ name: 'new', created_at: 'c' });
  });

  it('rolls back on a 4xx and rejects with the error body', async () => {
    const body = {
      error: { code: 'invalid_body', message: 'name: too short', details: { name: ['min 1'] } },
    };
    const fetch = vi.fn(async () => json(400, body)) as unknown as typeof globalThis.fetch;
    const client = makeClient({ fetch });
    client.subscribeScope(SCOPE);
    client.receiveFrame(
      JSON.stringify({
        type: 'bootstrap',
        scope: SCOPE,
        models: { ...empty, Agent: [agent(A1, 'old')] },
        lastSyncId: 3,
      }),
    );
    const before = client.getState().records.get('Agent', A1);
    const promise = client.update('Agent', A1, { name: '' });
    expect(client.getState().records.get('Agent', A1)?.name).toBe('');
    const error = await promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MutationError);
    expect(error).toMatchObject({ status: 400, code: 'invalid_body', body });
    const state = client.getState();
    expect(state.records.get('Agent', A1)).toBe(before); // rolled back to the very same object
    expect(state.pending).toEqual([]);
    expect(state.errors.at(-1)).toMatchObject({ kind: 'mutation', code: 'invalid_body', status: 400 });
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('treats an unreadable 2xx answer as a failure of that write, without retrying it', async () => {
    const fetch = vi.fn(
      async () => new Response('<html>proxy</html>', { status: 200 }),
    ) as unknown as typeof globalThis.fetch;
    const client = makeClient({ fetch, autoConnect: false });
    const error = await client.insert('Agent', { id: A1, org_id: ORG, name: 'x' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'bad_response', status: 200 });
    expect(client.getState().records.get('Agent', A1)).toBeUndefined();
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('refreshes the token once on a 401, then sends again', async () => {
    const tokens: string[] = [];
    const fetch = vi.fn(async (_url: unknown, init?: RequestInit) => {
      const auth = (init!.headers as Record<string, string>).authorization!;
      tokens.push(auth);
      if (auth === 'Bearer stale') return json(401, { error: { code: 'unauthorized', message: 'expired' } });
      return json(200, { data: { id: A1 }, scope: SCOPE, syncId: 9 });
    }) as unknown as typeof globalThis.fetch;
    const client = makeClient({ fetch, token: 'stale', getToken: async () => 'fresh', autoConnect: false });
    await client.remove('Agent', A1);
    expect(tokens).toEqual(['Bearer stale', 'Bearer fresh']);
  });

  it('sends one mutation at a time, in order', async () => {
    const order: string[] = [];
    let release: (() => void) | undefined;
    const fetch = vi.fn(async (url: unknown, init?: RequestInit) => {
      order.push(`${init!.method} ${String(url)}`);
      if (order.length === 1) await new Promise<void>((r) => (release = r));
      return json(200, { data: {}, scope: 'org:elsewhere', syncId: order.length });
    }) as unknown as typeof globalThis.fetch;
    const client = makeClient({ fetch, autoConnect: false });
    const a = client.insert('Agent', { id: A1, org_id: ORG, name: 'x' });
    const b = client.update('Agent', A1, { name: 'y' });
    await vi.waitFor(() => expect(release).toBeDefined());
    expect(order).toHaveLength(1);
    release!();
    await Promise.all([a, b]);
    expect(order).toEqual([`POST http://sync.test/api/agents`, `PATCH http://sync.test/api/agents/${A1}`]);
  });

  it('sends a batch as one POST /api/mutations with a key per entry', async () => {
    const bodies: unknown[] = [];
    const fetch = vi.fn(async (url: unknown, init?: RequestInit) => {
      bodies.push({ url: String(url), body: JSON.parse(String(init!.body)) });
      return json(200, {
        results: [
          { data: {}, scope: SCOPE, syncId: 1 },
          { data: {}, scope: SCOPE, syncId: 2 },
        ],
      });
    }) as unknown as typeof globalThis.fetch;
    const client = makeClient({ fetch, autoConnect: false });
    const A2 = '10000000-0000-4000-8000-000000000002';
    const results = await client.mutateBatch([
      {
        model: 'Agent',
        action: 'insert',
        id: A1.toUpperCase(),
        data: { org_id: ORG, name: 'x' },
        mutationId: 'b1',
      },
      { model: 'Agent', action: 'delete', id: A2, mutationId: 'b2' },
    ]);
    expect(results.map((r) => r.syncId)).toEqual([1, 2]);
    expect(bodies).toEqual([
      {
        url: 'http://sync.test/api/mutations',
        body: {
          mutations: [
            {
              mutationId: 'b1',
              model: 'Agent',
              action: 'insert',
              id: A1,
              data: { id: A1, org_id: ORG, name: 'x', status: 'idle' },
            },
            { mutationId: 'b2', model: 'Agent', action: 'delete', id: A2 },
          ],
        },
      },
    ]);
    // A reply with the wrong number of results is not trusted.
    const short = vi.fn(async () => json(200, { results: [] })) as unknown as typeof globalThis.fetch;
    const other = makeClient({ fetch: short, autoConnect: false });
    const error = await other
      .mutateBatch([
        { model: 'Agent', action: 'delete', id: A1 },
        { model: 'Agent', action: 'delete', id: A2 },
      ])
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'bad_response' });
    expect(other.getState().pending).toEqual([]);
  });

  it('refuses bad calls without sending anything', async () => {
    const fetch = vi.fn(() => new Promise<Response>(() => {})) as unknown as typeof globalThis.fetch;
    const client = makeClient({ fetch, autoConnect: false });
    await expect(client.mutate({ model: 'Agent', action: 'update', data: { name: 'x' } })).rejects.toThrow(
      'needs an id',
    );
    const p = client.mutate({ model: 'Agent', action: 'insert', data: { name: 'x' }, mutationId: 'dup' });
    await expect(
      client.mutate({ model: 'Agent', action: 'insert', data: {}, mutationId: 'dup' }),
    ).rejects.toThrow('already pending');
    p.catch(() => {});
    expect(client.getState().pending).toHaveLength(1);
  });
});
