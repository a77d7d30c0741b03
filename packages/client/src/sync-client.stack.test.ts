import { randomUUID } from 'node:crypto';
import { createApiApp } from '@openagents/sync-api-service';
import { createDeltaApp, createDeltaReader } from '@openagents/sync-delta-service';
import { createGateway, type Gateway, gatewayDefaults } from '@openagents/sync-gateway-service';
import type { BootstrapResponse, DeltaResponse } from '@openagents/sync-protocol';
import { createLogger, createMemoryBus, createRegistry, pruneEvents } from '@openagents/sync-server-kit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { TEST_JWT_SECRET, testAuth, tokenFor } from '../../../test/support/tokens';
import { MutationError } from './errors';
import { createMemoryStorage } from './storage';
import { createSyncClient, type SyncClient, type SyncClientOptions } from './sync-client';
import type { SyncState } from './types';

/*
 * The client against the real thing: the mutation API (Hono), the delta reader and the
 * uWebSockets.js gateway, all on one port as in standalone mode, over a real Postgres database
 * and the in-process bus. Nothing on the server side is replaced; where a test needs a failure,
 * it wraps the client's own fetch or WebSocket (a lost response, a dropped socket).
 */

let db: TestDatabase;
let gateway: Gateway;
let url: string;
let api: ReturnType<typeof createApiApp>;
let startNode: (port: number) => Promise<Gateway>;
const bus = createMemoryBus();
const sockets: WebSocket[] = [];

/** `ws`, remembering every socket so a test can cut one. */
class TrackedWebSocket extends WebSocket {
  constructor(address: string) {
    super(address);
    sockets.push(this);
  }
}

beforeAll(async () => {
  db = await createTestDatabase('client_stack');
  const log = createLogger({ name: 'client-stack', level: 'silent' });
  const registry = createRegistry('client-stack', { defaultMetrics: false });
  const reader = createDeltaReader({ pool: db.pool });
  api = createApiApp({ pool: db.pool, bus, auth: testAuth, log, registry });
  const delta = createDeltaApp({ reader, auth: testAuth, log, registry });
  startNode = async (port) => {
    const node = createGateway({
      config: gatewayDefaults({ SYNC_JWT_SECRET: TEST_JWT_SECRET, HEAD_CHECK_INTERVAL_MS: 500 }),
      auth: testAuth,
      bus,
      delta: reader,
      log,
      registry: createRegistry('client-stack-node', { defaultMetrics: false }),
      http: (request) =>
        new URL(request.url).pathname.startsWith('/api/') ? api.fetch(request) : delta.fetch(request),
    });
    await node.listen(port);
    return node;
  };
  gateway = await startNode(0);
  url = `http://127.0.0.1:${gateway.port}`;
});

afterAll(async () => {
  await gateway?.stop();
  await bus.close();
  await db?.drop();
});

const clients: SyncClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

async function newClient(scopes: string[], options: Partial<SyncClientOptions> = {}): Promise<SyncClient> {
  const client = createSyncClient({
    url,
    token: await tokenFor(scopes),
    WebSocket: TrackedWebSocket,
    backoff: { initialDelayMs: 20, maxDelayMs: 200 },
    ...options,
  });
  clients.push(client);
  return client;
}

/** Resolves once `check(state)` holds (checked on every change). */
function until(client: SyncClient, check: (s: SyncState) => boolean, timeoutMs = 10_000): Promise<SyncState> {
  return new Promise((resolve, reject) => {
    if (check(client.getState())) return resolve(client.getState());
    const timer = setTimeout(() => {
      stop();
      const s = client.getState();
      reject(
        new Error(
          `timed out: ${JSON.stringify({ connection: s.connection, scopes: s.scopes, errors: s.errors })}`,
        ),
      );
    }, timeoutMs);
    const stop = client.subscribe((s) => {
      if (!check(s)) return;
      clearTimeout(timer);
      stop();
      resolve(s);
    });
  });
}

async function serverSnapshot(scope: string): Promise<BootstrapResponse> {
  const res = await fetch(`${url}/sync/bootstrap?scope=${encodeURIComponent(scope)}`, {
    headers: { authorization: `Bearer ${await tokenFor([scope])}` },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as BootstrapResponse;
}

async function serverEvents(scope: string): Promise<DeltaResponse['events']> {
  const res = await fetch(`${url}/sync/delta?scope=${encodeURIComponent(scope)}&lastSyncId=0`, {
    headers: { authorization: `Bearer ${await tokenFor([scope])}` },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as DeltaResponse).events;
}

/** A write straight through the API, as another device would make it. */
async function apiInsertAgent(orgId: string, name: string): Promise<string> {
  const id = randomUUID();
  const res = await fetch(`${url}/api/agents`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await tokenFor([`org:${orgId}`])}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ id, org_id: orgId, name }),
  });
  expect(res.status).toBe(201);
  return id;
}

