import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type WebSocket from 'ws';
import { WebSocketServer } from 'ws';
import { ClientConnection, type ConnectionCounters, newConnectionCounters } from './client-connection';

/**
 * The driver's viewer against a plain WebSocket server that speaks the contract's frames: after an
 * `internal` (or `rate_limited`) error frame for one of its scopes it subscribes again from the
 * cursor it holds, as the contract asks a client to; other errors are only counted. The retry's
 * jittered pause (100–500 ms) is a fake timer.
 */
const servers: WebSocketServer[] = [];
const connections: ClientConnection[] = [];
afterEach(async () => {
  for (const c of connections.splice(0)) c.close();
  vi.useRealTimers();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

function counters(): ConnectionCounters {
  return newConnectionCounters();
}

/** A server that records every frame the client sends and lets the test send frames back. */
async function server() {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  servers.push(wss);
  await new Promise((resolve) => wss.once('listening', resolve));
  const received: Record<string, unknown>[] = [];
  let socket: WebSocket | undefined;
  const arrived: (() => void)[] = [];
  wss.on('connection', (ws) => {
    socket = ws;
    ws.on('message', (data) => {
      received.push(JSON.parse(data.toString()) as Record<string, unknown>);
      for (const wake of arrived.splice(0)) wake();
    });
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/sync`,
    received,
    send: (frame: object) => socket!.send(JSON.stringify(frame)),
    /** Resolves once `count` frames have arrived in all. */
    async frames(count: number) {
      while (received.length < count) await new Promise<void>((resolve) => arrived.push(resolve));
    },
  };
}

/** Lets frames cross the loopback socket (real I/O; only timers are fake). */
const io = () => new Promise((resolve) => setImmediate(resolve));

async function subscribed(scopes: string[]) {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const s = await server();
  const c = new ClientConnection({ url: s.url, protocol: 'sync', scopes }, counters(), () => {});
  connections.push(c);
  await c.open();
  await s.frames(scopes.length);
  for (const scope of scopes) s.send({ type: 'subscribed', scope, lastSyncId: 5 });
  s.send({
    type: 'sync',
    scope: scopes[0],
    events: [
      {
        id: 6,
        created_at: new Date().toISOString(),
        model: 'Agent',
        model_id: 'a',
        action: 'update',
        data: {},
      },
    ],
  });
  for (let i = 0; i < 20 && c.cursors.cursor(scopes[0]!) !== 6; i++) await io();
  expect(c.cursors.cursor(scopes[0]!)).toBe(6);
  return { s, c };
}

describe('driver viewer: error frames', () => {
  it('subscribes again from its cursor after an internal error for its scope', async () => {
    const { s } = await subscribed(['agent:1', 'agent:2']);
    s.send({ type: 'error', code: 'internal', scope: 'agent:1', message: 'try again' });
    for (let i = 0; i < 5; i++) await io();
    expect(s.received).toHaveLength(2); // not at once: after a jittered pause
    vi.advanceTimersByTime(500);
    await s.frames(3);
    expect(s.received[2]).toEqual({ type: 'subscribe', scope: 'agent:1', lastSyncId: 6 });
  });

  it('does the same after rate_limited, and only counts other errors or foreign scopes', async () => {
    const { s, c } = await subscribed(['agent:1']);
    s.send({ type: 'error', code: 'forbidden', scope: 'agent:1' });
    s.send({ type: 'error', code: 'internal', scope: 'agent:9' });
    s.send({ type: 'error', code: 'rate_limited', scope: 'agent:1' });
    for (let i = 0; i < 5; i++) await io();
    vi.advanceTimersByTime(500);
    await s.frames(2);
    for (let i = 0; i < 5; i++) await io();
    vi.advanceTimersByTime(500);
    for (let i = 0; i < 5; i++) await io();
    expect(s.received.slice(1)).toEqual([{ type: 'subscribe', scope: 'agent:1', lastSyncId: 6 }]);
    expect(c.isOpen).toBe(true);
  });

  it('does not subscribe again once the connection was dropped', async () => {
    const { s, c } = await subscribed(['agent:1']);
    s.send({ type: 'error', code: 'internal', scope: 'agent:1' });
    for (let i = 0; i < 5; i++) await io();
    c.drop();
    vi.advanceTimersByTime(500);
    for (let i = 0; i < 5; i++) await io();
    expect(s.received).toHaveLength(1);
  });
});
