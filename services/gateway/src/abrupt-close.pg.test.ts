/**
 * How connections end, seen on the wire (a raw TCP client, test/support/raw-ws.ts): every close the
 * gateway itself decides carries a close frame with a contract code; what uWS drops on its own
 * (WebSocket protocol violations, a client that stopped answering pings) ends without one — the
 * 1006 a client reports — and is pinned here as uWS's behaviour, logged with uWS's reason, costing
 * only that connection. And a second server on the gateway's port fails instead of silently
 * sharing it (uWS binds with SO_REUSEPORT unless told not to): clients landing on the other
 * process would drop with 1006 whenever it went away.
 */

import { request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import { Writable } from 'node:stream';
import { CLOSE_CODES } from '@openagents/sync-protocol';
import { createMemoryBus, createRegistry } from '@openagents/sync-server-kit';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import {
  clientFrame,
  closeOf,
  OPCODE,
  PROTOCOL_VIOLATIONS,
  RawWebSocket,
} from '../../../test/support/raw-ws';
import { TEST_JWT_SECRET, tokenFor } from '../../../test/support/tokens';
import { auth, pgDeltaSource, startGateway } from '../test/support/gateway-harness';
import { gatewayDefaults } from './config';
import { createGateway } from './gateway';

const MAX_FRAME_BYTES = 4096;

let db: TestDatabase;
const bus = createMemoryBus();
/** The gateway's log lines (JSON), to see what it said about each close. */
const logLines: Record<string, unknown>[] = [];
const log = pino(
  { level: 'info' },
  new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) logLines.push(JSON.parse(line));
      done();
    },
  }),
);
let gw: Awaited<ReturnType<typeof startGateway>>;

