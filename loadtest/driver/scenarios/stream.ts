import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createStreamWriter, type StreamWriter } from '@openagents/sync-client';
import type { WriteResult } from '@openagents/sync-protocol';
import { Histogram } from '../histogram';
import { NdjsonUpload } from '../ndjson-upload';
import { check, counter, gauge, type ScenarioResult, trend } from '../result';
import { type ClockedReply, StreamClock, type StreamPhase } from '../stream-clock';
import { digest, OPENING_MS, openingTokens, TOKEN_LENGTH } from '../stream-text';
import type { SyncTarget } from '../sync-target';
import { requestJson } from '../target';
import type { ViewerTransport } from '../worker-messages';
import {
  connectionSpecs,
  describeErrors,
  errorCount,
  guaranteeChecks,
  type RunEnv,
  withPool,
} from './run-env';

export interface StreamOptions {
  /** Replies streaming at once, each a Message in its own agent scope. */
  replies: number;
  /** Tokens per second of each reply. */
  tokensPerSecond: number;
  /** Tokens per reply (a reply lasts tokens / tokensPerSecond seconds). */
  tokens: number;
  /** WebSocket viewers subscribed to each reply's scope. */
  viewers: number;
  /**
   * `append`: the client's stream writer (contract v1.1 append: only the piece travels).
   * `patch`: the old way, one `PATCH` with the whole text so far per token, in order.
   */
  mode: 'append' | 'patch';
  /**
   * append mode, who carries the pieces: `driver`, the driver's own streaming upload (one plain
   * request per reply, pre-serialised NDJSON lines, ndjson-upload.ts), cheap enough that the
   * load does not cost more than the stack it measures; `client`, the client package's stream
   * writer (`createStreamWriter`: fetch and a web stream per reply), as an agent would use it.
   */
  upload: 'driver' | 'client';
  /**
   * append mode with the driver's upload: the writer batches this many tokens into one append
   * (one NDJSON line), sent in the tick its last token is generated (the reply's last append goes
   * out at its end whatever it holds) — client-side batching of appends, as the client package's
   * stream writer does over its window. 1 sends every token as its own append. The `client`
   * upload uses the stream writer's own window instead.
   */
  tokensPerAppend: number;
  /**
   * The viewers' WebSocket client: `lean`, the driver's own (lean-websocket.ts), a fraction of the
   * `ws` package's CPU per frame, so the load costs less than the stack it measures; `ws`, the `ws`
   * package offering permessage-deflate as browsers do — for a gateway that compresses
   * (WS_COMPRESSION), since the lean client offers no extension.
   */
  viewerTransport: ViewerTransport;
  /** Replies start spread over this window, as users' questions would. */
  startSpreadMs: number;
  /**
   * Each reply's first this-many ms are its stream opening (the upload's connection and first
   * commit): their tokens' latencies are reported apart (`opening_*`), and the steady window —
   * what `token_to_viewer_ms`, `token_durable_ms` and the commit rate describe — starts once every
   * reply is past its opening and ends when the first reply writes its last token.
   */
  openingMs: number;
  /**
   * Called as the writers start (`start`), as the steady window opens and closes, and once every
   * token is durable (`end`): a benchmark charges CPU to the steady window (setup — agents,
   * messages, viewers' bootstraps —, the streams' openings and the final checks stay outside).
   */
  onStreaming?: (phase: StreamPhase) => void;
  /**
   * Called once every token is durable with each reply's message id and the generation time of
   * each of its tokens (ms, by index): a benchmark joins them with stage times traced elsewhere.
   */
  onWritten?: (replies: readonly WrittenReply[]) => void;
}

/** A reply as written: its record and when each of its tokens was generated (ms, by index). */
export interface WrittenReply {
  messageId: string;
  generatedAt: Float64Array;
}

export const STREAM_DEFAULTS: StreamOptions = {
  replies: 50,
  tokensPerSecond: 30,
  tokens: 150,
  viewers: 3,
  mode: 'append',
  upload: 'driver',
  tokensPerAppend: 2,
  viewerTransport: 'lean',
  startSpreadMs: 1000,
  openingMs: OPENING_MS,
};

/**
 * How often the writers' clock ticks: ONE timer drives every reply, and a token is written at
 * the first tick at or after its time (all tokens of a tick share its timestamp and its text).
 */
