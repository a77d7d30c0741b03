import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createSyncClient, type SyncClient } from '../src';
import { messageId, scope, seededContent, token } from './apply-frames';
import { type FrameServer, startFrameServer } from './apply-socket';

/**
 * The bench's WebSocket server (`npm run bench:client`) must speak the contract's `/sync` protocol
 * well enough that the real sync client applies every streamed token: otherwise the bench would
 * time a page rejecting frames. A real client over a real socket, in Node.
 */

const COUNT = 50;
let server: FrameServer | undefined;
const clients: SyncClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await server?.close();
  server = undefined;
});

function follow(url: string, name: string): SyncClient {
  const client = createSyncClient({
    url,
    token: name,
    WebSocket: WebSocket as never,
    fetch: () => new Promise<Response>(() => {}),
  });
  clients.push(client);
  client.subscribeScope(scope);
  return client;
}

/** Resolves once the client's state satisfies `test` (checked on each publish). */
function until(client: SyncClient, test: (c: SyncClient) => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (test(client)) return resolve();
    const off = client.subscribe(() => {
      if (!test(client)) return;
      off();
      resolve();
    });
  });
}

const content = (c: SyncClient) => c.getState().records.get('Message', messageId(COUNT - 1))?.content;

describe('the bench frame server', () => {
  it.each(['append', 'update'] as const)(
    'bootstraps a real client and streams %s events it applies in order, a second reply continuing the first',
    async (mode) => {
      server = await startFrameServer(COUNT);
      const a = follow(server.url, 'a');
      const b = follow(server.url, 'b');
      await until(a, (c) => c.getState().scopes[scope]?.lastSyncId === COUNT);
      await until(b, (c) => c.getState().scopes[scope]?.lastSyncId === COUNT);
      expect(a.getState().records.list(scope, 'Message')).toHaveLength(COUNT);

      // Fast schedule (1,000 tokens/s): the test waits for the last token, not for the clock.
      const last = await server.stream(1000, 0.02, mode, 'a');
      expect(last).toBe(token(19));
      await until(a, (c) => c.getState().scopes[scope]?.lastSyncId === COUNT + 20);
      const first = Array.from({ length: 20 }, (_, i) => token(i)).join('');
      expect(content(a)).toBe(seededContent(COUNT - 1) + first);
      const next = await server.stream(1000, 0.01, mode, 'a');
      expect(next).toBe(token(29));
      await until(a, (c) => c.getState().scopes[scope]?.lastSyncId === COUNT + 30);
      const second = Array.from({ length: 10 }, (_, i) => token(20 + i)).join('');
      expect(content(a)).toBe(seededContent(COUNT - 1) + first + second);
      // Nothing was rejected, and the other page's socket got none of it.
      expect(a.getState().errors).toEqual([]);
      expect(b.getState().scopes[scope]?.lastSyncId).toBe(COUNT);
      expect(content(b)).toBe(seededContent(COUNT - 1));
    },
  );

  it('streams several tokens per append event when asked (a batching writer), every token applied once', async () => {
    server = await startFrameServer(COUNT);
    const a = follow(server.url, 'a');
    await until(a, (c) => c.getState().scopes[scope]?.lastSyncId === COUNT);
    // 21 tokens, 2 per event: 11 events, the last one holding a single token.
    const last = await server.stream(1000, 0.021, 'append', 'a', 2);
    expect(last).toBe(token(20));
    await until(a, (c) => c.getState().scopes[scope]?.lastSyncId === COUNT + 11);
    expect(content(a)).toBe(
      seededContent(COUNT - 1) + Array.from({ length: 21 }, (_, i) => token(i)).join(''),
    );
    expect(a.getState().errors).toEqual([]);
  });

  it('answers a ping with a pong and refuses another scope; streaming to an unknown page throws', async () => {
    server = await startFrameServer(COUNT);
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/sync?token=x`);
    const frames: unknown[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'ping', t: 7 }));
    ws.send(JSON.stringify({ type: 'subscribe', scope: 'agent:other' }));
    await new Promise<void>((resolve) => {
      const check = () => (frames.length >= 2 ? resolve() : ws.once('message', () => setImmediate(check)));
      check();
    });
    expect(frames).toEqual([
      { type: 'pong', t: 7 },
      expect.objectContaining({ type: 'error', code: 'forbidden', scope: 'agent:other' }),
    ]);
    await expect(server.stream(30, 0.1, 'append', 'nobody')).rejects.toThrow(/nobody/);
    ws.close();
  });
});
