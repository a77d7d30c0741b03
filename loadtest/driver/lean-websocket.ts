import { isUtf8 } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** RFC 6455 §1.3: what the server hashes with the client's key to prove it speaks WebSocket. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OPCODE = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;
/** Largest message accepted (a bootstrap page is at most the gateway's MAX_FRAME_BYTES, 64 KiB by default). */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** Size of the socket's read buffer, reused for every read (`onread`). */
const READ_BUFFER_BYTES = 256 * 1024;

export interface LeanWebSocketHandlers {
  /** The upgrade was accepted: frames may be sent. */
  open(): void;
  /** One whole text or binary message, decoded as UTF-8 (a text message was checked to be UTF-8). */
  message(text: string): void;
  /** A failed handshake, a protocol violation by the server, or a socket error; `close` follows. */
  error(err: Error): void;
  /** The connection is gone (whatever the reason); called once. */
  close(): void;
}

/**
 * The load driver's WebSocket client for viewers: the contract's frames over a bare TCP socket
 * whose reads land in one reused buffer (`net` `onread`: no stream, no Buffer per read), parsed
 * in place. A viewer of a streaming reply gets a small frame per append, and the `ws` package's
 * per-message path (a Writable receiver, a Buffer per chunk and per message, events) cost the
 * driver more CPU than the gateway spent sending the frame; this keeps the load lean.
 *
 * It is a real client all the same: the upgrade answer must be 101 with the right
 * `Sec-WebSocket-Accept`; server frames must be unmasked with no RSV bits (no extension is
 * offered: use `ws` when the gateway should compress); text messages must be valid UTF-8;
 * fragments are joined; pings are answered; a close frame is answered and ends the socket.
 * Anything else is a protocol error: reported, and the socket destroyed.
 */
export class LeanWebSocket {
  readonly #socket: Socket;
  readonly #handlers: LeanWebSocketHandlers;
  readonly #key = randomBytes(16).toString('base64');
  #state: 'handshake' | 'open' | 'closed' = 'handshake';
  /** Bytes of an incomplete handshake answer or frame, carried over to the next reads (copies). */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /**
   * Bytes the incomplete frame needs in all, once its header is read (0 before): reads are only
   * collected until then, so a large frame arriving in many reads is joined once, not per read.
   */
  #needed = 0;
  /** Fragments of a message still being received, and its opcode. */
  #fragments: Buffer[] | undefined;
  #fragmentOpcode = 0;
  #handshakeTimer: NodeJS.Timeout | undefined;

