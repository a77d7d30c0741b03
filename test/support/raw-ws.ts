/**
 * A WebSocket client over a bare TCP socket, for tests that must send what no WebSocket library
 * will (invalid UTF-8, reserved opcodes, RSV bits, oversized control frames, broken fragments)
 * and see exactly what the server answers: every frame, whether a close frame came (and its code)
 * or the TCP connection just ended — the difference a browser reports as 1006.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export const OPCODE = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** One client frame's bytes: masked (as a client must) unless `mask` is false. */
export function clientFrame(
  opcode: number,
  payload: string | Uint8Array,
  options: { fin?: boolean; rsv?: number; mask?: boolean } = {},
): Buffer {
  const { fin = true, rsv = 0, mask = true } = options;
  const body = Buffer.from(payload);
  const first = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  const maskBit = mask ? 0x80 : 0;
  let head: Buffer;
  if (body.length < 126) head = Buffer.from([first, maskBit | body.length]);
  else if (body.length < 65536) {
    head = Buffer.from([first, maskBit | 126, 0, 0]);
    head.writeUInt16BE(body.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(BigInt(body.length), 2);
  }
  if (!mask) return Buffer.concat([head, body]);
  const key = randomBytes(4);
  const masked = Buffer.alloc(body.length);
  for (let i = 0; i < body.length; i++) masked[i] = body[i]! ^ key[i % 4]!;
  return Buffer.concat([head, key, masked]);
}

/**
 * Client frames that break the WebSocket protocol (RFC 6455), which uWS's parser refuses before the
 * gateway sees anything: uWS ends the connection without a close frame (a client sees 1006),
 * giving the gateway's close handler `reason` when it has one. No browser or library sends these.
 */
export const PROTOCOL_VIOLATIONS: readonly { name: string; frames: Buffer[]; reason?: string }[] = [
  {
    name: 'invalid UTF-8 in a text frame',
    frames: [clientFrame(OPCODE.text, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))],
    reason: 'Received invalid UTF-8',
  },
  {
    name: 'invalid UTF-8 split across fragments',
    frames: [
      clientFrame(OPCODE.text, Buffer.from([0x7b, 0xe2, 0x82]), { fin: false }),
      clientFrame(OPCODE.continuation, Buffer.from([0x28, 0x7d])),
    ],
    reason: 'Received invalid UTF-8',
  },
  {
    name: 'a length past the hard cap',
    frames: [Buffer.concat([Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0x7f, 0, 0, 0]), Buffer.alloc(4)])],
    reason: 'Received too big message',
  },
  { name: 'a control frame over 125 bytes', frames: [clientFrame(OPCODE.ping, Buffer.alloc(126, 0x61))] },
  { name: 'a fragmented control frame', frames: [clientFrame(OPCODE.ping, 'x', { fin: false })] },
  { name: 'reserved opcode 3', frames: [clientFrame(3, 'x')] },
  { name: 'reserved opcode 11', frames: [clientFrame(11, 'x')] },
  { name: 'RSV1 without a negotiated extension', frames: [clientFrame(OPCODE.text, '{}', { rsv: 4 })] },
  { name: 'RSV2', frames: [clientFrame(OPCODE.text, '{}', { rsv: 2 })] },
  { name: 'a continuation without a start', frames: [clientFrame(OPCODE.continuation, '{}')] },
  {
    name: 'a new message inside a fragmented one',
    frames: [clientFrame(OPCODE.text, '{', { fin: false }), clientFrame(OPCODE.text, '}')],
  },
];

/** A frame the server sent. */
export interface ServerWireFrame {
  opcode: number;
  fin: boolean;
  payload: Buffer;
}

/** The close frame's code and reason (undefined code: a close frame without a payload). */
export function closeOf(frame: ServerWireFrame): { code: number | undefined; reason: string } {
  return frame.payload.length >= 2
    ? { code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString() }
    : { code: undefined, reason: '' };
}

export class RawWebSocket {
  readonly frames: ServerWireFrame[] = [];
  /** How the TCP connection ended: a FIN, a reset, or still open. */
  ended: 'open' | 'fin' | 'reset' = 'open';
  #buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#parse();
      this.#wake();
    });
    socket.on('error', () => {
      this.ended = 'reset';
      this.#wake();
    });
    socket.on('close', () => {
      if (this.ended === 'open') this.ended = 'fin';
      this.#wake();
    });
  }

  /** Upgrades `ws://host:port/path?query`; rejects with the status line when refused. */
  static connect(url: string, timeoutMs = 10_000): Promise<RawWebSocket> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(u.port), u.hostname);
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no upgrade answer from ${u.host} in ${timeoutMs} ms`));
      }, timeoutMs);
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        socket.off('data', onData);
        const status = head.subarray(0, head.indexOf('\r\n')).toString();
        if (!status.includes(' 101 ')) {
          socket.destroy();
          reject(new Error(`upgrade refused: ${status}`));
          return;
        }
        const ws = new RawWebSocket(socket);
        const rest = head.subarray(end + 4);
        if (rest.length > 0) socket.emit('data', rest);
        resolve(ws);
      };
      socket.on('data', onData);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  }

  write(...frames: Buffer[]): void {
    for (const f of frames) this.socket.write(f);
  }

  /** A text frame (masked). */
  send(text: string): void {
    this.write(clientFrame(OPCODE.text, text));
  }

  /** The close frame the server sent, if any. */
  get closeFrame(): ServerWireFrame | undefined {
    return this.frames.find((f) => f.opcode === OPCODE.close);
  }

  /** The server's text frames, as strings. */
  get texts(): string[] {
    return this.frames.filter((f) => f.opcode === OPCODE.text).map((f) => f.payload.toString());
  }

  /** Resolves once `done()` holds (checked on every frame and on the end), or rejects after `timeoutMs`. */
  async until(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (this.ended !== 'open' && !done())
        throw new Error(`connection ended (${this.ended}) before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; frames: ${this.texts.join(' | ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for the TCP connection to end (FIN or reset). */
  async ends(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.ended === 'open') {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('the server kept the connection open');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends a `ping` frame of the protocol and waits for its pong: everything sent before was handled. */
  async settle(t: number, timeoutMs = 10_000): Promise<void> {
    this.send(JSON.stringify({ type: 'ping', t }));
    await this.until(
      () => this.texts.some((x) => x.includes('"pong"') && x.includes(`"t":${t}`)),
      `pong ${t}`,
      timeoutMs,
    );
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  #parse(): void {
    for (;;) {
      const b = this.#buffer;
      if (b.length < 2) return;
      let length = b[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      if (b.length < offset + length) return;
      this.frames.push({
        opcode: b[0]! & 0x0f,
        fin: (b[0]! & 0x80) !== 0,
        payload: b.subarray(offset, offset + length),
      });
      this.#buffer = b.subarray(offset + length);
    }
  }
}
