/**
 * The load side of `npm run bench:append-stream`, run as its own process so that its CPU is not
 * charged to the worker: N replies, each writing one token every 1000/tps ms into its own
 * Message over either one streaming upload (`POST …/append-stream`, one HTTP chunk per NDJSON
 * piece, as the client's stream writer sends them) or one `POST …/append` per token on a
 * keep-alive connection. Raw sockets, so the load costs little next to the worker it measures.
 *
 * It listens on the bus (Redis pattern subscription on the run's channel prefix) like a gateway
 * would, and measures, per token: send → durable (the ack or 200 that covers it) and send →
 * published (the event carrying it arrives on the bus), plus bytes and events published.
 *
 * Input: one JSON argument (see `DriverInput`). Output on stdout: `window-start`, `window-end`
 * lines when the measuring window opens and closes, then one line of JSON (`DriverResult`).
 */
import net from 'node:net';
import { Redis } from 'ioredis';

export interface DriverInput {
  url: string;
  token: string;
  mode: 'stream' | 'post';
  /** One Message id per reply. */
  ids: string[];
  tokensPerSecond: number;
  warmupSeconds: number;
  seconds: number;
  redisUrl: string;
  channelPrefix: string;
  /** Length of each Message's content when the row starts (UTF-16 units): where its first piece goes. */
  startOffset?: number;
}

export interface DriverResult {
  tokens: number;
  tokenBytes: number;
  durableMs: number[];
  publishedMs: number[];
  events: number;
  /** Bytes of the published events' JSON (each event alone, as a gateway forwards it). */
  eventBytes: number;
  errors: string[];
  /** Tokens sent in the window and never acknowledged by its end (plus a grace period). */
  unacked: number;
}

/** What a model's token looks like on average: a short word with its leading space. */
const WORDS = [' the', ' stream', ' of', ' tokens', ' is', ' durable', ' and', ' ordered', ' ✓', ' 🙂'];

interface Sent {
  end: number;
  at: number;
  inWindow: boolean;
}

class Reply {
  offset = input.startOffset ?? 0;
  /** Pieces not yet acknowledged / published, ascending by end. */
  unacked: Sent[] = [];
  unpublished: Sent[] = [];
  socket: net.Socket | undefined;
  buffered = '';
  headerDone = false;
  /** Per-token POST: pieces waiting for the request in flight. */
  queue: { offset: number; text: string; sent: Sent }[] = [];
  busy = false;
  constructor(readonly id: string) {}
}

const input = JSON.parse(process.argv[2]!) as DriverInput;
const target = new URL(input.url);
const replies = input.ids.map((id) => new Reply(id));
const byId = new Map(replies.map((r) => [r.id, r]));
const result: DriverResult = {
  tokens: 0,
  tokenBytes: 0,
  durableMs: [],
  publishedMs: [],
  events: 0,
  eventBytes: 0,
  errors: [],
  unacked: 0,
};
let measuring = false;
let stopping = false;

function error(message: string): void {
  if (result.errors.length < 20) result.errors.push(message);
}

/** Settles the pieces of `list` that end at or before `length`. */
function settle(list: Sent[], length: number, into: number[]): void {
  const now = performance.now();
  let i = 0;
  while (i < list.length && list[i]!.end <= length) {
    const s = list[i]!;
    if (s.inWindow) into.push(now - s.at);
    i++;
  }
  if (i > 0) list.splice(0, i);
}

/* The bus, as a gateway sees it ----------------------------------------------------------------- */

const bus = new Redis(input.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null });
bus.on('pmessageBuffer', (_pattern: Buffer, _channel: Buffer, payload: Buffer) => {
  const message = JSON.parse(payload.toString('utf8')) as {
    events: { model_id: string; action: string; data: { offset: number; text: string } }[];
  };
  for (const event of message.events) {
    if (event.action !== 'append') continue;
    const reply = byId.get(event.model_id);
    if (!reply) continue;
    if (measuring) {
      result.events++;
      result.eventBytes += Buffer.byteLength(JSON.stringify(event));
    }
    settle(reply.unpublished, event.data.offset + event.data.text.length, result.publishedMs);
  }
});

/* The streaming upload -------------------------------------------------------------------------- */