/** The client's view of a scope equals the server's current snapshot, record for record. */
async function expectInSync(client: SyncClient, scope: string) {
  const snap = await serverSnapshot(scope);
  const state = await until(client, (s) => s.scopes[scope]?.lastSyncId === snap.lastSyncId);
  expect(state.pending).toEqual([]);
  const mine = state.records.all('Agent').filter((a) => `org:${a.org_id}` === scope);
  expect(sortById(mine)).toEqual(sortById(snap.models.Agent as { id: string }[]));
}
const sortById = <T extends { id: string }>(rows: T[]) => [...rows].sort((a, b) => a.id.localeCompare(b.id));

describe('sync client against the real gateway and API', () => {
  it('resumes after a dropped socket with nothing lost', async () => {
    const org = randomUUID();
    const scope = `org:${org}`;
    await apiInsertAgent(org, 'before');
    const client = await newClient([scope]);
    client.subscribeScope(scope);
    await until(client, (s) => s.scopes[scope]?.status === 'live' && s.scopes[scope]!.lastSyncId === 1);

    const socket = sockets.at(-1)!;
    socket.terminate(); // no close frame: what a dead network looks like
    await until(client, (s) => s.connection !== 'open');
    for (let i = 0; i < 5; i++) await apiInsertAgent(org, `while away ${i}`);
    await until(client, (s) => s.connection === 'open');
    await expectInSync(client, scope);
    expect(
      client
        .getState()
        .records.all('Agent')
        .map((r) => r.id),
    ).toHaveLength(6);
    expect(client.getState().scopes[scope]?.lastSyncId).toBe(6);
  });

  it('applies a write at once, then confirms it through the log; two clients see each other', async () => {
    const org = randomUUID();
    const scope = `org:${org}`;
    const alice = await newClient([scope]);
    const bob = await newClient([scope]);
    alice.subscribeScope(scope);
    bob.subscribeScope(scope);
    await until(alice, (s) => s.scopes[scope]?.status === 'live');
    await until(bob, (s) => s.scopes[scope]?.status === 'live');

    const id = randomUUID();
    const write = alice.insert('Agent', { id, org_id: org, name: 'from alice' });
    // Optimistic: visible in the same tick, before any network round trip.
    expect(alice.getState().records.get('Agent', id)).toMatchObject({
      id,
      name: 'from alice',
      status: 'idle',
    });
    expect(alice.getState().pending).toHaveLength(1);
    const result = await write;
    expect(result).toMatchObject({ scope, syncId: 1, data: { id, name: 'from alice' } });
    const confirmed = await until(alice, (s) => s.pending.length === 0);
    expect(confirmed.records.get('Agent', id)).toEqual(result.data);

    await until(bob, (s) => s.records.get('Agent', id)?.name === 'from alice');
    await bob.update('Agent', id, { status: 'running' });
    await until(alice, (s) => s.records.get('Agent', id)?.status === 'running');
    await alice.remove('Agent', id);
    await until(bob, (s) => s.records.get('Agent', id) === undefined);
    await expectInSync(alice, scope);
    await expectInSync(bob, scope);
  });

  it('follows many scopes over one socket; a message needs its agent first and the queue keeps that order', async () => {
    const org = randomUUID();
    const agentId = randomUUID();
    const orgScope = `org:${org}`;
    const agentScope = `agent:${agentId}`;
    const before = sockets.length;
    const client = await newClient([orgScope, agentScope]);
    client.subscribeScope(orgScope);
    client.subscribeScope(agentScope);
    await until(
      client,
      (s) => s.scopes[orgScope]?.status === 'live' && s.scopes[agentScope]?.status === 'live',
    );
    // Not awaited in between: the insert of the message must not overtake the agent's.
    const writes = [
      client.insert('Agent', { id: agentId, org_id: org, name: 'planner' }),
      client.insert('Message', { agent_id: agentId, role: 'user', content: 'hello' }),
      client.insert('ReasoningStep', { agent_id: agentId, content: 'thinking' }),
    ];
    await Promise.all(writes);
    const state = await until(
      client,
      (s) => s.pending.length === 0 && s.scopes[agentScope]?.lastSyncId === 2,
    );
    expect(state.records.all('Message').map((m) => m.content)).toEqual(['hello']);
    expect(state.records.all('ReasoningStep').map((m) => m.content)).toEqual(['thinking']);
    expect(state.scopes[orgScope]?.lastSyncId).toBe(1);
    expect(sockets.length - before).toBe(1);
  });

  it('commits a batch atomically, and rolls a refused batch back entirely', async () => {
    const org = randomUUID();
    const agentId = randomUUID();
    const orgScope = `org:${org}`;
    const agentScope = `agent:${agentId}`;
    const client = await newClient([orgScope, agentScope]);
    client.subscribeScope(orgScope);
    client.subscribeScope(agentScope);
    await until(
      client,
      (s) => s.scopes[orgScope]?.status === 'live' && s.scopes[agentScope]?.status === 'live',
    );

    const results = await client.mutateBatch([
      { model: 'Agent', action: 'insert', id: agentId, data: { org_id: org, name: 'batched' } },
      {
        model: 'Message',
        action: 'insert',
        data: { agent_id: agentId, role: 'user', content: 'in the same batch' },
      },
    ]);
    expect(results.map((r) => r.scope)).toEqual([orgScope, agentScope]);
    await until(client, (s) => s.pending.length === 0 && s.scopes[agentScope]?.lastSyncId === 1);

    const messageId = randomUUID();
    const refused = client.mutateBatch([
      {
        model: 'Message',
        action: 'insert',
        id: messageId,
        data: { agent_id: agentId, role: 'user', content: 'ok' },
      },
      { model: 'Agent', action: 'update', id: agentId, data: { status: 'not-a-status' } },
    ]);
    expect(client.getState().records.get('Message', messageId)).toBeDefined();
    const error = await refused.catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 400 });
    const state = client.getState();
    expect(state.records.get('Message', messageId)).toBeUndefined();
    expect(state.records.get('Agent', agentId)?.status).toBe('idle');
    expect(state.pending).toEqual([]);
    expect(await serverEvents(agentScope)).toHaveLength(1);
    expect(await serverEvents(orgScope)).toHaveLength(1);
  });

  it('rolls back a write the API refuses (400) and rejects with the error body', async () => {
    const org = randomUUID();
    const scope = `org:${org}`;
    const client = await newClient([scope]);
    client.subscribeScope(scope);
    await until(client, (s) => s.scopes[scope]?.status === 'live');
    const id = randomUUID();
    const write = client.insert('Agent', { id, org_id: org, name: '' });
    expect(client.getState().records.get('Agent', id)).toBeDefined();
    const error = await write.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MutationError);
    expect(error).toMatchObject({ status: 400, body: { error: { code: expect.any(String) } } });
    const state = client.getState();
    expect(state.records.get('Agent', id)).toBeUndefined();
    expect(state.pending).toEqual([]);
    expect(state.errors.at(-1)).toMatchObject({ kind: 'mutation', status: 400 });
    expect(await serverEvents(scope)).toEqual([]);
  });

  it('a retry after a lost response reuses the key and writes once', async () => {
    const org = randomUUID();
    const scope = `org:${org}`;
    let first = true;
    const seenKeys: string[] = [];
    // The request reaches the server and commits; only the response is lost on the way back.
    const lossyFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      seenKeys.push(String((init!.headers as Record<string, string>)['idempotency-key']));
      const res = await fetch(input, init);
      if (first) {
        first = false;
        await res.arrayBuffer();
        throw new TypeError('network connection lost');
      }
      return res;
    }) as typeof fetch;
    const client = await newClient([scope], { fetch: lossyFetch });
    client.subscribeScope(scope);
    await until(client, (s) => s.scopes[scope]?.status === 'live');
    const id = randomUUID();
    const result = await client.insert('Agent', { id, org_id: org, name: 'once' }, { mutationId: `k-${id}` });
    expect(seenKeys).toEqual([`k-${id}`, `k-${id}`]);
    expect(result.syncId).toBe(1);
    const events = await serverEvents(scope);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ model_id: id, mutationId: `k-${id}` });
    await expectInSync(client, scope);
  });

  it('a reset bootstrap replaces the scope but keeps pending writes, which then land', async () => {
    const org = randomUUID();
    const scope = `org:${org}`;
    const storage = createMemoryStorage();
    const keep = await apiInsertAgent(org, 'keep');
    const doomed = await apiInsertAgent(org, 'deleted while away');

    // Session 1: sync, remember cursor 2, leave.
    const first = await newClient([scope], { storage, persistThrottleMs: 10 });
    first.subscribeScope(scope);
    await until(first, (s) => s.scopes[scope]?.lastSyncId === 2);
    await first.close();

    // While away: the record is deleted and the whole log is pruned, so cursor 2 is too old.
    const del = await fetch(`${url}/api/agents/${doomed}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${await tokenFor([scope])}` },
    });
    expect(del.status).toBe(200);
    while ((await pruneEvents(db.pool, new Date(Date.now() + 60_000))) > 0);

    // Session 2: a write is made before connecting and held in flight until after the reset.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const heldFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      await gate;
      return fetch(input, init);
    }) as typeof fetch;
    const second = await newClient([scope], { storage, fetch: heldFetch, autoConnect: false });
    await second.ready;
    expect(second.getState().records.get('Agent', doomed)).toBeDefined(); // restored from storage
    const mine = randomUUID();
    const write = second.insert('Agent', { id: mine, org_id: org, name: 'pending through a reset' });
    second.subscribeScope(scope);
    second.connect();
    const afterReset = await until(second, (s) => s.scopes[scope]?.lastSyncId === 3);
    expect(afterReset.records.get('Agent', doomed)).toBeUndefined();
    expect(afterReset.records.get('Agent', keep)?.name).toBe('keep');
    expect(afterReset.records.get('Agent', mine)?.name).toBe('pending through a reset');
    expect(afterReset.pending).toHaveLength(1);

    release();
    await write;
    await expectInSync(second, scope);
    expect(second.getState().records.get('Agent', mine)?.name).toBe('pending through a reset');
  });

  it('after a drain (1012) it reconnects to the replacement node and resumes with nothing lost', async () => {
    const org = randomUUID();
    const scope = `org:${org}`;
    const port = await freePort();
    let node = await startNode(port);
    try {
      const client = await newClient([scope], { url: `http://127.0.0.1:${port}`, drainJitterMs: 50 });
      client.subscribeScope(scope);
      await apiInsertAgent(org, 'before the drain');
      await until(client, (s) => s.scopes[scope]?.lastSyncId === 1);

      const socket = sockets.at(-1)!;
      const closeCode = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
      await node.drain(); // closes every socket with 1012
      expect(await closeCode).toBe(1012);
      await until(client, (s) => s.connection !== 'open');
      await node.stop();
      // Writes land while no node serves the socket (the API is reached in-process here).
      for (let i = 0; i < 3; i++) {
        const res = await api.request('/api/agents', {
          method: 'POST',
          headers: { authorization: `Bearer ${await tokenFor([scope])}`, 'content-type': 'application/json' },
          body: JSON.stringify({ org_id: org, name: `during the restart ${i}` }),
        });
        expect(res.status).toBe(201);
      }
      node = await startNode(port);
      await until(client, (s) => s.connection === 'open');
      await expectInSync(client, scope);
      expect(
        client
          .getState()
          .records.all('Agent')
          .map((r) => r.id),
      ).toHaveLength(4);
      // A drain is routine: not reported as an error.
      expect(client.getState().errors.filter((e) => e.code === 'close_1012')).toEqual([]);
    } finally {
      await node.stop();
    }
  });

  it('is refused a scope outside its token without losing the others', async () => {
    const org = randomUUID();
    const scope = `org:${org}`;
    const client = await newClient([scope]);
    client.subscribeScope(scope);
    client.subscribeScope(`org:${randomUUID()}`);
    const state = await until(client, (s) =>
      Object.values(s.scopes).every((x) => x.status === 'live' || x.status === 'error'),
    );
    const statuses = Object.values(state.scopes)
      .map((x) => x.status)
      .sort();
    expect(statuses).toEqual(['error', 'live']);
    expect(state.errors.some((e) => e.code === 'forbidden')).toBe(true);
    await apiInsertAgent(org, 'still flowing');
    await expectInSync(client, scope);
  });

  it('refreshes a token the gateway refuses (upgrade 401) through getToken', async () => {
    const org = randomUUID();
    const scope = `org:${org}`;
    const getToken = vi.fn(async () => tokenFor([scope]));
    const expired = await testAuth.sign({ sub: 'u', scopes: [scope] }, -60);
    const client = await newClient([scope], { token: expired, getToken });
    client.subscribeScope(scope);
    await until(client, (s) => s.scopes[scope]?.status === 'live');
    expect(getToken).toHaveBeenCalled();
  });
});