const TICK_MS = 5;

interface Reply extends ClockedReply {
  scope: string;
  messageId: string;
  baseUrl: string;
  token: string;
  /** Generation time of each token, by index (what the acks are timed against). */
  generatedAt: Float64Array;
  text: string;
  writer?: StreamWriter;
  upload?: NdjsonUpload;
  /** driver upload: tokens written and not yet sent (fewer than `tokensPerAppend`), and how many. */
  pending: string;
  pendingTokens: number;
  /** patch mode: the texts still to send, oldest first, and whether a PATCH is out. */
  queue: string[];
  sending: Promise<void> | undefined;
  acked: number;
}

interface WriterStats {
  /** Token generation to acknowledgement, past each reply's opening. */
  durable: Histogram;
  /** The same for the reply's first `openingTokens` tokens. */
  openingDurable: Histogram;
  openingTokens: number;
  failures: number;
  firstFailure?: string;
  requests: number;
}

/**
 * An agent product's hot path: `replies` replies stream `tokens` tokens each at
 * `tokensPerSecond`, each watched by `viewers` WebSocket clients. Tokens carry their generation
 * time, so the run measures token-to-viewer latency and token-to-durable (acknowledged) latency
 * for every token (each reply's opening apart from the steady state), counts the api's commits
 * (Postgres transactions) per second, and checks at the end that every viewer holds exactly the
 * writer's text and saw every event once, in order.
 */