function openStream(reply: Reply): void {
  const socket = net.connect(Number(target.port), target.hostname);
  socket.setNoDelay(true);
  reply.socket = socket;
  socket.write(
    `POST /api/messages/${reply.id}/append-stream HTTP/1.1\r\nhost: ${target.host}\r\n` +
      `authorization: Bearer ${input.token}\r\ncontent-type: application/x-ndjson\r\n` +
      'transfer-encoding: chunked\r\n\r\n',
  );
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => {
    reply.buffered += text;
    if (!reply.headerDone) {
      const head = reply.buffered.indexOf('\r\n\r\n');
      if (head < 0) return;
      const status = reply.buffered.slice(9, 12);
      if (status !== '200') error(`append-stream answered ${status}: ${reply.buffered.slice(0, 300)}`);
      reply.headerDone = true;
      reply.buffered = reply.buffered.slice(head + 4);
    }
    // Chunked answer: each chunk holds whole lines (one ack per chunk); only the lines matter.
    for (let nl = reply.buffered.indexOf('\n'); nl >= 0; nl = reply.buffered.indexOf('\n')) {
      const line = reply.buffered.slice(0, nl).trim();
      reply.buffered = reply.buffered.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      const ack = JSON.parse(line) as { length?: number; error?: { code: string }; done?: true };
      if (ack.error) error(`stream ${reply.id}: ${line.slice(0, 300)}`);
      else if (ack.length !== undefined) settle(reply.unacked, ack.length, result.durableMs);
    }
  });
  socket.on('error', (err) => {
    if (!stopping) error(`stream ${reply.id}: ${err.message}`);
  });
}

function sendStreamed(reply: Reply, text: string, sent: Sent): void {
  const line = `${JSON.stringify({ field: 'content', offset: sent.end - text.length, text })}\n`;
  reply.socket!.write(`${Buffer.byteLength(line).toString(16)}\r\n${line}\r\n`);
}

/* One POST /append per token ------------------------------------------------------------------- */

function openPost(reply: Reply): void {
  const socket = net.connect(Number(target.port), target.hostname);
  socket.setNoDelay(true);
  reply.socket = socket;
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => {
    reply.buffered += text;
    const head = reply.buffered.indexOf('\r\n\r\n');
    if (head < 0) return;
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(reply.buffered.slice(0, head))?.[1] ?? 0);
    if (reply.buffered.length < head + 4 + length) return;
    const status = reply.buffered.slice(9, 12);
    const body = reply.buffered.slice(head + 4, head + 4 + length);
    reply.buffered = reply.buffered.slice(head + 4 + length);
    const done = reply.queue.shift()!;
    if (process.env.DRIVER_DEBUG) process.stderr.write(`${status} ${body}\n`);
    if (status !== '200') error(`append answered ${status}: ${body.slice(0, 300)}`);
    else settle(reply.unacked, done.sent.end, result.durableMs);
    reply.busy = false;
    postNext(reply);
  });
  socket.on('error', (err) => {
    if (!stopping) error(`post ${reply.id}: ${err.message}`);
  });
}

function postNext(reply: Reply): void {
  const next = reply.queue[0];
  if (reply.busy || !next) return;
  reply.busy = true;
  const body = JSON.stringify({ field: 'content', offset: next.offset, text: next.text });
  reply.socket!.write(
    `POST /api/messages/${reply.id}/append HTTP/1.1\r\nhost: ${target.host}\r\n` +
      `authorization: Bearer ${input.token}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/* The replies ------------------------------------------------------------------------------------- */

function tick(reply: Reply, n: number): void {
  const text = WORDS[n % WORDS.length]!;
  const offset = reply.offset;
  reply.offset += text.length;
  const sent: Sent = { end: reply.offset, at: performance.now(), inWindow: measuring };
  if (measuring) {
    result.tokens++;
    result.tokenBytes += Buffer.byteLength(text);
  }
  reply.unacked.push(sent);
  reply.unpublished.push(sent);
  if (input.mode === 'stream') sendStreamed(reply, text, sent);
  else {
    reply.queue.push({ offset, text, sent });
    postNext(reply);
  }
}

async function main(): Promise<void> {
  await bus.connect();
  await bus.psubscribe(`${input.channelPrefix}sync:*`);
  const interval = 1000 / input.tokensPerSecond;
  const started = performance.now();
  for (const [i, reply] of replies.entries()) {
    if (input.mode === 'stream') openStream(reply);
    else openPost(reply);
    // Replies start spread over one interval, as independent agents would.
    const first = started + (i / replies.length) * interval;
    let n = 0;
    const next = () => {
      if (stopping) return;
      tick(reply, n++);
      const due = first + n * interval;
      setTimeout(next, Math.max(0, due - performance.now()));
    };
    setTimeout(next, Math.max(0, first - performance.now()));
  }
  await new Promise((r) => setTimeout(r, input.warmupSeconds * 1000));
  measuring = true;
  process.stdout.write('window-start\n');
  await new Promise((r) => setTimeout(r, input.seconds * 1000));
  measuring = false;
  process.stdout.write('window-end\n');
  stopping = true;
  // Grace for the window's last tokens to be acknowledged and published.
  await new Promise((r) => setTimeout(r, 1500));
  for (const reply of replies) {
    result.unacked += reply.unacked.filter((s) => s.inWindow).length;
    reply.socket?.destroy();
  }
  bus.disconnect();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  process.stderr.write(`driver failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
