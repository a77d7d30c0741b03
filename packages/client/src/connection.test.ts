import { CLOSE_CODES, type ClientFrame } from '@openagents/sync-protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Connection, type ConnectionOptions, type NetworkMonitor, type WebSocketLike } from './connection';
import { TokenSource } from './token-source';
import type { ConnectionStatus } from './types';

/**
 * An in-memory WebSocket the test drives by hand: `open()`, `receive()`, and `serverClose()` play
 * the server's part; `closedWith` records the code the client closed with.
 */
class ScriptedSocket implements WebSocketLike {
  static all: ScriptedSocket[] = [];
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  sent: ClientFrame[] = [];
  closedWith: { code: number | undefined; reason: string | undefined } | undefined;
  constructor(readonly url: string) {
    ScriptedSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code?: number, reason?: string) {
    this.readyState = 3;
    this.closedWith = { code, reason };
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(data: unknown) {
    this.onmessage?.({ data });
  }
  /** The server (or the network) ends the socket; an upgrade that never opened closes with 1006. */
  serverClose(code: number, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  get token() {
    return new URL(this.url).searchParams.get('token');
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

/** The device's network state, switched by the test. */
class FakeNetwork implements NetworkMonitor {
  onLine = true;
  readonly listeners = new Set<() => void>();
  addEventListener(type: 'online' | 'offline', listener: () => void) {
    if (type === 'online') this.listeners.add(listener);
  }
  removeEventListener(type: 'online' | 'offline', listener: () => void) {
    if (type === 'online') this.listeners.delete(listener);
  }
  goOnline() {
    this.onLine = true;
    for (const listener of [...this.listeners]) listener();
  }
}

/**
 * A connection with recording hooks. Backoff bounds are 1 s × 2^attempt capped at 8 s, and the
 * jitter draws from `randoms` in turn (then 0.5), so every wait is known exactly.
 */
function scripted(options: Partial<ConnectionOptions> & { randoms?: number[] } = {}) {
  const { randoms = [], ...overrides } = options;
  const statuses: ConnectionStatus[] = [];
  const reports: string[] = [];
  const messages: string[] = [];
  const counts = { opened: 0, dropped: 0 };
  const random = vi.fn(() => randoms.shift() ?? 0.5);
  const connection = new Connection({
    url: 'ws://sync.test/sync',
    WebSocket: ScriptedSocket,
    tokens: new TokenSource({ token: 'opaque' }),
    backoff: { initialDelayMs: 1_000, multiplier: 2, maxDelayMs: 8_000, random },
    pingIntervalMs: 3_600_000,
    pongTimeoutMs: 10_000,
    drainJitterMs: 5_000,
    refreshAfterFailures: 3,
    network: undefined,
    hooks: {
      opened: () => counts.opened++,
      message: (text) => messages.push(text),
      dropped: () => counts.dropped++,
      status: (status) => statuses.push(status),
      report: (error) => reports.push(error.code),
    },
    ...overrides,
  });
  return { connection, statuses, reports, messages, counts, random };
}

const sockets = () => ScriptedSocket.all;
const latest = () => ScriptedSocket.all.at(-1)!;

/** Asserts that no new socket appears for `ms - 1` milliseconds, and one appears at `ms`. */
async function expectReconnectAfter(ms: number) {
  const before = sockets().length;
  await vi.advanceTimersByTimeAsync(ms - 1);
  expect(sockets()).toHaveLength(before);
  await vi.advanceTimersByTimeAsync(1);
  expect(sockets()).toHaveLength(before + 1);
}

/** Opens the latest socket and lets a server frame arrive (which resets the backoff). */
function openAndHear() {
  latest().open();
  latest().receive(JSON.stringify({ type: 'pong', t: '0' }));
}

describe('reconnect with backoff', () => {
  it('waits a jittered, doubling, capped delay after each upgrade that fails', async () => {
    // Bounds 1 s, 2 s, 4 s, 8 s, 8 s (cap) times the draws below.
    const { connection, statuses, reports, random } = scripted({ randoms: [0.5, 0.25, 0.75, 0.5, 0.9] });
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    expect(statuses).toEqual(['connecting']);
    for (const delay of [500, 500, 3_000, 4_000, 7_200]) {
      latest().serverClose(1006);
      expect(connection.status).toBe('reconnecting');
      await expectReconnectAfter(delay);
    }
    expect(random).toHaveBeenCalledTimes(5);
    expect(reports).toEqual(Array(5).fill('connect_failed'));
    connection.close();
  });

  it('resets the attempt count at the first server frame on a new socket, not at open', async () => {
    const { connection, counts, reports } = scripted();
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    latest().serverClose(1006);
    await expectReconnectAfter(500);
    latest().serverClose(1006);
    await expectReconnectAfter(1_000);
    // Accepts, then closes before saying anything: still counts as a failed attempt.
    latest().open();
    latest().serverClose(1011, 'boom');
    await expectReconnectAfter(2_000);
    // Says something first: the next wait starts over.
    openAndHear();
    latest().serverClose(1011, 'boom');
    await expectReconnectAfter(500);
    expect(counts).toEqual({ opened: 2, dropped: 2 });
    expect(reports).toEqual(['connect_failed', 'connect_failed', 'close_1011', 'close_1011']);
    connection.close();
  });

  it('retryNow skips the wait; a socket constructor that throws is reported and retried', async () => {
    let throws = true;
    class Refusing extends ScriptedSocket {
      constructor(url: string) {
        if (throws) throw new Error('bad url');
        super(url);
      }
    }
    const { connection, reports } = scripted({ WebSocket: Refusing });
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    expect(reports).toEqual(['socket_error']);
    expect(connection.status).toBe('reconnecting');
    throws = false;
    connection.retryNow();
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets()).toHaveLength(1);
    connection.close();
  });

  it('keeps one socket when connect() is called again while the token is being fetched', async () => {
    let release!: (token: string) => void;
    const tokens = new TokenSource({ getToken: () => new Promise<string>((r) => (release = r)) });
    const { connection } = scripted({ tokens });
    connection.connect();
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    connection.connect();
    release('t1');
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets().map((s) => s.token)).toEqual(['t1']);
    connection.close();
  });
});

describe('close codes', () => {
  it('a drain (1012) reconnects within drainJitterMs, reports nothing and does not grow the backoff', async () => {
    const { connection, reports, counts } = scripted({ randoms: [0.5, 0.5] });
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    openAndHear();
    latest().serverClose(CLOSE_CODES.serviceRestart, 'draining');
    expect(counts.dropped).toBe(1);
    // A uniform draw over [0, 5 s): 0.5 → 2.5 s, whatever the attempt count.
    await expectReconnectAfter(2_500);
    latest().serverClose(1006);
    await expectReconnectAfter(500);
    expect(reports).toEqual(['connect_failed']);
    connection.close();
  });

  it('a slow-consumer close (1013) reconnects after backoff without an error entry', async () => {
    const { connection, reports } = scripted();
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    openAndHear();
    latest().serverClose(CLOSE_CODES.tryAgainLater, 'resume from your cursor');
    await expectReconnectAfter(500);
    expect(reports).toEqual([]);
    connection.close();
  });

  it('a policy close (1008) refreshes the token before the next socket', async () => {
    let n = 0;
    const getToken = vi.fn(async () => `fresh-${++n}`);
    const tokens = new TokenSource({ token: 'opaque', getToken });
    const { connection, reports } = scripted({ tokens });
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    expect(latest().token).toBe('opaque');
    openAndHear();
    latest().serverClose(CLOSE_CODES.policyViolation, 'token expired');
    await expectReconnectAfter(500);
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(latest().token).toBe('fresh-1');
    expect(reports).toEqual(['close_1008']);
    connection.close();
  });

  it('a frame too big (1009) is reported as such and retried after backoff', async () => {
    const { connection, reports } = scripted();
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    openAndHear();
    latest().serverClose(CLOSE_CODES.messageTooBig, '');
    await expectReconnectAfter(500);
    expect(reports).toEqual(['message_too_big', 'close_1009']);
    connection.close();
  });

  it('refreshes the token after refreshAfterFailures upgrades fail in a row (a 401 looks like a close)', async () => {
    const getToken = vi.fn(async () => 'fresh');
    const tokens = new TokenSource({ token: 'opaque', getToken });
    const { connection } = scripted({ tokens, refreshAfterFailures: 3, randoms: [0, 0, 0, 0] });
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 3; i++) {
      latest().serverClose(1006);
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(sockets().map((s) => s.token)).toEqual(['opaque', 'opaque', 'opaque', 'fresh']);
    expect(getToken).toHaveBeenCalledTimes(1);
    connection.close();
  });
});

describe('ping deadline', () => {
  it('closes a socket that sends nothing within pongTimeoutMs of a ping, and reconnects', async () => {
    const { connection, reports, counts, statuses } = scripted({
      pingIntervalMs: 10_000,
      pongTimeoutMs: 5_000,
    });
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    const socket = latest();
    openAndHear();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(socket.sent).toEqual([{ type: 'ping', t: Date.now() }]);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(socket.closedWith).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.closedWith).toEqual({ code: 4000, reason: 'ping timeout' });
    expect(counts.dropped).toBe(1);
    expect(reports).toEqual(['ping_timeout']);
    expect(statuses.at(-1)).toBe('reconnecting');
    await expectReconnectAfter(500);
    connection.close();
  });

  it('keeps a socket that answers, pinging again every interval', async () => {
    const { connection, reports } = scripted({ pingIntervalMs: 10_000, pongTimeoutMs: 5_000 });
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    const socket = latest();
    openAndHear();
    for (let i = 1; i <= 3; i++) {
      // A ping every 10 s; the answer comes 4 s later, inside the 5 s deadline.
      await vi.advanceTimersByTimeAsync(i === 1 ? 10_000 : 6_000);
      expect(socket.sent).toHaveLength(i);
      await vi.advanceTimersByTimeAsync(4_000);
      socket.receive(JSON.stringify({ type: 'pong', t: '1' }));
    }
    expect(socket.closedWith).toBeUndefined();
    expect(reports).toEqual([]);
    expect(sockets()).toHaveLength(1);
    connection.close();
  });

  it('reports a binary frame instead of passing it on, and counts it as hearing from the server', async () => {
    const { connection, reports, messages } = scripted({ pingIntervalMs: 10_000, pongTimeoutMs: 5_000 });
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    latest().open();
    latest().receive('{"type":"pong","t":"a"}');
    await vi.advanceTimersByTimeAsync(10_000);
    latest().receive(new Uint8Array([1]));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(latest().closedWith).toBeUndefined();
    expect(messages).toEqual(['{"type":"pong","t":"a"}']);
    expect(reports).toEqual(['binary_frame']);
    connection.close();
  });
});

describe('offline and online', () => {
  it('a close while the device is offline waits for the online event, not a timer', async () => {
    const network = new FakeNetwork();
    const { connection } = scripted({ network });
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    openAndHear();
    network.onLine = false;
    latest().serverClose(1006);
    expect(connection.status).toBe('offline');
    await vi.advanceTimersByTimeAsync(600_000);
    expect(sockets()).toHaveLength(1);
    network.goOnline();
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets()).toHaveLength(2);
    expect(network.listeners.size).toBe(0);
    connection.close();
  });

  it('networkLost drops an open socket at once (4001) and cancels a pending retry', async () => {
    const network = new FakeNetwork();
    const { connection, counts, statuses } = scripted({ network });
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    const socket = latest();
    openAndHear();
    network.onLine = false;
    connection.networkLost();
    expect(socket.closedWith).toEqual({ code: 4001, reason: 'network offline' });
    expect(counts.dropped).toBe(1);
    expect(statuses.at(-1)).toBe('offline');
    connection.networkLost();
    expect(network.listeners.size).toBe(1);
    network.goOnline();
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets()).toHaveLength(2);
    // Lost again while waiting out a backoff: the timer is dropped, online alone reconnects.
    latest().serverClose(1006);
    expect(connection.status).toBe('reconnecting');
    network.onLine = false;
    connection.networkLost();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(sockets()).toHaveLength(2);
    network.goOnline();
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets()).toHaveLength(3);
    connection.close();
  });

  it('without a network monitor, networkLost falls back to the backoff', async () => {
    const { connection } = scripted();
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    openAndHear();
    connection.networkLost();
    expect(latest().closedWith?.code).toBe(4001);
    await expectReconnectAfter(500);
    connection.close();
  });
});

describe('disconnect and close', () => {
  it('disconnect closes normally and stops reconnecting until connect(); close is terminal', async () => {
    const network = new FakeNetwork();
    const { connection, counts } = scripted({ network });
    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    const first = latest();
    openAndHear();
    connection.disconnect();
    expect(first.closedWith).toEqual({ code: 1000, reason: 'client disconnect' });
    expect(counts.dropped).toBe(1);
    expect(connection.status).toBe('idle');
    expect(connection.send({ type: 'ping', t: 1 })).toBe(false);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(sockets()).toHaveLength(1);

    connection.connect();
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets()).toHaveLength(2);
    // Closing while offline also stops listening for `online`.
    network.onLine = false;
    latest().serverClose(1006);
    expect(network.listeners.size).toBe(1);
    connection.close();
    expect(network.listeners.size).toBe(0);
    expect(connection.status).toBe('closed');
    connection.connect();
    network.goOnline();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(sockets()).toHaveLength(2);
  });
});
