// @vitest-environment jsdom
import { createSyncClient } from '@openagents/sync-client';
import { SyncProvider } from '@openagents/sync-react';
import { act, cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConsoleContext, type ConsoleServices } from '../console-context';
import { ReplyQueue } from '../reply-queue';
import { AgentChat } from './agent-chat';

// The real composer (memoised as it is), counting its renders.
const composerRenders = vi.fn();
vi.mock('./composer', async (importOriginal) => {
  const actual = await importOriginal<typeof import('./composer')>();
  const { countingRenders } = await import('../../test/count-renders');
  return { Composer: countingRenders(actual.Composer, () => composerRenders()) };
});

afterEach(cleanup);

const ORG = '00000000-0000-4000-8000-0000000000aa';
const AGENT = '20000000-0000-4000-8000-000000000001';
const SCOPE = `agent:${AGENT}`;
const MESSAGE = '30000000-0000-4000-8000-000000000001';
const at = '2026-12-01T00:00:00.000Z';
const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [] };

describe('AgentChat while a reply streams', () => {
  it('re-renders the chat per token but not its composer', async () => {
    const client = createSyncClient({
      url: 'http://127.0.0.1:1',
      token: 't',
      autoConnect: false,
      fetch: () => new Promise<Response>(() => {}),
    });
    const services: ConsoleServices = {
      client,
      config: { url: 'http://127.0.0.1:1', token: 't', source: 'injected' },
      replies: new ReplyQueue(() => {}),
      reportError: () => {},
    };
    render(
      <SyncProvider client={client}>
        <ConsoleContext value={services}>
          <AgentChat orgId={ORG} agentId={AGENT} />
        </ConsoleContext>
      </SyncProvider>,
    );
    let text = 'Thinking';
    await act(async () => {
      client.receiveFrame(
        JSON.stringify({
          type: 'bootstrap',
          scope: SCOPE,
          models: {
            ...empty,
            Message: [
              {
                id: MESSAGE,
                agent_id: AGENT,
                role: 'assistant',
                content: text,
                created_at: at,
                updated_at: at,
                created_sync_id: 1,
              },
            ],
          },
          lastSyncId: 1,
        }),
      );
    });
    composerRenders.mockClear();
    for (let seq = 2; seq <= 11; seq++) {
      const piece = ` token${seq}`;
      await act(async () => {
        client.receiveFrame(
          JSON.stringify({
            type: 'sync',
            scope: SCOPE,
            latestSyncId: seq,
            events: [
              {
                id: seq,
                scope: SCOPE,
                model: 'Message',
                model_id: MESSAGE,
                action: 'append',
                data: { field: 'content', offset: text.length, text: piece, updated_at: at },
                mutationId: null,
                created_at: at,
              },
            ],
          }),
        );
      });
      text += piece;
    }
    // The chat followed every token (its header shows the last event applied)...
    expect(screen.getByTestId('message-content').textContent).toBe(text);
    expect(screen.getByTestId('chat').textContent).toContain('#11');
    // ...and its composer did not render once for them.
    expect(composerRenders).not.toHaveBeenCalled();
    await client.close();
  });
});
