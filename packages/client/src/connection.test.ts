import type { ClientFrame } from '@openagents/sync-protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Connection, type WebSocketLike } from './connection';
import { TokenSource } from './token-source';

class ScriptedSocket implements WebSocketLike {
  static all: ScriptedSocket[] = [];
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  sent: ClientFrame[] = [];
  constructor(readonly url: string) {
    ScriptedSocket.all.push(this);
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

/** An unsigned JWT-shaped token whose `exp` the client can read. */
const jwt = (expMs: number, n: number) =>
  `h.${btoa(JSON.stringify({ exp: Math.floor(expMs / 1000), n })).replace(/=+$/, '')}.s`;

const hooks = { opened() {}, message() {}, dropped() {}, status() {}, report() {} };

function connect(tokens: TokenSource) {
  const connection = new Connection({
    url: 'ws://sync.test/sync',
    WebSocket: ScriptedSocket,
    tokens,
    backoff: { initialDelayMs: 5, maxDelayMs: 10 },
    pingIntervalMs: 3_600_000,
    pongTimeoutMs: 10_000,
    drainJitterMs: 5,
    refreshAfterFailures: 2,
    network: undefined,
    hooks,
  });
  connection.connect();
  return connection;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
  ScriptedSocket.all = [];
});

describe('token refresh on an open socket', () => {
  it('refreshes before exp and sends the new token as an auth frame instead of reconnecting', async () => {
    let n = 0;
    const getToken = vi.fn(async () => jwt(Date.now() + 120_000, ++n));
    const tokens = new TokenSource({ token: jwt(Date.now() + 60_000, 0), getToken, refreshMarginMs: 10_000 });
    const connection = connect(tokens);
    await vi.advanceTimersByTimeAsync(0);
    const socket = ScriptedSocket.all[0]!;
    socket.open();

    await vi.advanceTimersByTimeAsync(49_000);
    expect(getToken).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(socket.sent).toEqual([{ type: 'auth', token: jwt(1_000_000_000_000 + 50_000 + 120_000, 1) }]);
    // And again before the new token runs out, on the same socket.
    await vi.advanceTimersByTimeAsync(110_000);
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(socket.sent.map((f) => f.type)).toEqual(['auth', 'auth']);
    expect(ScriptedSocket.all).toHaveLength(1);
    connection.close();
  });

  it('sends a token refreshed elsewhere (e.g. after an HTTP 401) on the open socket', async () => {
    const tokens = new TokenSource({ token: 'opaque', getToken: async () => 'fresh' });
    const connection = connect(tokens);
    await vi.advanceTimersByTimeAsync(0);
    ScriptedSocket.all[0]!.open();
    await tokens.refresh();
    expect(ScriptedSocket.all[0]!.sent).toEqual([{ type: 'auth', token: 'fresh' }]);
    connection.close();
  });

  it('sends nothing while no socket is open, and nothing when getToken fails', async () => {
    let fail = false;
    const tokens = new TokenSource({
      token: jwt(Date.now() + 60_000, 0),
      getToken: async () => {
        if (fail) throw new Error('offline');
        return jwt(Date.now() + 60_000, 9);
      },
      refreshMarginMs: 10_000,
    });
    const connection = connect(tokens);
    await vi.advanceTimersByTimeAsync(0);
    await tokens.refresh();
    const socket = ScriptedSocket.all[0]!;
    expect(socket.sent).toEqual([]);
    socket.open();
    fail = true;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(socket.sent).toEqual([]);
    connection.close();
  });
});