export async function runStream(
  target: SyncTarget,
  options: StreamOptions,
  env: RunEnv,
): Promise<ScenarioResult> {
  const startedAt = new Date();
  const t0 = performance.now();
  env.progress.start('stream', () => `preparing ${options.replies} replies`);
  const scopes = await target.prepareScopes(options.replies);
  const replies = await createReplies(target, scopes, options.tokens);
  env.progress.stop();
  const opening = openingTokens(options.tokensPerSecond, options.openingMs);

  return withPool(env, async (pool) => {
    const specs = await connectionSpecs(target, scopes, scopes.length * options.viewers);
    const opened = await pool.open(specs, {
      measureLatency: false,
      timeoutMs: 120_000,
      streams: { openingTokens: opening },
      transport: options.viewerTransport,
    });
    await pool.window();

    const stats: WriterStats = {
      durable: new Histogram(),
      openingDurable: new Histogram(),
      openingTokens: opening,
      failures: 0,
      requests: 0,
    };
    const agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
    const clock = new StreamClock(replies, { ...options, tickMs: TICK_MS });
    const commitMarks: Promise<number | undefined>[] = [];
    // The writers' thread's event-loop delay over the steady window: a late tick writes late, a
    // late ack is timed late; either is the driver's lag, not the stack's.
    const writerLoop = monitorEventLoopDelay({ resolution: 1 });
    clock.onPhase = (phase) => {
      if (phase === 'steady') writerLoop.enable();
      else if (phase === 'steady-end') writerLoop.disable();
      options.onStreaming?.(phase);
      if (phase === 'steady' || phase === 'steady-end') commitMarks.push(target.apiCommits());
    };
    env.progress.start('stream', () => `${replies.length} replies  tokens written ${clock.tokensWritten}`);
    await clock.run((r, token, count, now) => write(r, token, count, now, options, stats, agent));
    const writingMs = clock.writingMs;
    // Each reply sent its last append with its last token; nothing should be left.
    for (const r of replies) sendPending(r, stats, agent);
    await Promise.all(replies.map((r) => finish(r, stats)));
    options.onStreaming?.('end');
    options.onWritten?.(replies);
    env.progress.stop();
    agent.destroy();
    const [commitsFrom, commitsTo] = await Promise.all(commitMarks);

    const heads = new Map(await mapLimited(scopes, 8, async (s) => [s, await head(target, s)] as const));
    await pool.expect(heads);
    const settled = await pool.waitCaughtUp(60_000);
    const streams = settled.streams;
    const viewerTokens = streams?.tokens ?? 0;
    const expectedEvents = [...heads.values()].reduce((sum, h) => sum + h - 1, 0) * options.viewers;

    const seenByReply = new Map<string, [string, number, string, number][]>();
    for (const t of streams?.texts ?? []) {
      const list = seenByReply.get(t[0]) ?? [];
      list.push(t);
      seenByReply.set(t[0], list);
    }
    let identical = 0;
    let firstMismatch: string | undefined;
    for (const r of replies) {
      const want = digest(r.text);
      const seen = seenByReply.get(r.messageId) ?? [];
      const ok = seen.length === 1 && seen[0]![2] === want && seen[0]![3] === options.viewers;
      if (ok) identical++;
      else
        firstMismatch ??= `${r.messageId}: writer ${r.text.length} chars; viewers ${seen.map((t) => `${t[3]}×${t[1]}`).join(', ') || 'none'}`;
    }
    const seconds = writingMs / 1000;
    const steadySeconds = clock.steadyMs / 1000;
    const commits =
      commitsTo !== undefined && commitsFrom !== undefined ? commitsTo - commitsFrom : undefined;
    const workers = target.apiUrls.length;
    return {
      scenario: 'stream',
      target: target.name,
      startedAt: startedAt.toISOString(),
      durationMs: performance.now() - t0,
      options: { ...options, onStreaming: undefined, onWritten: undefined },
      metrics: {
        tokens_written: counter(clock.tokensWritten, seconds),
        tokens_to_viewers: counter(viewerTokens, seconds),
        steady_window_ms: gauge(clock.steadyMs),
        steady_tokens_written: counter(clock.steadyTokens, steadySeconds),
        token_to_viewer_ms: trend((streams?.latency ?? new Histogram()).summary()),
        append_to_viewer_ms: trend((streams?.appendLatency ?? new Histogram()).summary()),
        token_durable_ms: trend(stats.durable.summary()),
        opening_token_to_viewer_ms: trend((streams?.openingLatency ?? new Histogram()).summary()),
        opening_token_durable_ms: trend(stats.openingDurable.summary()),
        write_requests: counter(stats.requests, seconds),
        write_failures: counter(stats.failures),
        events_to_viewers: counter(settled.delivered, seconds),
        frames_to_viewers: counter(settled.frames, seconds),
        ...(commits === undefined
          ? {}
          : {
              api_commits: counter(commits, steadySeconds),
              api_commits_per_worker_per_s: gauge(commits / steadySeconds / workers),
            }),
        viewers: gauge(specs.length),
        writer_loop_delay_p99_ms: gauge(writerLoop.percentile(99) / 1e6, 'ms'),
        viewer_loop_delay_p99_ms: gauge(streams?.loopDelayP99Ms ?? Number.NaN, 'ms'),
        viewer_loop_delay_max_ms: gauge(streams?.loopDelayMaxMs ?? Number.NaN, 'ms'),
      },
      checks: [
        check('every viewer subscribed', opened.ready === specs.length, `${opened.ready}/${specs.length}`),
        check(
          'every token durable',
          stats.failures === 0,
          stats.failures === 0
            ? `${clock.tokensWritten} tokens`
            : `${stats.failures} failed: ${stats.firstFailure}`,
        ),
        check(
          "every viewer ends with the writer's text, byte for byte",
          identical === replies.length,
          firstMismatch ?? `${replies.length} replies × ${options.viewers} viewers`,
        ),
        check('no piece skipped a gap', (streams?.gaps ?? 0) === 0, `${streams?.gaps ?? 0} gaps`),
        check('no error frames', errorCount(settled.errors) === 0, describeErrors(settled.errors) || 'none'),
        ...guaranteeChecks(settled, expectedEvents),
      ],
    };
  });
}

/** Writes `count` tokens (the same text, generated `now`) to one reply. */
function write(
  r: Reply,
  token: string,
  count: number,
  now: number,
  options: StreamOptions,
  stats: WriterStats,
  agent: http.Agent,
): void {
  for (let i = 0; i < count; i++) r.generatedAt[r.written + i] = now;
  r.written += count;
  if (options.mode === 'patch') {
    // One PATCH per token, each with the whole text so far.
    for (let i = 0; i < count; i++) {
      r.text += token;
      sendPatch(r, stats);
    }
    return;
  }
  const piece = count === 1 ? token : token.repeat(count);
  r.text += piece;
  if (options.upload === 'client') {
    r.writer ??= openWriter(r, stats);
    for (let i = 0; i < count; i++) r.writer.write(token);
  } else {
    r.pending += piece;
    r.pendingTokens += count;
    if (r.pendingTokens >= options.tokensPerAppend || r.written >= options.tokens)
      sendPending(r, stats, agent);
  }
}

