import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { unreachable } from '@openagents/sync-protocol';
import WebSocket from 'ws';
import { STAMP_MARKER, stampNow } from './fanout-events';

// Worker thread of the fan-out benchmark: holds a share of the client connections and does as
// little as possible per frame — count it, find each event's publish stamp with a byte search,
// and add commit→receipt latency to a histogram. No JSON parsing of sync frames.

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

if (parentPort) {
  const port = parentPort;
  const { counters: shared, index } = workerData as WorkerInput;
  const counters = new Int32Array(shared, index * COUNTER_SLOTS * 4, COUNTER_SLOTS);
  let histogram = new Uint32Array(BUCKETS + 1);
  let measuring = false;
  let elu = performance.eventLoopUtilization();
  const sockets: WebSocket[] = [];

  const onFrame = (data: Buffer) => {
    counters[COUNTER.frames]!++;
    let at = data.indexOf(MARKER);
    if (at < 0) {
      if (data.indexOf(SUBSCRIBED) >= 0) counters[COUNTER.subscribed]!++;
      return;
    }
    const now = measuring ? stampNow() : 0;
    while (at >= 0) {
      counters[COUNTER.events]!++;
      let i = at + MARKER.length;
      if (measuring) {
        const sent = parseNumber(data, i);
        const bucket = Math.min(BUCKETS, Math.max(0, Math.floor((now - sent) / BUCKET_MS)));
        histogram[bucket]!++;
      }
      i += 10;
      at = data.indexOf(MARKER, i);
    }
  };

  const open = (url: string, token: string, scope: string) =>
    new Promise<boolean>((resolve) => {
      const ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`, {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        handshakeTimeout: 20_000,
      });
      ws.on('open', () => {
        counters[COUNTER.opens]!++;
        sockets.push(ws);
        ws.send(JSON.stringify({ type: 'subscribe', scope }));
        resolve(true);
      });
      ws.on('message', (data) => onFrame(data as Buffer));
      ws.on('error', () => resolve(false));
      ws.on('close', () => {
        counters[COUNTER.closes]!++;
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
            (ws) =>
              new Promise<void>((resolve) => {
                if (ws.readyState === WebSocket.CLOSED) return resolve();
                ws.once('close', () => resolve());
                ws.terminate();
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