  constructor(url: string, handlers: LeanWebSocketHandlers, options: { handshakeTimeoutMs?: number } = {}) {
    const u = new URL(url);
    if (u.protocol !== 'ws:') throw new Error(`LeanWebSocket speaks ws:// only, not ${u.protocol}`);
    this.#handlers = handlers;
    this.#socket = connect({
      host: u.hostname,
      port: Number(u.port || 80),
      noDelay: true,
      onread: { buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: this.#onRead },
    });
    this.#handshakeTimer = setTimeout(
      () => this.#fail(new Error(`no upgrade answer within ${options.handshakeTimeoutMs ?? 20_000} ms`)),
      options.handshakeTimeoutMs ?? 20_000,
    );
    this.#socket.on('connect', () => {
      this.#socket.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${this.#key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    this.#socket.on('error', (err) => this.#fail(err));
    this.#socket.on('close', () => this.#closed());
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  /** Sends one text message (masked, as a client must); ignored unless open. */
  send(text: string): void {
    if (this.#state !== 'open') return;
    this.#socket.write(clientTextFrame(text));
  }

  /** Cuts the connection without a closing handshake (a network failure, as `ws.terminate()`). */
  terminate(): void {
    this.#socket.destroy();
    this.#closed();
  }

  readonly #onRead = (nread: number, buffer: Buffer): boolean => {
    if (this.#state === 'closed') return false;
    let data = buffer.subarray(0, nread);
    if (this.#pendingBytes > 0) {
      if (this.#pendingBytes + nread < this.#needed) {
        this.#keep(data);
        return true;
      }
      data = Buffer.concat([...this.#pending, data]);
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#needed = 0;
    }
    let at = 0;
    if (this.#state === 'handshake') {
      at = this.#handshake(data);
      if (at < 0) return true;
    }
    while (this.#state === 'open' && at < data.length) {
      const used = this.#frame(data, at);
      if (used === 0) break;
      at += used;
    }
    // The read buffer is reused for the next read: what is left must be copied out of it.
    if (at < data.length && !this.#isClosed()) {
      this.#needed = this.#state === 'open' ? frameLength(data, at) : 0;
      this.#keep(data.subarray(at));
    }
    return true;
  };

  /** Keeps a copy of `bytes` for the next read (the read buffer is reused). */
  #keep(bytes: Buffer): void {
    this.#pending.push(Buffer.from(bytes));
    this.#pendingBytes += bytes.length;
  }

  /** A method, not a comparison: handlers called above may have closed the socket meanwhile. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** Reads the upgrade answer: the offset after it, or -1 while it is incomplete (or refused). */
  #handshake(data: Buffer): number {
    const end = data.indexOf('\r\n\r\n');
    if (end < 0) {
      if (data.length > 16 * 1024) this.#fail(new Error('upgrade answer too long'));
      else this.#keep(data);
      return -1;
    }
    const head = data.toString('latin1', 0, end);
    const status = head.slice(0, head.indexOf('\r\n'));
    const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1];
    const expected = createHash('sha1')
      .update(this.#key + ACCEPT_GUID)
      .digest('base64');
    if (!/^HTTP\/1\.1 101 /.test(status)) {
      this.#fail(new Error(`Unexpected server response: ${status.split(' ')[1] ?? status}`));
      return -1;
    }
    if (accept !== expected) {
      this.#fail(new Error('invalid Sec-WebSocket-Accept'));
      return -1;
    }
    if (/\r\nsec-websocket-extensions:/i.test(head)) {
      this.#fail(new Error('the server chose an extension that was not offered'));
      return -1;
    }
    clearTimeout(this.#handshakeTimer);
    this.#state = 'open';
    this.#handlers.open();
    return end + 4;
  }

  /** Handles the frame at `at`: the bytes it took, or 0 when it is not complete yet. */
  #frame(data: Buffer, at: number): number {
    if (data.length - at < 2) return 0;
    const first = data[at]!;
    const second = data[at + 1]!;
    if ((first & 0x70) !== 0 || (second & 0x80) !== 0) {
      this.#fail(new Error('server frame with RSV bits or a mask'));
      return 0;
    }
    let length = second & 0x7f;
    let headLength = 2;
    if (length === 126) {
      if (data.length - at < 4) return 0;
      length = data.readUInt16BE(at + 2);
      headLength = 4;
    } else if (length === 127) {
      if (data.length - at < 10) return 0;
      const high = data.readUInt32BE(at + 2);
      length = high * 2 ** 32 + data.readUInt32BE(at + 6);
      headLength = 10;
    }
    if (length > MAX_MESSAGE_BYTES) {
      this.#fail(new Error(`server frame of ${length} bytes`));
      return 0;
    }
    if (data.length - at < headLength + length) return 0;
    const start = at + headLength;
    const end = start + length;
    const fin = (first & 0x80) !== 0;
    const opcode = first & 0x0f;
    switch (opcode) {
      case OPCODE.text:
      case OPCODE.binary:
        if (this.#fragments) return this.#protocolError('a new message inside a fragmented one');
        if (fin) this.#deliver(opcode, data, start, end);
        else {
          this.#fragments = [Buffer.from(data.subarray(start, end))];
          this.#fragmentOpcode = opcode;
        }
        break;
      case OPCODE.continuation: {
        const fragments = this.#fragments;
        if (!fragments) return this.#protocolError('a continuation without a start');
        fragments.push(Buffer.from(data.subarray(start, end)));
        if (fin) {
          this.#fragments = undefined;
          const whole = Buffer.concat(fragments);
          this.#deliver(this.#fragmentOpcode, whole, 0, whole.length);
        }
        break;
      }
      case OPCODE.ping:
        if (!fin || length > 125) return this.#protocolError('a fragmented or oversized ping');
        this.#socket.write(clientFrame(OPCODE.pong, data.subarray(start, end)));
        break;
      case OPCODE.pong:
        break;
      case OPCODE.close:
        // Answered with the same code, then the socket ends; the server closes its side.
        this.#socket.end(clientFrame(OPCODE.close, data.subarray(start, Math.min(end, start + 2))));
        this.#closed();
        break;
      default:
        return this.#protocolError(`reserved opcode ${opcode}`);
    }
    return headLength + length;
  }

  #deliver(opcode: number, data: Buffer, start: number, end: number): void {
    if (opcode === OPCODE.text && !isUtf8(data.subarray(start, end))) {
      this.#protocolError('a text message that is not UTF-8');
      return;
    }
    this.#handlers.message(data.toString('utf8', start, end));
  }

  #protocolError(what: string): number {
    this.#fail(new Error(`protocol error: ${what}`));
    return 0;
  }

  #fail(err: Error): void {
    if (this.#state === 'closed') return;
    this.#handlers.error(err);
    this.#socket.destroy();
    this.#closed();
  }

  #closed(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#handshakeTimer);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#fragments = undefined;
    this.#handlers.close();
  }
}

/** Bytes of the whole frame starting at `at` (header included), or 0 while its header is incomplete. */
function frameLength(data: Buffer, at: number): number {
  if (data.length - at < 2) return 0;
  const length = data[at + 1]! & 0x7f;
  if (length < 126) return 2 + length;
  if (length === 126) return data.length - at < 4 ? 0 : 4 + data.readUInt16BE(at + 2);
  return data.length - at < 10 ? 0 : 10 + data.readUInt32BE(at + 2) * 2 ** 32 + data.readUInt32BE(at + 6);
}

/** A masked client text frame. */
export function clientTextFrame(text: string): Buffer {
  return clientFrame(OPCODE.text, Buffer.from(text, 'utf8'));
}

/** A masked client frame (RFC 6455 §5.3: a fresh random key per frame). */
export function clientFrame(opcode: number, payload: Uint8Array): Buffer {
  const length = payload.length;
  const headLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headLength + 4 + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  randomBytes(4).copy(frame, headLength);
  for (let i = 0; i < length; i++) frame[headLength + 4 + i] = payload[i]! ^ frame[headLength + (i & 3)]!;
  return frame;
}
