/**
 * `npm run bench:stream`'s tap on the bus: a process of its own that subscribes to every scope
 * channel of the run (as a gateway does) and appends, for each append event of a traced record
 * (`traceSampled`, as the worker's STREAM_TRACE_FILE), `["bus", id, from, to, ms]` to a file —
 * when the message reached a Redis subscriber, on the same clock as the worker's trace. Between
 * it and a viewer's receipt lie the gateway (parse, per-tick batching, fan-out) and the viewer.
 *
 *   node --import tsx loadtest/bench/bus-tap.ts <redis url> <channel prefix> <every> <file>
 */
import { appendFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { preciseNow, traceSampled } from '../../services/api/src/stream-trace';

const [url, prefix, every, file] = process.argv.slice(2);
if (!url || prefix === undefined || !every || !file) {
  process.stderr.write('usage: bus-tap.ts <redis url> <channel prefix> <every> <file>\n');
  process.exit(2);
}
const sampleEvery = Number(every);
const sampled = new Map<string, boolean>();
let lines: string[] = [];
const redis = new Redis(url);
redis.on('pmessageBuffer', (_pattern: Buffer, _channel: Buffer, payload: Buffer) => {
  const at = Number(preciseNow().toFixed(3));
  let message: {
    events?: { model_id?: string; action?: string; data?: { offset?: unknown; text?: unknown } }[];
  };
  try {
    message = JSON.parse(payload.toString('utf8'));
  } catch {
    return;
  }
  for (const e of message.events ?? []) {
    if (e.action !== 'append' || typeof e.model_id !== 'string') continue;
    let traced = sampled.get(e.model_id);
    if (traced === undefined) {
      traced = traceSampled(e.model_id, sampleEvery);
      sampled.set(e.model_id, traced);
    }
    const { offset, text } = e.data ?? {};
    if (traced && typeof offset === 'number' && typeof text === 'string')
      lines.push(`${JSON.stringify(['bus', e.model_id, offset, offset + text.length, at])}\n`);
  }
});
setInterval(() => {
  if (lines.length === 0) return;
  appendFileSync(file, lines.join(''));
  lines = [];
}, 100);
redis.psubscribe(`${prefix}*`).then(
  () => process.stdout.write('ready\n'),
  (err: unknown) => {
    process.stderr.write(`bus-tap: ${String(err)}\n`);
    process.exit(1);
  },
);