/** driver upload: the tokens batched so far go out as one append (one NDJSON line). */
function sendPending(r: Reply, stats: WriterStats, agent: http.Agent): void {
  if (r.pending === '') return;
  r.upload ??= openUpload(r, stats, agent);
  r.upload.send(r.pending);
  r.pending = '';
  r.pendingTokens = 0;
}

async function createReplies(
  target: SyncTarget,
  scopes: readonly string[],
  tokens: number,
): Promise<Reply[]> {
  return mapLimited(scopes, 16, async (scope) => {
    const baseUrl = target.apiUrl();
    // One agent backend writes every reply with its own token, as a deployment does: the worker
    // joins the commits of one token holder's replies (append-batcher.ts).
    const token = await target.token();
    const created = await requestJson<WriteResult>(`${baseUrl}/api/messages`, {
      body: { agent_id: scope.slice('agent:'.length), role: 'assistant', content: '' },
      token,
    });
    return {
      scope,
      messageId: String(created.data.id),
      baseUrl,
      token,
      startAt: 0,
      written: 0,
      generatedAt: new Float64Array(tokens),
      text: '',
      pending: '',
      pendingTokens: 0,
      queue: [],
      sending: undefined,
      acked: 0,
    };
  });
}

/** Records, for each token now acknowledged, how long it took from generation. */
function recordDurable(r: Reply, length: number, stats: WriterStats): void {
  const now = Date.now();
  for (let k = Math.floor(r.acked / TOKEN_LENGTH); (k + 1) * TOKEN_LENGTH <= length; k++) {
    (k < stats.openingTokens ? stats.openingDurable : stats.durable).record(now - r.generatedAt[k]!);
  }
  r.acked = Math.max(r.acked, length);
}

function recordFailure(stats: WriterStats, message: string): void {
  stats.failures++;
  stats.firstFailure ??= message;
}

function openUpload(r: Reply, stats: WriterStats, agent: http.Agent): NdjsonUpload {
  stats.requests++;
  return new NdjsonUpload({
    baseUrl: r.baseUrl,
    token: r.token,
    path: 'messages',
    id: r.messageId,
    field: 'content',
    agent,
    hooks: {
      acked: (length) => recordDurable(r, length, stats),
      failed: (message) => recordFailure(stats, `${r.messageId}: ${message}`),
    },
  });
}

function openWriter(r: Reply, stats: WriterStats): StreamWriter {
  return createStreamWriter({
    baseUrl: r.baseUrl,
    token: r.token,
    model: 'Message',
    id: r.messageId,
    field: 'content',
    hooks: {
      appended: ({ offset, text }) => {
        stats.requests++;
        recordDurable(r, offset + text.length, stats);
      },
      failed: (error) => recordFailure(stats, error.message),
    },
  });
}

/** patch mode: one PATCH per token with the whole text so far, strictly in order per reply. */
function sendPatch(r: Reply, stats: WriterStats): void {
  r.queue.push(r.text);
  if (r.sending) return;
  r.sending = (async () => {
    for (let content = r.queue.shift(); content !== undefined; content = r.queue.shift()) {
      try {
        await requestJson(`${r.baseUrl}/api/messages/${r.messageId}`, {
          method: 'PATCH',
          body: { content },
          token: r.token,
        });
        stats.requests++;
        recordDurable(r, content.length, stats);
      } catch (err) {
        recordFailure(stats, err instanceof Error ? err.message : String(err));
      }
    }
    r.sending = undefined;
  })();
}

async function finish(r: Reply, stats: WriterStats): Promise<void> {
  if (r.upload) {
    await r.upload.end();
    return;
  }
  if (r.writer) {
    await r.writer.end().catch((err: unknown) => {
      recordFailure(stats, err instanceof Error ? err.message : String(err));
    });
    return;
  }
  // The loop in flight drains the whole queue; nothing is queued once writing has ended.
  await r.sending;
}

async function head(target: SyncTarget, scope: string): Promise<number> {
  return (await target.delta(scope, 0, 1)).latestSyncId;
}

async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}
