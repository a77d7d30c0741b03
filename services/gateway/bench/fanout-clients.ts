import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { unreachable } from '@openagents/sync-protocol';
import { STAMP_MARKER, stampNow } from './fanout-events';

// Worker thread of the fan-out benchmark: holds a share of the client connections and does as
// little as possible per frame, so that the clients are not what limits the measurement. Each
// connection is a minimal WebSocket client over a raw TCP socket (the `ws` package costs several
// times more CPU per message): it sends the upgrade and one masked subscribe frame, answers pings,
// walks frame headers only to find complete frames, and byte-searches their payloads for each
// event's publish stamp. No JSON parsing, no per-message events or copies.

/** Slots of each worker's counters in the shared Int32Array (stride COUNTER_SLOTS). */
export const COUNTER = { events: 0, frames: 1, subscribed: 2, closes: 3, opens: 4, failures: 5 } as const;
export const COUNTER_SLOTS = 8;
/** Histogram resolution and range: 20 µs buckets up to 2 s, plus an overflow bucket. */
export const BUCKET_MS = 0.02;
export const BUCKETS = 100_000;

export type ClientCommand =
  | { cmd: 'connect'; url: string; token: string; scopes: string[]; concurrency: number }
  | { cmd: 'latency'; on: boolean }
  | { cmd: 'report' }
  | { cmd: 'close' };

export type ClientReport =
  | { type: 'connected'; failed: number }
  | { type: 'report'; histogram: Uint32Array; eventLoopUtilization: number }
  | { type: 'closed' };

interface WorkerInput {
  counters: SharedArrayBuffer;
  index: number;
}

const MARKER = Buffer.from(STAMP_MARKER);
const SUBSCRIBED = Buffer.from('"type":"subscribed"');
const HEADER_END = Buffer.from('\r\n\r\n');

/** A client frame: FIN + opcode, masked with a zero key (servers must accept any key). */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const head =
    length < 126
      ? Buffer.from([0x80 | opcode, 0x80 | length, 0, 0, 0, 0])
      : Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff, 0, 0, 0, 0]);
  return Buffer.concat([head, payload]);
}

if (parentPort) {
  const port = parentPort;
  const { counters: shared, index } = workerData as WorkerInput;
  const counters = new Int32Array(shared, index * COUNTER_SLOTS * 4, COUNTER_SLOTS);
  let histogram = new Uint32Array(BUCKETS + 1);
  let measuring = false;
  let elu = performance.eventLoopUtilization();
  const sockets: Socket[] = [];

  /** Counts the events (and subscription acks) in a region made of whole text frames. */
  const scan = (data: Buffer, from: number, to: number) => {
    let at = data.indexOf(MARKER, from);
    const now = measuring && at >= 0 && at < to ? stampNow() : 0;
    while (at >= 0 && at < to) {
      counters[COUNTER.events]!++;
      if (measuring) {
        const sent = parseNumber(data, at + MARKER.length);
        histogram[Math.min(BUCKETS, Math.max(0, Math.floor((now - sent) / BUCKET_MS)))]!++;
      }
      at = data.indexOf(MARKER, at + MARKER.length + 10);
    }
    for (let s = data.indexOf(SUBSCRIBED, from); s >= 0 && s < to; s = data.indexOf(SUBSCRIBED, s + 1)) {
      counters[COUNTER.subscribed]!++;
    }
  };

  const open = (url: string, token: string, scope: string) =>
    new Promise<boolean>((resolve) => {
      const target = new URL(url);
      const socket = connect(Number(target.port), target.hostname);
      socket.setNoDelay(true);
      let upgraded = false;
      let pending: Buffer | null = null;
      const fail = () => {
        if (!upgraded) resolve(false);
        socket.destroy();
      };
      socket.setTimeout(20_000, fail);
      socket.on('error', fail);
      socket.on('close', () => {
        if (upgraded) counters[COUNTER.closes]!++;
      });
      socket.on('connect', () => {
        socket.write(
          `GET ${target.pathname}?token=${encodeURIComponent(token)} HTTP/1.1\r\nHost: ${target.host}\r\n` +
            'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
            'Sec-WebSocket-Version: 13\r\n\r\n',
        );
      });
      socket.on('data', (chunk: Buffer) => {
        const data = pending ? Buffer.concat([pending, chunk]) : chunk;
        pending = null;
        let offset = 0;
        if (!upgraded) {
          const end = data.indexOf(HEADER_END);
          if (end < 0) {
            pending = data;
            return;
          }
          if (!data.subarray(0, 12).toString('latin1').includes(' 101')) return fail();
          upgraded = true;
          socket.setTimeout(0);
          counters[COUNTER.opens]!++;
          sockets.push(socket);
          socket.write(clientFrame(0x1, Buffer.from(JSON.stringify({ type: 'subscribe', scope }))));
          resolve(true);
          offset = end + HEADER_END.length;
        }
        // Walk the headers of the complete frames; control frames are answered or ended on.
        const start = offset;
        while (data.length - offset >= 2) {
          const opcode = data[offset]! & 0x0f;
          let length = data[offset + 1]! & 0x7f;
          let header = 2;
          if (length === 126) {
            if (data.length - offset < 4) break;
            length = data.readUInt16BE(offset + 2);
            header = 4;
          } else if (length === 127) {
            if (data.length - offset < 10) break;
            length = Number(data.readBigUInt64BE(offset + 2));
            header = 10;
          }
          if (data.length - offset < header + length) break;
          if (opcode === 0x9)
            socket.write(clientFrame(0xa, data.subarray(offset + header, offset + header + length)));
          else if (opcode === 0x8) socket.end();
          else counters[COUNTER.frames]!++;
          offset += header + length;
        }
        if (offset > start) scan(data, start, offset);
        if (offset < data.length) pending = data.subarray(offset);
      });
    });

  port.on('message', async (message: ClientCommand) => {
    switch (message.cmd) {
      case 'connect': {
        const queue = [...message.scopes];
        let failed = 0;
        await Promise.all(
          Array.from({ length: message.concurrency }, async () => {
            for (let scope = queue.shift(); scope; scope = queue.shift()) {
              if (!(await open(message.url, message.token, scope))) {
                failed++;
                counters[COUNTER.failures]!++;
              }
            }
          }),
        );
        port.postMessage({ type: 'connected', failed } satisfies ClientReport);
        break;
      }
      case 'latency':
        measuring = message.on;
        if (message.on) {
          histogram = new Uint32Array(BUCKETS + 1);
          elu = performance.eventLoopUtilization();
        }
        break;
      case 'report': {
        const utilization = performance.eventLoopUtilization(elu).utilization;
        port.postMessage({
          type: 'report',
          histogram,
          eventLoopUtilization: utilization,
        } satisfies ClientReport);
        elu = performance.eventLoopUtilization();
        break;
      }
      case 'close':
        await Promise.all(
          sockets.splice(0).map(
            (socket) =>
              new Promise<void>((resolve) => {
                if (socket.destroyed) return resolve();
                socket.once('close', () => resolve());
                socket.destroy();
              }),
          ),
        );
        port.postMessage({ type: 'closed' } satisfies ClientReport);
        break;
      default:
        unreachable(message);
    }
  });
}

/** Parses the decimal number (digits and at most one '.') starting at `i`. */
function parseNumber(data: Buffer, i: number): number {
  let value = 0;
  let scale = 0;
  for (; i < data.length; i++) {
    const c = data[i]!;
    if (c === 46) scale = 1;
    else if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      if (scale) scale *= 10;
    } else break;
  }
  return scale ? value / scale : value;
}
