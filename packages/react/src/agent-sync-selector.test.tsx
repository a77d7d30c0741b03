// @vitest-environment jsdom
import { createSyncClient } from '@openagents/sync-client';
import { act, cleanup, render } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { type ScopeSnapshot, SyncProvider, useAgentSync, useRecords } from './index';

afterEach(cleanup);

const ORG = '00000000-0000-4000-8000-0000000000aa';
const AG = '20000000-0000-4000-8000-000000000001';
const ORG_SCOPE = `org:${ORG}`;
const AGENT_SCOPE = `agent:${AG}`;
const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [] };
const agentId = (i: number) => `10000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

function event(scope: string, id: number, model: string, modelId: string, data: Record<string, unknown>) {
  return JSON.stringify({
    type: 'sync',
    scope,
    latestSyncId: id,
    events: [
      { id, scope, model, model_id: modelId, action: 'update', data, mutationId: null, created_at: 't' },
    ],
  });
}

const counts = { selected: 0, rendered: 0 };

const selectFirstContent = (s: ScopeSnapshot) => {
  counts.selected++;
  return s.data.Message.length > 0 ? s.data.Message[0]!.content : '';
};

function View() {
  counts.rendered++;
  const content = useAgentSync(AGENT_SCOPE, selectFirstContent);
  const messages = useRecords(AGENT_SCOPE, 'Message');
  return (
    <span data-testid="v">
      {content}/{messages.length}
    </span>
  );
}

describe('useAgentSync and useRecords with unrelated records moving', () => {
  it('run the selector and render only when their own scope changes', async () => {
    const client = createSyncClient({
      url: 'http://127.0.0.1:1',
      token: 't',
      autoConnect: false,
      fetch: () => new Promise<Response>(() => {}),
    });
    client.subscribeScope(ORG_SCOPE);
    const agents = Array.from({ length: 1_000 }, (_, i) => ({
      id: agentId(i),
      org_id: ORG,
      name: `a${i}`,
      status: 'idle',
      created_at: 't',
      updated_at: 't',
      created_sync_id: i + 1,
    }));
    client.receiveFrame(
      JSON.stringify({
        type: 'bootstrap',
        scope: ORG_SCOPE,
        models: { ...empty, Agent: agents },
        lastSyncId: 1_000,
      }),
    );
    const message = { id: '30000000-0000-4000-8000-000000000001', agent_id: AG, role: 'user', content: 'hi' };
    counts.selected = 0;
    counts.rendered = 0;
    const { getByTestId } = render(
      <SyncProvider client={client}>
        <View />
      </SyncProvider>,
    );
    await act(async () => {
      client.receiveFrame(
        JSON.stringify({
          type: 'bootstrap',
          scope: AGENT_SCOPE,
          models: {
            ...empty,
            Message: [{ ...message, created_at: 't', updated_at: 't', created_sync_id: 1 }],
          },
          lastSyncId: 1,
        }),
      );
    });
    expect(getByTestId('v').textContent).toBe('hi/1');
    const { selected: selectedBefore, rendered: renderedBefore } = counts;
    // 50 events in the org scope, each published on its own: nothing of the agent scope moves.
    for (let i = 0; i < 50; i++) {
      await act(async () => {
        client.receiveFrame(event(ORG_SCOPE, 1_001 + i, 'Agent', agentId(i), { name: `renamed ${i}` }));
      });
    }
    expect(client.getState().records.get('Agent', agentId(49))?.name).toBe('renamed 49');
    expect(counts.selected).toBe(selectedBefore);
    expect(counts.rendered).toBe(renderedBefore);
    // One event in the agent scope: the selector runs again and the view follows.
    await act(async () => {
      client.receiveFrame(event(AGENT_SCOPE, 2, 'Message', message.id, { content: 'hello' }));
    });
    expect(getByTestId('v').textContent).toBe('hello/1');
    expect(counts.selected).toBeGreaterThan(selectedBefore);
    await client.close();
  });
});
