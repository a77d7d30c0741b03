import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { clientTextFrame, LeanWebSocket } from './lean-websocket';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

interface Seen {
  opened: boolean;
  messages: string[];
  errors: string[];
  closes: number;
}

function open(url: string): { ws: LeanWebSocket; seen: Seen; closed: Promise<void>; opened: Promise<void> } {
  const seen: Seen = { opened: false, messages: [], errors: [], closes: 0 };
  let onClose!: () => void;
  let onOpen!: () => void;
  const closed = new Promise<void>((r) => {
    onClose = r;
  });
  const opened = new Promise<void>((r) => {
    onOpen = r;
  });
  const ws = new LeanWebSocket(url, {
    open: () => {
      seen.opened = true;
      onOpen();
    },
    message: (text) => seen.messages.push(text),
    error: (err) => seen.errors.push(err.message),
    close: () => {
      seen.closes++;
      onClose();
    },
  });
  return { ws, seen, closed, opened };
}

/** A server frame (unmasked), with the given first byte. */
function serverFrame(first: number, payload: Buffer): Buffer {
  const n = payload.length;
  const head =
    n < 126
      ? Buffer.from([first, n])
      : n < 65536
        ? Buffer.from([first, 126, n >> 8, n & 0xff])
        : Buffer.from([
            first,
            127,
            0,
            0,
            0,
            0,
            (n >>> 24) & 0xff,
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            n & 0xff,
          ]);
  return Buffer.concat([head, payload]);
}

/**
 * A bare TCP server that answers the upgrade (with the right accept key unless told otherwise)
 * and then writes `frames`, `chunk` bytes at a time.
 */
