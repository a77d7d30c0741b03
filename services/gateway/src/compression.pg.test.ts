import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { connect, type Socket as NetSocket } from 'node:net';
import { constants, createDeflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib';
import { CLOSE_CODES } from '@openagents/sync-protocol';
import { createMemoryBus } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { tokenFor } from '../../../test/support/tokens';
import {
  newScope,
  pgDeltaSource,
  range,
  startGateway,
  TestClient,
  writeEvents,
} from '../test/support/gateway-harness';
import { WS_COMPRESSION_MODES, type WsCompression } from './config';

let db: TestDatabase;
const bus = createMemoryBus();
const MAX_FRAME_BYTES = 4096;
const gateways = {} as Record<WsCompression, Awaited<ReturnType<typeof startGateway>>>;

beforeAll(async () => {
  db = await createTestDatabase('gw_compression');
  for (const mode of WS_COMPRESSION_MODES) {
    gateways[mode] = await startGateway(
      { bus, delta: pgDeltaSource(db.pool) },
      { WS_COMPRESSION: mode, MAX_FRAME_BYTES },
    );
  }
});
afterAll(async () => {
  for (const gw of Object.values(gateways)) await gw.stop();
  await db?.drop();
});

/** A TestClient that also reports the negotiated extensions and counts its socket's bytes. */
async function wireClient(wsUrl: string, token: string, perMessageDeflate: boolean | { threshold: number }) {
  const client = new TestClient(`${wsUrl}?token=${encodeURIComponent(token)}`, { perMessageDeflate });
  let tcp: NetSocket | undefined;
  let extensions = '';
  client.socket.once('upgrade', (res: IncomingMessage) => {
    tcp = res.socket as NetSocket;
    extensions = String(res.headers['sec-websocket-extensions'] ?? '');
  });
  let messageBytes = 0;
  client.socket.on('message', (data: Buffer) => {
    messageBytes += data.byteLength;
  });
  await client.opened;
  return {
    client,
    extensions,
    /** Bytes read from the TCP socket so far, and bytes of the (inflated) messages received. */
    counts: () => ({ wire: tcp!.bytesRead, messages: messageBytes }),
  };
}

describe.each(WS_COMPRESSION_MODES)('WS_COMPRESSION=%s', (mode) => {
  it('delivers every frame intact and in order to clients with and without permessage-deflate', async () => {
    const gw = gateways[mode];
    const scope = newScope();
    const token = await tokenFor([scope]);
    const deflating = await wireClient(gw.wsUrl, token, true);
    const plain = await wireClient(gw.wsUrl, token, false);
    expect(plain.extensions).toBe('');
    if (mode === 'off') expect(deflating.extensions).toBe('');
    else expect(deflating.extensions).toMatch(/^permessage-deflate/);
    for (const { client } of [deflating, plain]) {
      client.subscribe(scope);
      await client.waitFor((f) => f.type === 'subscribed');
    }
    const before = [deflating.counts(), plain.counts()];
    const written = await writeEvents(db.pool, bus, scope, 40, 200);
    for (const { client } of [deflating, plain]) {
      expect(await client.untilEvent(scope, 40)).toEqual(range(1, 40));
      const events = client.frames.flatMap((f) => (f.type === 'sync' ? f.events : []));
      expect(events.map((e) => e.data)).toEqual(written.map((e) => e.data));
    }
    const [d, p] = [deflating.counts(), plain.counts()].map((after, i) => ({
      wire: after.wire - before[i]!.wire,
      messages: after.messages - before[i]!.messages,
    }));
    // The same frames reached both; only a client that negotiated deflate gets fewer bytes than
    // the frames hold (each frame's header adds a few bytes on a plain socket).
    expect(d!.messages).toBe(p!.messages);
    expect(p!.wire).toBeGreaterThan(p!.messages);
    if (mode === 'off') expect(d!.wire).toBeGreaterThan(d!.messages);
    else expect(d!.wire).toBeLessThan(d!.messages * 0.75);
    // Catch-up (frames written to one socket, not published): the same, from cursor 0.
    const late = await wireClient(gw.wsUrl, token, true);
    const start = late.counts();
    late.client.subscribe(scope, 0);
    expect(await late.client.untilEvent(scope, 40)).toEqual(range(1, 40));
    await late.client.waitFor((f) => f.type === 'subscribed');
    const catchUp = {
      wire: late.counts().wire - start.wire,
      messages: late.counts().messages - start.messages,
    };
    if (mode === 'off') expect(catchUp.wire).toBeGreaterThan(catchUp.messages);
    else expect(catchUp.wire).toBeLessThan(catchUp.messages * 0.75);
    for (const c of [deflating, plain, late]) c.client.close();
  });
});

/** A subscribed client on the gateway, to show the node keeps serving after a hostile one. */
async function stillServes(gw: Awaited<ReturnType<typeof startGateway>>) {
  const scope = newScope();
  const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
  client.subscribe(scope);
  await client.waitFor((f) => f.type === 'subscribed');
  await writeEvents(db.pool, bus, scope, 2);
  expect(await client.untilEvent(scope, 2)).toEqual([1, 2]);
  client.close();
}

describe('compressed client frames', () => {
  const gw = () => gateways['dedicated-3kb'];

  it('accepts compressed client frames and answers them', async () => {
    const scope = newScope();
    const { client, extensions } = await wireClient(gw().wsUrl, await tokenFor([scope]), { threshold: 0 });
    expect(extensions).toMatch(/^permessage-deflate/);
    client.subscribe(scope);
    await client.waitFor((f) => f.type === 'subscribed');
    client.send({ type: 'ping', t: 'x'.repeat(64) });
    expect(await client.waitFor((f) => f.type === 'pong')).toEqual({ type: 'pong', t: 'x'.repeat(64) });
    client.close();
  });

  it('closes with 1009 a frame whose inflated size exceeds MAX_FRAME_BYTES, however small compressed', async () => {
    const { client, extensions } = await wireClient(gw().wsUrl, await tokenFor(['*']), { threshold: 0 });
    expect(extensions).toMatch(/^permessage-deflate/);
    // ~600 bytes on the wire, 300 KiB inflated: under uWS's cap, over MAX_FRAME_BYTES.
    client.send({ type: 'ping', t: ' '.repeat(300 * 1024) });
    expect(await client.closed).toBe(CLOSE_CODES.messageTooBig);
    expect(client.closeReason).toMatch(/exceeds 4096 bytes/);
    await stillServes(gw());
  });
});

/**
 * A WebSocket spoken by hand, for frames no client library sends: RSV1 (the "compressed" bit) on
 * invalid deflate data, on a control frame, or on a connection that did not negotiate deflate.
 */
async function rawSocket(port: number, token: string, offerDeflate: boolean) {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk) => chunks.push(chunk));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  socket.write(
    [
      `GET /sync?token=${encodeURIComponent(token)} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      ...(offerDeflate ? ['Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover'] : []),
      '',
      '',
    ].join('\r\n'),
  );
  const head = await new Promise<string>((resolve) => {
    const check = () => {
      const text = Buffer.concat(chunks).toString('latin1');
      if (text.includes('\r\n\r\n')) {
        socket.off('data', check);
        resolve(text.slice(0, text.indexOf('\r\n\r\n')));
      }
    };
    socket.on('data', check);
  });
  chunks.length = 0;
  /** Writes one masked frame: FIN, RSV1 when `compressed`, the opcode and the payload. */
  const frame = (opcode: number, payload: Buffer, compressed: boolean) => {
    const mask = randomBytes(4);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    // The 7-bit length for short payloads (control frames must use it), else the 64-bit one.
    const length = Buffer.alloc(payload.length < 126 ? 1 : 9);
    length[0] = 0x80 | (payload.length < 126 ? payload.length : 127);
    if (payload.length >= 126) length.writeBigUInt64BE(BigInt(payload.length), 1);
    socket.write(
      Buffer.concat([Buffer.from([0x80 | (compressed ? 0x40 : 0) | opcode]), length, mask, masked]),
    );
  };
  /** The first server frame (short ones only): its RSV1 bit and payload. */
  const firstFrame = () =>
    new Promise<{ compressed: boolean; opcode: number; payload: Buffer }>((resolve) => {
      const check = () => {
        const data = Buffer.concat(chunks);
        if (data.length < 2 || data.length < 2 + (data[1]! & 0x7f)) return;
        socket.off('data', check);
        resolve({
          compressed: (data[0]! & 0x40) !== 0,
          opcode: data[0]! & 0x0f,
          payload: data.subarray(2, 2 + (data[1]! & 0x7f)),
        });
      };
      socket.on('data', check);
      check();
    });
  return { head, frame, firstFrame, closed, socket };
}

/** permessage-deflate's encoding of one message: raw deflate, sync flush, its 00 00 FF FF tail dropped. */
function deflateMessage(data: Buffer): Buffer {
  const out = deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

/** `mib` MiB of zeros as one permessage-deflate message (~1/1000 of it), made a MiB at a time. */
async function deflateBomb(mib: number): Promise<Buffer> {
  const z = createDeflateRaw();
  const parts: Buffer[] = [];
  z.on('data', (chunk: Buffer) => parts.push(chunk));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < mib; i++) if (!z.write(zeros)) await new Promise((r) => z.once('drain', r));
  await new Promise<void>((resolve) => z.flush(constants.Z_SYNC_FLUSH, () => resolve()));
  const out = Buffer.concat(parts);
  z.close();
  return out.subarray(0, out.length - 4);
}

describe('hostile compressed frames on a hand-made socket', () => {
  const port = () => Number(new URL(gateways['dedicated-3kb'].url).port);

  it('serves a well-formed compressed text frame written by hand (the helper itself is right)', async () => {
    const raw = await rawSocket(port(), await tokenFor(['*']), true);
    expect(raw.head).toMatch(/^HTTP\/1\.1 101/);
    expect(raw.head).toMatch(/permessage-deflate/i);
    raw.frame(0x1, deflateMessage(Buffer.from(JSON.stringify({ type: 'ping', t: 'hand' }))), true);
    const reply = await raw.firstFrame();
    expect(reply.compressed).toBe(true);
    const text = inflateRawSync(reply.payload, { finishFlush: constants.Z_SYNC_FLUSH }).toString();
    expect(JSON.parse(text)).toEqual({ type: 'pong', t: 'hand' });
    raw.socket.destroy();
  });

  it('cuts a deflate bomb at the inflate cap without inflating it whole; the node keeps serving', async () => {
    const bomb = await deflateBomb(256);
    expect(bomb.length).toBeLessThan(1024 * 1024); // under uWS's frame cap: only its inflated size is too big
    const raw = await rawSocket(port(), await tokenFor(['*']), true);
    expect(raw.head).toMatch(/permessage-deflate/i);
    const rss = process.memoryUsage().rss;
    raw.frame(0x1, bomb, true);
    await raw.closed;
    // Inflated whole it would take 256 MiB in this process (the gateway runs in it).
    expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 1024 * 1024);
    await stillServes(gateways['dedicated-3kb']);
  });

  it('answers a compressed ping (RSV1 on a control frame) as a plain one: its payload is not inflated', async () => {
    const raw = await rawSocket(port(), await tokenFor(['*']), true);
    const payload = deflateMessage(Buffer.from('ping'));
    raw.frame(0x9, payload, true);
    const reply = await raw.firstFrame();
    expect(reply).toEqual({ compressed: false, opcode: 0xa, payload });
    raw.socket.destroy();
    await stillServes(gateways['dedicated-3kb']);
  });

  it.each([
    ['invalid deflate data', true, 0x1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x12, 0x34])],
    [
      'RSV1 on a connection that did not negotiate deflate',
      false,
      0x1,
      deflateMessage(Buffer.from('{"type":"ping"}')),
    ],
  ])('closes the connection on %s and keeps serving', async (_name, offer, opcode, payload) => {
    const raw = await rawSocket(port(), await tokenFor(['*']), offer);
    expect(raw.head).toMatch(/^HTTP\/1\.1 101/);
    raw.frame(opcode, payload, true);
    await raw.closed;
    await stillServes(gateways['dedicated-3kb']);
  });
});
