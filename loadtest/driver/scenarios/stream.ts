import { createStreamWriter, type StreamWriter } from '@openagents/sync-client';
import type { WriteResult } from '@openagents/sync-protocol';
import { Histogram } from '../histogram';
import { check, counter, gauge, type ScenarioResult, trend } from '../result';
import { decodeToken, digest, encodeToken, TOKEN_LENGTH } from '../stream-text';
import type { SyncTarget } from '../sync-target';
import { requestJson } from '../target';
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
  /** Replies start spread over this window, as users' questions would. */
  startSpreadMs: number;
  /**
   * Called as the writers start and once every token is durable: the window a benchmark charges
   * CPU to (setup — agents, messages, viewers' bootstraps — and the final checks stay outside).
   */
  onStreaming?: (phase: 'start' | 'end') => void;
}

export const STREAM_DEFAULTS: StreamOptions = {
  replies: 50,
  tokensPerSecond: 30,
  tokens: 150,
  viewers: 3,
  mode: 'append',
  startSpreadMs: 1000,
};

/** How often the writers' clock ticks; a token is written at the first tick at or after its time. */
const TICK_MS = 5;

interface Reply {
  scope: string;
  messageId: string;
  baseUrl: string;
  token: string;
  startAt: number;
  written: number;
  text: string;
  writer?: StreamWriter;
  /** patch mode: the texts still to send, oldest first, and whether a PATCH is out. */
  queue: string[];
  sending: Promise<void> | undefined;
  acked: number;
}

interface WriterStats {
  durable: Histogram;
  failures: number;
  firstFailure?: string;
  requests: number;
}

/**
 * An agent product's hot path: `replies` replies stream `tokens` tokens each at
 * `tokensPerSecond`, each watched by `viewers` WebSocket clients. Tokens carry their generation
 * time, so the run measures token-to-viewer latency and token-to-durable (acknowledged) latency,
 * counts the api's commits (Postgres transactions) per second, and checks at the end that every
 * viewer holds exactly the writer's text and saw every event once, in order.
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
  const replies = await createReplies(target, scopes);
  env.progress.stop();

  return withPool(env, async (pool) => {
    const specs = await connectionSpecs(target, scopes, scopes.length * options.viewers);
    const opened = await pool.open(specs, { measureLatency: false, timeoutMs: 120_000, streams: true });
    await pool.window();
    const commitsBefore = await target.apiCommits();

    const stats: WriterStats = { durable: new Histogram(), failures: 0, requests: 0 };
    options.onStreaming?.('start');
    const began = Date.now();
    replies.forEach((r, i) => {
      r.startAt = began + (options.startSpreadMs * i) / replies.length;
    });
    let tokensWritten = 0;
    env.progress.start('stream', () => `${replies.length} replies  tokens written ${tokensWritten}`);
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const now = Date.now();
        let open = 0;
        for (const r of replies) {
          const due = Math.min(
            options.tokens,
            Math.floor(((now - r.startAt) * options.tokensPerSecond) / 1000) + 1,
          );
          for (; r.written < due; r.written++) {
            const token = encodeToken(now);
            r.text += token;
            tokensWritten++;
            if (options.mode === 'patch') sendPatch(r, stats);
            else {
              r.writer ??= openWriter(r, stats);
              r.writer.write(token);
            }
          }
          if (r.written < options.tokens) open++;
        }
        if (open === 0) {
          clearInterval(timer);
          resolve();
        }
      }, TICK_MS);
    });
    const writingMs = Date.now() - began;
    await Promise.all(replies.map((r) => finish(r, stats)));
    const durableMs = Date.now() - began;
    options.onStreaming?.('end');
    env.progress.stop();
    const commitsAfter = await target.apiCommits();

    const heads = new Map(await mapLimited(scopes, 8, async (s) => [s, await head(target, s)] as const));
    await pool.expect(heads);
    const settled = await pool.waitCaughtUp(60_000);
    const streams = settled.streams;
    const viewerTokens = streams?.tokens ?? 0;
    const expectedEvents = [...heads.values()].reduce((sum, h) => sum + h - 1, 0) * options.viewers;

    let identical = 0;
    let firstMismatch: string | undefined;
    for (const r of replies) {
      const want = digest(r.text);
      const seen = (streams?.texts ?? []).filter((t) => t[0] === r.messageId);
      const ok = seen.length === 1 && seen[0]![2] === want && seen[0]![3] === options.viewers;
      if (ok) identical++;
      else
        firstMismatch ??= `${r.messageId}: writer ${r.text.length} chars; viewers ${seen.map((t) => `${t[3]}×${t[1]}`).join(', ') || 'none'}`;
    }
    const seconds = writingMs / 1000;
    const commits =
      commitsAfter !== undefined && commitsBefore !== undefined ? commitsAfter - commitsBefore : undefined;
    const workers = target.apiUrls.length;
    return {
      scenario: 'stream',
      target: target.name,
      startedAt: startedAt.toISOString(),
      durationMs: performance.now() - t0,
      options: { ...options, onStreaming: undefined },
      metrics: {
        tokens_written: counter(tokensWritten, seconds),
        tokens_to_viewers: counter(viewerTokens, seconds),
        token_to_viewer_ms: trend((streams?.latency ?? new Histogram()).summary()),
        token_durable_ms: trend(stats.durable.summary()),
        write_requests: counter(stats.requests, seconds),
        write_failures: counter(stats.failures),
        events_to_viewers: counter(settled.delivered, seconds),
        frames_to_viewers: counter(settled.frames, seconds),
        ...(commits === undefined
          ? {}
          : {
              api_commits: counter(commits, durableMs / 1000),
              api_commits_per_worker_per_s: gauge(commits / (durableMs / 1000) / workers),
            }),
        viewers: gauge(specs.length),
      },
      checks: [
        check('every viewer subscribed', opened.ready === specs.length, `${opened.ready}/${specs.length}`),
        check(
          'every token durable',
          stats.failures === 0,
          stats.failures === 0
            ? `${tokensWritten} tokens`
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

async function createReplies(target: SyncTarget, scopes: readonly string[]): Promise<Reply[]> {
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
      text: '',
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
    stats.durable.record(now - decodeToken(r.text, k * TOKEN_LENGTH));
  }
  r.acked = Math.max(r.acked, length);
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
      failed: (error) => {
        stats.failures++;
        stats.firstFailure ??= error.message;
      },
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
        stats.failures++;
        stats.firstFailure ??= err instanceof Error ? err.message : String(err);
      }
    }
    r.sending = undefined;
  })();
}

async function finish(r: Reply, stats: WriterStats): Promise<void> {
  if (r.writer) {
    await r.writer.end().catch((err: unknown) => {
      stats.failures++;
      stats.firstFailure ??= err instanceof Error ? err.message : String(err);
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
