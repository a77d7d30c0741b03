/**
 * The frames of `npm run bench:client`, as a gateway sends them: a 10,000-message agent's
 * bootstrap and a reply streaming into its newest message. Shared by the page (`apply-page.tsx`,
 * which builds them itself for the per-event figures and the in-page stream) and the bench's
 * WebSocket server (`apply-socket.ts`, which builds them in Node and sends them to the page).
 */

export const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [] };
export const now = '2026-12-01T00:00:00.000Z';
const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
export const uuid = (tag: number, n: number) => `${hex(tag, 8)}-0000-4000-8000-${hex(n, 12)}`;
export const agentId = uuid(0xa, 1);
export const scope = `agent:${agentId}`;

/** Message `i` of the seeded conversation, and its content. */
export const messageId = (i: number) => uuid(0xb, i);
export const seededContent = (i: number) => `message ${i} `.repeat(10);

export function messages(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    id: messageId(i),
    agent_id: agentId,
    role: i % 2 ? 'assistant' : 'user',
    content: seededContent(i),
    // Seeded in one transaction: one timestamp for all, as the 10k agent had.
    created_at: now,
    updated_at: now,
    created_sync_id: i + 1,
  }));
}

/** The bootstrap frame of a `count`-message scope (text). */
export function bootstrapFrame(count: number): string {
  return JSON.stringify({
    type: 'bootstrap',
    scope,
    models: { ...empty, Message: messages(count) },
    lastSyncId: count,
  });
}

/** A `sync` frame of one event on message `target` of the scope. */
function messageFrame(seq: number, target: string, action: 'update' | 'append', data: object): string {
  return JSON.stringify({
    type: 'sync',
    scope,
    latestSyncId: seq,
    events: [
      { id: seq, scope, model: 'Message', model_id: target, action, data, mutationId: null, created_at: now },
    ],
  });
}

/** One `update` event of a message's content (what the baseline understands, and PATCH sends). */
export function updateFrame(seq: number, target: string, content: string): string {
  return messageFrame(seq, target, 'update', { content, updated_at: now });
}

/** One `append` event (v1.1; the current client only). */
export function appendFrame(seq: number, target: string, offset: number, text: string): string {
  return messageFrame(seq, target, 'append', { field: 'content', offset, text, updated_at: now });
}

/** Token `i` of the streamed reply. */
export const token = (i: number) => ` token${i}`;

/**
 * The frames of a reply of `tokens` tokens streaming into message `target` of a scope whose log
 * is at `head` and whose message holds `start`: one event per token, `update` events carrying the
 * whole text so far (the PATCH way) or `append` events carrying the token (or `tokensPerEvent`
 * tokens: what a writer batching its appends sends). Tokens are numbered
 * from `first`, so each reply's last token is one the page has not seen before.
 */
export function streamFrames(
  mode: 'update' | 'append',
  head: number,
  target: string,
  start: string,
  tokens: number,
  first = 0,
  tokensPerEvent = 1,
): string[] {
  const frames: string[] = [];
  let text = start;
  for (let i = 0, seq = head + 1; i < tokens; i += tokensPerEvent, seq++) {
    let piece = '';
    for (let k = i; k < Math.min(tokens, i + tokensPerEvent); k++) piece += token(first + k);
    frames.push(
      mode === 'append'
        ? appendFrame(seq, target, text.length, piece)
        : updateFrame(seq, target, text + piece),
    );
    text += piece;
  }
  return frames;
}
