// @vitest-environment jsdom
import { createSyncClient, type SyncClient } from '@openagents/sync-client';
import { SyncProvider, useRecords } from '@openagents/sync-react';
import { act, cleanup, render } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatTime } from '../format';
import { MessageList } from './message-list';

vi.mock('../format', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../format')>();
  return { ...actual, formatTime: vi.fn(actual.formatTime) };
});

// The real bubble (memoised as it is), counting its renders by message id.
const bubbleRenders = vi.fn<(id: string) => void>();
vi.mock('./message-bubble', async (importOriginal) => {
  const actual = await importOriginal<typeof import('./message-bubble')>();
  const { countingRenders } = await import('../../test/count-renders');
  return { MessageBubble: countingRenders(actual.MessageBubble, (p) => bubbleRenders(p.message.id)) };
});

afterEach(cleanup);

const AGENT = '20000000-0000-4000-8000-000000000001';
const SCOPE = `agent:${AGENT}`;
const COUNT = 2_000;
const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [] };
const messageId = (i: number) => `30000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const createdAt = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();

function newClient(): SyncClient {
  // No socket: frames go through the client's message handler, as the gateway would send them.
  return createSyncClient({
    url: 'http://127.0.0.1:1',
    token: 't',
    autoConnect: false,
    fetch: () => new Promise<Response>(() => {}),
  });
}

function event(id: number, body: { model_id: string; action: string; data: Record<string, unknown> }) {
  return JSON.stringify({
    type: 'sync',
    scope: SCOPE,
    latestSyncId: id,
    events: [{ id, scope: SCOPE, model: 'Message', mutationId: null, created_at: createdAt(0), ...body }],
  });
}

function Transcript() {
  const messages = useRecords(SCOPE, 'Message');
  return <MessageList messages={messages} streamingId={messageId(3)} pendingIds={new Set()} />;
}

describe('MessageList on a live scope', () => {
  it('re-renders only the bubble a streamed token lands in, and no other for a new message', async () => {
    const client = newClient();
    client.subscribeScope(SCOPE);
    const messages = Array.from({ length: COUNT }, (_, i) => ({
      id: messageId(i),
      agent_id: AGENT,
      role: i % 2 ? 'assistant' : 'user',
      content: `message ${i}`,
      created_at: createdAt(i),
      updated_at: createdAt(i),
      created_sync_id: i + 1,
    }));
    client.receiveFrame(
      JSON.stringify({
        type: 'bootstrap',
        scope: SCOPE,
        models: { ...empty, Message: messages },
        lastSyncId: COUNT,
      }),
    );
    const { container } = render(
      <SyncProvider client={client}>
        <Transcript />
      </SyncProvider>,
    );
    const bubble = (i: number) =>
      container.querySelector(`[data-message-id="${messageId(i)}"] [data-testid=message-content]`);
    const shown = container.querySelectorAll('[data-testid=message]').length;
    expect(shown).toBeGreaterThan(3);
    expect(shown).toBeLessThan(40);

    const formatted = vi.mocked(formatTime);
    formatted.mockClear();
    bubbleRenders.mockClear();
    // A reply streams into message 3 (in view: jsdom has no scrolling, so the window is the first
    // rows), one append event per token, each published on its own.
    let text = 'message 3';
    let seq = COUNT;
    for (let t = 0; t < 30; t++) {
      const piece = ` token${t}`;
      await act(async () => {
        client.receiveFrame(
          event(++seq, {
            model_id: messageId(3),
            action: 'append',
            data: { field: 'content', offset: text.length, text: piece, updated_at: createdAt(3) },
          }),
        );
      });
      text += piece;
    }
    expect(bubble(3)?.textContent).toBe(text);
    const byMessage = () => new Set(bubbleRenders.mock.calls.map(([id]) => id));
    expect(byMessage()).toEqual(new Set([messageId(3)]));
    expect(bubbleRenders).toHaveBeenCalledTimes(30);
    // The streaming bubble's time line (its created_at does not change) is not formatted again.
    expect(formatted).not.toHaveBeenCalled();

    // A new message at the end (out of view): no bubble in view renders again.
    bubbleRenders.mockClear();
    await act(async () => {
      client.receiveFrame(
        event(++seq, {
          model_id: messageId(COUNT),
          action: 'insert',
          data: {
            id: messageId(COUNT),
            agent_id: AGENT,
            role: 'user',
            content: 'new',
            created_at: createdAt(COUNT),
            updated_at: createdAt(COUNT),
            created_sync_id: seq,
          },
        }),
      );
    });
    expect(client.getState().records.list(SCOPE, 'Message')).toHaveLength(COUNT + 1);
    expect(bubbleRenders.mock.calls.filter(([id]) => id !== messageId(COUNT))).toEqual([]);
    await client.close();
  });
});