beforeAll(async () => {
  db = await createTestDatabase('gw_abrupt');
  gw = await startGateway(
    { bus, delta: pgDeltaSource(db.pool), log },
    { MAX_FRAME_BYTES, FRAME_RATE_PER_SECOND: 50, FRAME_BURST: 20 },
  );
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

async function connect(url = gw.wsUrl, ttlSeconds = 3600): Promise<RawWebSocket> {
  const token = await tokenFor(['agent:*'], 'raw-client', ttlSeconds);
  return RawWebSocket.connect(`${url}?token=${encodeURIComponent(token)}`);
}

/** The 'connection closed' lines the gateway logged so far. */
const closeLogs = () => logLines.filter((l) => l.msg === 'connection closed');

describe('closes the gateway decides', () => {
  it('each carries a close frame with its contract code, then the server ends the TCP connection', async () => {
    const cases: { name: string; code: number; act: (ws: RawWebSocket) => Promise<void> | void }[] = [
      {
        name: 'a frame over MAX_FRAME_BYTES',
        code: CLOSE_CODES.messageTooBig,
        act: (ws) => ws.send(JSON.stringify({ type: 'ping', t: 'x'.repeat(MAX_FRAME_BYTES) })),
      },
      {
        name: 'a client that keeps sending past the rate limit',
        code: CLOSE_CODES.policyViolation,
        act: (ws) => {
          for (let i = 0; i < 60; i++) ws.send(JSON.stringify({ type: 'ping', t: i }));
        },
      },
    ];
    for (const c of cases) {
      const ws = await connect();
      await c.act(ws);
      await ws.ends();
      const close = ws.closeFrame;
      expect(close, `${c.name}: a close frame before the end`).toBeDefined();
      expect(closeOf(close!).code, c.name).toBe(c.code);
      expect(ws.ended, `${c.name}: a FIN after the close frame, not a reset`).toBe('fin');
    }
  });

  it('a token that expires while connected: 1008 with a close frame', async () => {
    const ws = await connect(gw.wsUrl, 1);
    await ws.ends(15_000);
    expect(closeOf(ws.closeFrame!).code).toBe(CLOSE_CODES.policyViolation);
  });
});

describe('what uWS drops on its own (pinned: no close frame, a client sees 1006)', () => {
  const violations = PROTOCOL_VIOLATIONS;

  it('ends the connection without a close frame, logs uWS reason with code 1006, and keeps serving', async () => {
    const bystander = await connect();
    let t = 0;
    for (const v of violations) {
      const ws = await connect();
      // Answered first: the connection works until the violation.
      await ws.settle(++t);
      const closesBefore = closeLogs().length;
      ws.write(...v.frames);
      await ws.ends();
      expect(ws.closeFrame, `${v.name}: uWS sends no close frame`).toBeUndefined();
      await expect.poll(() => closeLogs().length, { timeout: 5000 }).toBe(closesBefore + 1);
      const logged = closeLogs().at(-1)!;
      expect(logged.code, v.name).toBe(1006);
      expect(logged.reason, v.name).toBe(v.reason);
      // Only that connection: the node still answers another one.
      await bystander.settle(++t);
    }
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    const dropped = Number(/^sync_gateway_disconnects_total\{code="1006"[^}]*\} (\d+)/m.exec(metrics)?.[1]);
    expect(dropped).toBeGreaterThanOrEqual(violations.length);
    bystander.destroy();
  });

  it('takes what the protocol allows: a fragmented message, a 125-byte ping, an unsolicited pong', async () => {
    const ws = await connect();
    ws.write(
      clientFrame(OPCODE.text, '{"type":"pi', { fin: false }),
      clientFrame(OPCODE.continuation, 'ng","t":', { fin: false }),
      // A control frame may come between the fragments of a message.
      clientFrame(OPCODE.ping, Buffer.alloc(125, 0x62)),
      clientFrame(OPCODE.continuation, '"€1"}'),
      clientFrame(OPCODE.pong, 'unsolicited'),
    );
    await ws.until(() => ws.texts.some((x) => x.includes('"t":"€1"')), 'the pong of the fragmented ping');
    const pong = ws.frames.find((f) => f.opcode === OPCODE.pong);
    expect(pong?.payload.equals(Buffer.alloc(125, 0x62))).toBe(true);
    await ws.settle(1);
    expect(ws.ended).toBe('open');
    ws.destroy();
  });

  it('a client that stops answering pings is dropped after IDLE_TIMEOUT_SECONDS, with uWS reason', async () => {
    const idle = await startGateway({ bus, delta: pgDeltaSource(db.pool), log }, { IDLE_TIMEOUT_SECONDS: 8 });
    try {
      const ws = await connect(idle.wsUrl);
      await ws.ends(20_000);
      // uWS pinged first (a client that answers stays), then gave up without a close frame.
      expect(ws.frames.some((f) => f.opcode === OPCODE.ping)).toBe(true);
      expect(ws.closeFrame).toBeUndefined();
      await expect
        .poll(() => closeLogs().some((l) => l.reason === 'WebSocket timed out from inactivity'))
        .toBe(true);
    } finally {
      await idle.stop();
    }
  }, 30_000);
});

describe('HTTP on the gateway port', () => {
  it('a route that throws is answered 500 and costs nothing else (a throw into uWS ends the process)', async () => {
    const throwing = await startGateway(
      {
        bus,
        delta: pgDeltaSource(db.pool),
        log,
        acceptsHost: (host) => {
          if (host === 'explode.example') throw new Error('host check blew up');
          return true;
        },
      },
      {},
    );
    try {
      const ws = await connect(throwing.wsUrl);
      await ws.settle(1);
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`${throwing.url}/healthz`, { headers: { host: 'explode.example' } }, (r) => {
          let body = '';
          r.on('data', (c) => {
            body += c;
          });
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(res.status).toBe(500);
      expect(JSON.parse(res.body).error.code).toBe('internal');
      // The node and its connections carry on.
      await ws.settle(2);
      expect((await fetch(`${throwing.url}/healthz`)).status).toBe(200);
      ws.destroy();
    } finally {
      await throwing.stop();
    }
  });
});

describe('the port', () => {
  it('a second server on a taken port fails to listen instead of sharing it', async () => {
    // An explicit port, as PORT gives one (the kernel never shares a port it picked for port 0).
    const port = await freePort();
    const newGateway = (name: string) =>
      createGateway({
        config: gatewayDefaults({ SYNC_JWT_SECRET: TEST_JWT_SECRET }),
        auth,
        bus,
        delta: pgDeltaSource(db.pool),
        log,
        registry: createRegistry(name, { defaultMetrics: false }),
      });
    const first = newGateway('gateway-first');
    const second = newGateway('gateway-second');
    try {
      await first.listen(port);
      await expect(second.listen(port)).rejects.toThrow(/could not listen/);
      await expect(second.listen(port, '127.0.0.1')).rejects.toThrow(/could not listen/);
      // Every connection reaches the first gateway.
      for (let i = 0; i < 8; i++) {
        const ws = await connect(`ws://127.0.0.1:${port}/sync`);
        await ws.settle(i);
        ws.destroy();
      }
      await expect.poll(() => first.connectionCount).toBe(0);
      expect(second.connectionCount).toBe(0);
    } finally {
      await second.stop();
      await first.stop();
    }
  });
});

describe('the handshake', () => {
  /** A raw handshake with this Connection header; resolves with the status line and whether the
   *  socket then stayed open long enough to answer a ping (false when the server ended it). */
  async function handshake(connection: string): Promise<{ status: string; answered: boolean }> {
    const token = await tokenFor(['agent:*'], 'raw-client');
    const url = new URL(gw.wsUrl);
    return new Promise((resolve) => {
      const socket = netConnect(Number(url.port), url.hostname);
      let text = '';
      let status = '';
      socket.on('connect', () =>
        socket.write(
          `GET ${url.pathname}?token=${encodeURIComponent(token)} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\n` +
            `Connection: ${connection}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        ),
      );
      socket.on('data', (chunk) => {
        text += chunk.toString('latin1');
        if (!status && text.includes('\r\n\r\n')) {
          status = text.slice(0, text.indexOf('\r\n'));
          if (status.includes(' 101 ')) socket.write(clientFrame(OPCODE.ping, Buffer.from('hi')));
          else socket.end();
        } else if (status.includes(' 101 ') && text.length > text.indexOf('\r\n\r\n') + 4) {
          socket.destroy();
          resolve({ status, answered: true });
        }
      });
      socket.on('close', () => resolve({ status, answered: false }));
      socket.on('error', () => {});
    });
  }

  it('refuses a handshake whose Connection header lacks "Upgrade" with 400, never a 101 and a drop', async () => {
    // uWS alone upgrades these (and with "close" its cork wrapper can then drop the fresh socket
    // after an asynchronous upgrade: uNetworking/uWebSockets#1928).
    expect(await handshake('close')).toEqual({ status: 'HTTP/1.1 400 Bad Request', answered: false });
    expect((await handshake('keep-alive')).status).toBe('HTTP/1.1 400 Bad Request');
    // Listed with other tokens, in any case, it is a handshake.
    expect(await handshake('keep-alive, Upgrade')).toEqual({
      status: 'HTTP/1.1 101 Switching Protocols',
      answered: true,
    });
    expect(await handshake('upgrade')).toEqual({
      status: 'HTTP/1.1 101 Switching Protocols',
      answered: true,
    });
  });
});