async function rawServer(
  frames: Buffer[],
  options: { badAccept?: boolean; chunk?: number; extension?: boolean } = {},
): Promise<{ server: Server; url: string; received: Buffer[] }> {
  const received: Buffer[] = [];
  const server = createServer((socket: Socket) => {
    let head = '';
    socket.on('data', (chunk) => {
      if (head.includes('\r\n\r\n')) {
        received.push(chunk);
        return;
      }
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const key = /sec-websocket-key:\s*(\S+)/i.exec(head)![1]!;
      const accept = createHash('sha1')
        .update(options.badAccept ? `${key}x${GUID}` : key + GUID)
        .digest('base64');
      const answer = Buffer.concat([
        Buffer.from(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
            `${options.extension ? 'Sec-WebSocket-Extensions: permessage-deflate\r\n' : ''}\r\n`,
        ),
        ...frames,
      ]);
      const step = options.chunk ?? answer.length;
      for (let at = 0; at < answer.length; at += step) socket.write(answer.subarray(at, at + step));
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return { server, url: `ws://127.0.0.1:${port}/sync?token=t`, received };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('LeanWebSocket', () => {
  it('receives text messages of every length class byte for byte from a real server, and sends', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    cleanups.push(() => wss.close());
    const texts = ['{"a":1}', `"${'é'.repeat(200)}"`, `"${'🙂x'.repeat(30_000)}"`, ''];
    const echoed: string[] = [];
    wss.on('connection', (socket) => {
      socket.on('message', (data) => {
        echoed.push(data.toString());
        for (const t of texts) socket.send(t);
        // A fragmented message: two frames, one message.
        socket.send('{"part":', { fin: false });
        socket.send('"two"}', { fin: true });
      });
    });
    const { port } = wss.address() as { port: number };
    const { ws, seen, opened } = open(`ws://127.0.0.1:${port}/sync`);
    cleanups.push(() => ws.terminate());
    await opened;
    ws.send('{"type":"subscribe","scope":"agent:é"}');
    await expect.poll(() => seen.messages.length).toBe(texts.length + 1);
    expect(seen.messages).toEqual([...texts, '{"part":"two"}']);
    expect(echoed).toEqual(['{"type":"subscribe","scope":"agent:é"}']);
    expect(seen.errors).toEqual([]);
  });

  it('parses frames that arrive one byte per read', async () => {
    const frames = [
      serverFrame(0x81, Buffer.from('{"type":"sync"}')),
      serverFrame(0x81, Buffer.from('x'.repeat(300))),
    ];
    const { server, url } = await rawServer(frames, { chunk: 1 });
    cleanups.push(() => server.close());
    const { ws, seen } = open(url);
    cleanups.push(() => ws.terminate());
    await expect.poll(() => seen.messages.length, { timeout: 5000 }).toBe(2);
    expect(seen.messages).toEqual(['{"type":"sync"}', 'x'.repeat(300)]);
  });

  it('joins a large frame that arrives in many reads', async () => {
    const big = `"${'abcdefgh🙂'.repeat(100_000)}"`;
    const { server, url } = await rawServer(
      [serverFrame(0x81, Buffer.from('{}')), serverFrame(0x81, Buffer.from(big))],
      {
        chunk: 1000,
      },
    );
    cleanups.push(() => server.close());
    const { ws, seen } = open(url);
    cleanups.push(() => ws.terminate());
    await expect.poll(() => seen.messages.length, { timeout: 10_000 }).toBe(2);
    // The large frame comes last: a read that waited for more than the frame holds would hang here.
    expect(seen.messages[0]).toBe('{}');
    expect(seen.messages[1] === big).toBe(true);
    expect(seen.errors).toEqual([]);
  });

  it('answers a ping with a pong carrying its payload, and a close frame with a close', async () => {
    const { server, url, received } = await rawServer([
      serverFrame(0x89, Buffer.from('hi')),
      serverFrame(0x88, Buffer.from([0x03, 0xe8])),
    ]);
    cleanups.push(() => server.close());
    const { seen, closed } = open(url);
    await closed;
    await expect.poll(() => Buffer.concat(received).length).toBeGreaterThanOrEqual(2 * (2 + 4) + 4);
    const bytes = Buffer.concat(received);
    // Pong (0x8a), masked, 2 bytes; then close (0x88), masked, the code 1000.
    expect(bytes[0]).toBe(0x8a);
    expect(bytes[1]).toBe(0x80 | 2);
    const pong = Buffer.from([bytes[6]! ^ bytes[2]!, bytes[7]! ^ bytes[3]!]).toString();
    expect(pong).toBe('hi');
    expect(bytes[8]).toBe(0x88);
    expect(seen.errors).toEqual([]);
    expect(seen.closes).toBe(1);
  });

  it.each([
    ['a wrong Sec-WebSocket-Accept', [], { badAccept: true }, /Sec-WebSocket-Accept/],
    ['an extension that was not offered', [], { extension: true }, /extension/],
    ['invalid UTF-8 in a text message', [serverFrame(0x81, Buffer.from([0x7b, 0xff, 0x7d]))], {}, /UTF-8/],
    ['a masked server frame', [Buffer.from([0x81, 0x81, 0, 0, 0, 0, 0x61])], {}, /mask/],
    ['RSV1 without an extension', [serverFrame(0xc1, Buffer.from('{}'))], {}, /RSV/],
    ['a continuation without a start', [serverFrame(0x80, Buffer.from('{}'))], {}, /continuation/],
    ['a reserved opcode', [serverFrame(0x83, Buffer.from('{}'))], {}, /reserved opcode/],
  ] as const)('fails on %s: an error, then one close, no message', async (_name, frames, options, error) => {
    const { server, url } = await rawServer([...frames], options);
    cleanups.push(() => server.close());
    const { seen, closed } = open(url);
    await closed;
    expect(seen.errors.join()).toMatch(error);
    expect(seen.messages).toEqual([]);
    expect(seen.closes).toBe(1);
  });

  it('masks what it sends', () => {
    const frame = clientTextFrame('{"type":"ping"}');
    expect(frame[0]).toBe(0x81);
    expect(frame[1]).toBe(0x80 | 15);
    const key = frame.subarray(2, 6);
    const payload = Buffer.from(frame.subarray(6).map((b, i) => b ^ key[i & 3]!));
    expect(payload.toString()).toBe('{"type":"ping"}');
  });
});
