/**
 * Agent replies streaming token by token (contract v1.1 append): REPLIES replies at once, each
 * TOKENS tokens at TPS tokens per second into its own Message, watched by VIEWERS WebSocket
 * clients each. A writer VU batches TOKENS_PER_APPEND tokens (default 2: what the client's stream
 * writer's 40 ms window holds at 30 tokens/s) into one `POST /api/messages/<id>/append` at its
 * offset, sent when the batch's last token is due, and everything due in one piece when it fell
 * behind (as the client's stream writer does);
 * an exact retry is answered 200 and writes nothing, so a retried piece never doubles text.
 * Tokens carry their generation time (lib/stream-tokens.ts), so viewers measure token-to-screen
 * latency from the text, and append-to-screen per append (its newest token's generation, when it
 * was sent; the threshold holds this one, with every token durable within 100 ms); each viewer applies pieces by offset exactly once and, at the end,
 * compares its text with the record the delta service serves. Each reply's first second (its
 * stream opening) is measured apart (`stream_opening_*`); the thresholds hold the steady state,
 * as the Node driver's `stream` scenario and `npm run bench:stream` do.
 *
 *   k6 run -e BASE_URL=http://localhost:8787 -e SYNC_JWT_SECRET=… -e REPLIES=100 loadtest/k6/stream.ts
 *
 * WRITE=patch sends the old way instead: one PATCH with the whole text so far per token.
 */
