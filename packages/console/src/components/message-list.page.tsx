/**
 * A page for `message-list.browser.test.ts`: the console's `MessageList` over a real sync client
 * (no socket: frames are fed through its message handler, as the gateway would send them), in
 * the console's stylesheet. `window.__list` drives it.
 */
import { createSyncClient } from '@openagents/sync-client';
import { SyncProvider, useRecords } from '@openagents/sync-react';
import { createRoot } from 'react-dom/client';
import { MessageList } from './message-list';

const AGENT = '20000000-0000-4000-8000-000000000001';
const SCOPE = `agent:${AGENT}`;
const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [] };
const messageId = (i: number) => `30000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const at = '2026-01-01T00:00:00.000Z';

const client = createSyncClient({
  url: 'http://127.0.0.1:1',
  token: 't',
  autoConnect: false,
  fetch: () => new Promise<Response>(() => {}),
});
let seq = 0;

function row(i: number, content: string) {
  return {
    id: messageId(i),
    agent_id: AGENT,
    role: i % 2 ? 'assistant' : 'user',
    content,
    created_at: at,
    updated_at: at,
    created_sync_id: i + 1,
  };
}

function send(event: { model_id: string; action: string; data: Record<string, unknown> }) {
  seq++;
  client.receiveFrame(
    JSON.stringify({
      type: 'sync',
      scope: SCOPE,
      latestSyncId: seq,
      events: [{ id: seq, scope: SCOPE, model: 'Message', mutationId: null, created_at: at, ...event }],
    }),
  );
}

function Transcript() {
  const messages = useRecords(SCOPE, 'Message');
  return <MessageList messages={messages} streamingId={messages.at(-1)?.id ?? null} pendingIds={new Set()} />;
}

const list = {
  /** Bootstraps `count` messages of varied heights and mounts the list. */
  mount(count: number) {
    client.subscribeScope(SCOPE);
    const messages = Array.from({ length: count }, (_, i) =>
      row(i, `message ${i} `.repeat(1 + ((i * 7) % 23))),
    );
    seq = count;
    client.receiveFrame(
      JSON.stringify({
        type: 'bootstrap',
        scope: SCOPE,
        models: { ...empty, Message: messages },
        lastSyncId: seq,
      }),
    );
    createRoot(document.getElementById('root')!).render(
      <SyncProvider client={client}>
        <Transcript />
      </SyncProvider>,
    );
  },
  /** Appends `text` to message `i` at the end of its content (an append event). */
  append(i: number, text: string) {
    const content = client.getState().records.get('Message', messageId(i))!.content;
    send({
      model_id: messageId(i),
      action: 'append',
      data: { field: 'content', offset: content.length, text, updated_at: at },
    });
  },
  /** A new message at the end (an insert event). */
  insert(i: number, content: string) {
    send({
      model_id: messageId(i),
      action: 'insert',
      data: { ...row(i, content), created_sync_id: seq + 1 },
    });
  },
  count: () => client.getState().records.list(SCOPE, 'Message').length,
  lastSyncId: () => client.getState().scopes[SCOPE]?.lastSyncId ?? 0,
};

(window as unknown as { __list: typeof list }).__list = list;
