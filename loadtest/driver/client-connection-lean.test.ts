import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { ClientConnection, type ConnectionCounters, newConnectionCounters } from './client-connection';
import type { ViewerTransport } from './worker-messages';

/**
 * A viewer of the stream scenario over each transport, against a plain WebSocket server speaking
 * the contract's frames: the same frames give the same cursor, counts and text; the lean client
 * is the one that offers no permessage-deflate, and it resumes after the server cuts it.
 */
const servers: WebSocketServer[] = [];
const connections: ClientConnection[] = [];
afterEach(async () => {
  for (const c of connections.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

function counters(): ConnectionCounters {
  return newConnectionCounters(false, 0);
}

const SCOPE = 'agent:a';
const append = (id: number, offset: number, text: string) => ({
  id,
  data: { text, field: 'content', offset, updated_at: '2026-12-01T00:00:00.000Z' },
  model: 'Message',
  scope: SCOPE,
  action: 'append',
  model_id: 'm1',
  created_at: '2026-12-01T00:00:00.000Z',
  mutationId: null,
});

/** Answers each subscribe with a bootstrap at 0 and three appends (one frame of two, one of one). */
async function server() {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: true });
  servers.push(wss);
  await new Promise((resolve) => wss.once('listening', resolve));
  const offers: (string | undefined)[] = [];
  const subscribes: unknown[] = [];
  wss.on('connection', (ws, request: IncomingMessage) => {
    offers.push(request.headers['sec-websocket-extensions']);
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { lastSyncId?: number };
      subscribes.push(frame);
      const from = frame.lastSyncId ?? 0;
      if (from === 0)
        ws.send(JSON.stringify({ type: 'bootstrap', scope: SCOPE, models: { Message: [] }, lastSyncId: 0 }));
      const events = [append(1, 0, 'héllo'), append(2, 5, ' 🙂'), append(3, 8, '!')].filter(
        (e) => e.id > from,
      );
      if (events.length > 0) {
        ws.send(JSON.stringify({ type: 'sync', scope: SCOPE, events: events.slice(0, 2), latestSyncId: 2 }));
        if (events.length > 2)
          ws.send(JSON.stringify({ type: 'sync', scope: SCOPE, events: events.slice(2), latestSyncId: 3 }));
      }
    });
  });
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/sync`, offers, subscribes, wss };
}

describe.each(['ws', 'lean'] as ViewerTransport[])('ClientConnection over %s', (transport) => {
  it('applies the frames: cursor, delivered count and text, byte for byte', async () => {
    const s = await server();
    const c = counters();
    const connection = new ClientConnection(
      { url: s.url, protocol: 'sync', scopes: [SCOPE] },
      c,
      () => {},
      transport,
    );
    connections.push(connection);
    await connection.open();
    await expect.poll(() => connection.cursors.cursor(SCOPE)).toBe(3);
    expect(connection.isReady).toBe(true);
    expect(connection.isOpen).toBe(true);
    expect([c.delivered, c.lost, c.duplicates, c.frames, c.streams!.gaps]).toEqual([3, 0, 0, 3, 0]);
    const [[id, length]] = connection.texts!.digests() as [[string, number, string]];
    expect([id, length]).toEqual(['m1', 'héllo 🙂!'.length]);
    // permessage-deflate is offered by `ws` (as browsers do), never by the lean client.
    expect(s.offers[0]?.includes('permessage-deflate') ?? false).toBe(transport === 'ws');
  });

  it('resumes from its cursor after the server cuts it', async () => {
    const s = await server();
    const c = counters();
    const connection = new ClientConnection(
      { url: s.url, protocol: 'sync', scopes: [SCOPE] },
      c,
      () => {},
      transport,
    );
    connections.push(connection);
    await connection.open();
    await expect.poll(() => connection.cursors.cursor(SCOPE)).toBe(3);
    for (const ws of s.wss.clients) ws.terminate();
    await expect.poll(() => s.subscribes.length, { timeout: 5000 }).toBe(2);
    expect(s.subscribes[1]).toEqual({ type: 'subscribe', scope: SCOPE, lastSyncId: 3 });
    expect([c.unexpectedCloses, c.reconnects, c.delivered, c.lost, c.duplicates]).toEqual([1, 1, 3, 0, 0]);
  });
});