import { check, sleep } from 'k6';
import http from 'k6/http';
import { Counter, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { clearTimeout, setTimeout } from 'k6/timers';
import { createAgent, uuid } from './lib/api.ts';
import { API_URL, DELTA_URL, intEnv, strEnv } from './lib/config.ts';
import { tokenFor } from './lib/jwt.ts';
import { encodeToken, forEachCompletedToken, openingTokens, TOKEN_LENGTH } from './lib/stream-tokens.ts';
import { openSocket } from './lib/subscriber.ts';
import { type SummaryData, summaryOutputs } from './lib/summary.ts';
import { errorFrames, eventsDuplicated, eventsLost, wsErrors } from './lib/sync-metrics.ts';

const REPLIES = intEnv('REPLIES', 50);
const TPS = intEnv('TPS', 30);
const TOKENS = intEnv('TOKENS', 150);
const VIEWERS = intEnv('VIEWERS', 3);
const WRITE = strEnv('WRITE', 'append');
const TOKENS_PER_APPEND = Math.max(1, intEnv('TOKENS_PER_APPEND', 2));
/** Viewers subscribe this long before the writers start. */
const LEAD_SECONDS = 5;
const REPLY_SECONDS = Math.ceil(TOKENS / TPS);
/** A reply's tokens in its first second: its stream opening. */
const OPENING_TOKENS = openingTokens(TPS);

const tokenToViewerMs = new Trend('stream_token_to_viewer_ms', true);
const appendToViewerMs = new Trend('stream_append_to_viewer_ms', true);
const tokenDurableMs = new Trend('stream_token_durable_ms', true);
const openingTokenToViewerMs = new Trend('stream_opening_token_to_viewer_ms', true);
const openingTokenDurableMs = new Trend('stream_opening_token_durable_ms', true);
const tokensWritten = new Counter('stream_tokens_written');
const tokensSeen = new Counter('stream_tokens_to_viewers');
const textMismatch = new Counter('stream_text_mismatch');
const pieceGaps = new Counter('stream_piece_gaps');

export const options: Options = {
  setupTimeout: '300s',
  scenarios: {
    viewers: {
      executor: 'per-vu-iterations',
      exec: 'viewer',
      vus: REPLIES * VIEWERS,
      iterations: 1,
      maxDuration: `${LEAD_SECONDS + REPLY_SECONDS + 60}s`,
    },
    writers: {
      executor: 'per-vu-iterations',
      exec: 'writer',
      vus: REPLIES,
      iterations: 1,
      startTime: `${LEAD_SECONDS}s`,
      maxDuration: `${REPLY_SECONDS + 60}s`,
    },
  },
  thresholds: {
    stream_append_to_viewer_ms: ['p(99)<50'],
    stream_token_durable_ms: ['p(99)<100'],
    stream_text_mismatch: ['count==0'],
    stream_piece_gaps: ['count==0'],
    sync_events_lost: ['count==0'],
    sync_events_duplicated: ['count==0'],
    sync_error_frames: ['count==0'],
    sync_ws_errors: ['count==0'],
    checks: ['rate>0.999'],
  },
};

export interface Reply {
  scope: string;
  messageId: string;
}

export interface SetupData {
  replies: Reply[];
}

export function setup(): SetupData {
  const token = tokenFor('k6-setup');
  const org = uuid();
  const replies: Reply[] = [];
  for (let i = 0; i < REPLIES; i++) {
    const scope = createAgent(token, org, `k6 stream ${i}`);
    const res = http.post(
      `${API_URL}/api/messages`,
      JSON.stringify({ agent_id: scope.slice('agent:'.length), role: 'assistant', content: '' }),
      { headers: headers(token), tags: { name: 'create_message' } },
    );
    if (res.status !== 201)
      throw new Error(`create message: ${res.status} ${String(res.body).slice(0, 200)}`);
    replies.push({ scope, messageId: (res.json() as unknown as { data: { id: string } }).data.id });
  }
  return { replies };
}

function headers(token: string) {
  return { 'content-type': 'application/json', authorization: `Bearer ${token}` };
}

/** One reply: every token due is sent at once, at the field's length (its offset). */
export function writer(data: SetupData): void {
  const reply = data.replies[(__VU - 1) % data.replies.length]!;
  const token = tokenFor(`k6-agent-${__VU % 32}`);
  const started = Date.now();
  let text = '';
  let durable = 0;
  let written = 0;
  while (written < TOKENS) {
    const due = Math.min(TOKENS, Math.floor(((Date.now() - started) * TPS) / 1000) + 1);
    const offset = text.length;
    // Each token is stamped with when it was due (generated): a batch's earlier tokens waited.
    for (; written < due; written++)
      text += encodeToken(Math.min(Date.now(), started + (written * 1000) / TPS));
    tokensWritten.add(text.length / TOKEN_LENGTH - offset / TOKEN_LENGTH);
    const res =
      WRITE === 'patch'
        ? http.patch(`${API_URL}/api/messages/${reply.messageId}`, JSON.stringify({ content: text }), {
            headers: headers(token),
            tags: { name: 'patch_message' },
          })
        : http.post(
            `${API_URL}/api/messages/${reply.messageId}/append`,
            JSON.stringify({ field: 'content', offset, text: text.slice(offset) }),
            { headers: headers(token), tags: { name: 'append' } },
          );
    if (check(res, { 'piece acknowledged (200)': (r) => r.status === 200 })) {
      const now = Date.now();
      forEachCompletedToken(text, durable, (at, k) =>
        (k < OPENING_TOKENS ? openingTokenDurableMs : tokenDurableMs).add(now - at),
      );
      durable = text.length;
    } else {
      // Not durable: the next request carries the same offset again (an exact retry writes nothing).
      text = text.slice(0, durable);
      written = durable / TOKEN_LENGTH;
    }
    // The next append goes when the last token of its batch is due (the reply's last ones at once).
    const next = started + (Math.min(TOKENS, written + TOKENS_PER_APPEND) - 1) * (1000 / TPS);
    if (written < TOKENS && next > Date.now()) sleep((next - Date.now()) / 1000);
  }
}

interface Frame {
  type: string;
  scope?: string;
  lastSyncId?: number;
  models?: { Message?: { id: string; content: string }[] };
  events?: {
    id: number;
    model: string;
    model_id: string;
    action: string;
    data: { field?: string; offset?: number; text?: string; content?: string } | null;
  }[];
}

/** One viewer: subscribes, applies pieces by offset exactly once, checks its text at the end. */
export function viewer(data: SetupData): Promise<void> {
  const reply = data.replies[(__VU - 1) % data.replies.length]!;
  const token = tokenFor(`k6-viewer-${__VU % 32}`);
  const full = TOKENS * TOKEN_LENGTH;
  let text = '';
  let cursor = 0;
  const grow = (next: string, append = false) => {
    const now = Date.now();
    let newest = -1;
    let newestIndex = -1;
    tokensSeen.add(
      forEachCompletedToken(next, text.length, (at, k) => {
        (k < OPENING_TOKENS ? openingTokenToViewerMs : tokenToViewerMs).add(now - at);
        if (at > newest) {
          newest = at;
          newestIndex = k;
        }
      }),
    );
    if (append && newestIndex >= OPENING_TOKENS) appendToViewerMs.add(now - newest);
    text = next;
  };
  return new Promise((resolve) => {
    const socket = openSocket(token);
    const deadline = setTimeout(() => socket.close(), (LEAD_SECONDS + REPLY_SECONDS + 45) * 1000);
    socket.onopen = () => socket.send(JSON.stringify({ type: 'subscribe', scope: reply.scope }));
    socket.onmessage = (event) => {
      const frame = JSON.parse(String(event?.data)) as Frame;
      if (frame.type === 'bootstrap') {
        cursor = frame.lastSyncId ?? 0;
        const mine = frame.models?.Message?.find((m) => m.id === reply.messageId);
        if (mine && mine.content.length > text.length) grow(mine.content);
      } else if (frame.type === 'sync') {
        for (const e of frame.events ?? []) {
          if (e.id <= cursor) {
            eventsDuplicated.add(1);
            continue;
          }
          if (e.id > cursor + 1) eventsLost.add(e.id - cursor - 1);
          cursor = e.id;
          if (e.model_id !== reply.messageId || !e.data) continue;
          if (e.action === 'append' && typeof e.data.offset === 'number' && typeof e.data.text === 'string') {
            const end = e.data.offset + e.data.text.length;
            if (e.data.offset > text.length) pieceGaps.add(1);
            else if (end > text.length) grow(text + e.data.text.slice(text.length - e.data.offset), true);
          } else if (e.action === 'update' && typeof e.data.content === 'string') {
            if (e.data.content.length > text.length) grow(e.data.content);
          }
        }
        if (text.length >= full) socket.close();
      } else if (frame.type === 'error') {
        errorFrames.add(1);
      }
    };
    socket.onerror = () => wsErrors.add(1);
    socket.onclose = () => {
      clearTimeout(deadline);
      const res = http.get(`${DELTA_URL}/sync/bootstrap?scope=${encodeURIComponent(reply.scope)}`, {
        headers: { authorization: `Bearer ${token}` },
        tags: { name: 'bootstrap' },
      });
      const record = (res.json() as unknown as Frame).models?.Message?.find((m) => m.id === reply.messageId);
      if (!record || record.content !== text || text.length !== full) textMismatch.add(1);
      resolve();
    };
  });
}

/** The end-of-test summary as text on stdout and JSON in SUMMARY_DIR (lib/summary.ts). */
export function handleSummary(data: SummaryData): Record<string, string> {
  return summaryOutputs('stream', data);
}
