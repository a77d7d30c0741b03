// @vitest-environment jsdom
import { createSyncClient, type SyncClient } from '@openagents/sync-client';
import { act, cleanup, render, screen } from '@testing-library/react';
import { StrictMode } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import {
  SyncProvider,
  useAgentSync,
  useConnectionStatus,
  usePendingMutations,
  useRecord,
  useRecords,
} from './index';

const ORG = '00000000-0000-4000-8000-0000000000aa';
const A1 = '10000000-0000-4000-8000-000000000001';
const A2 = '10000000-0000-4000-8000-000000000002';
const AG = '20000000-0000-4000-8000-000000000001';
const M1 = '30000000-0000-4000-8000-000000000001';
const ORG_SCOPE = `org:${ORG}`;
const AGENT_SCOPE = `agent:${AG}`;

const agent = (id: string, name: string) => ({
  id,
  org_id: ORG,
  name,
  status: 'idle',
  created_at: 't0',
  updated_at: 't0',
});
const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [] };

function newClient(): SyncClient {
  // No socket: frames are fed through the client's message handler, as the gateway would send them.
  return createSyncClient({
    url: 'http://127.0.0.1:1',
    token: 't',
    autoConnect: false,
    fetch: () => new Promise<Response>(() => {}),
  });
}

function bootstrapOrg(client: SyncClient) {
  client.receiveFrame(
    JSON.stringify({
      type: 'bootstrap',
      scope: ORG_SCOPE,
      models: { ...empty, Agent: [agent(A1, 'one'), agent(A2, 'two')] },
      lastSyncId: 2,
    }),
  );
}

function updateName(client: SyncClient, seq: number, id: string, name: string) {
  client.receiveFrame(
    JSON.stringify({
      type: 'sync',
      scope: ORG_SCOPE,
      latestSyncId: seq,
      events: [
        {
          id: seq,
          scope: ORG_SCOPE,
          model: 'Agent',
          model_id: id,
          action: 'update',
          data: { name },
          mutationId: null,
          created_at: 't',
        },
      ],
    }),
  );
}

const renders = { one: 0, two: 0, list: 0 };
function One() {
  renders.one++;
  return <span data-testid="one">{useRecord('Agent', A1)?.name}</span>;
}
function Two() {
  renders.two++;
  return <span data-testid="two">{useRecord('Agent', A2)?.name}</span>;
}
const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
function Running() {
  renders.list++;
  const list = useRecords('Agent', { filter: (a) => a.status === 'running', sort: byName });
  return <span data-testid="running">{list.length}</span>;
}

let seen: ReturnType<typeof useAgentSync> | undefined;
function AgentView() {
  seen = useAgentSync(AGENT_SCOPE);
  return <span data-testid="status">{seen.status}</span>;
}

function Status() {
  const status = useConnectionStatus();
  const pending = usePendingMutations();
  return (
    <span data-testid="s">
      {status}/{pending.length}
    </span>
  );
}

afterEach(cleanup);

describe('react hooks', () => {
  it('a component selecting one record does not re-render when another record changes', async () => {
    const client = newClient();
    const unfollow = client.subscribeScope(ORG_SCOPE);
    bootstrapOrg(client);
    render(
      <SyncProvider client={client}>
        <One />
        <Two />
        <Running />
      </SyncProvider>,
    );
    expect(screen.getByTestId('one').textContent).toBe('one');
    const base = { ...renders };

    await act(async () => updateName(client, 3, A2, 'deux'));
    expect(screen.getByTestId('two').textContent).toBe('deux');
    expect(renders.two).toBe(base.two + 1);
    expect(renders.one).toBe(base.one);
    expect(renders.list).toBe(base.list); // the filtered list is still empty: same array, no render

    await act(async () => updateName(client, 4, A1, 'uno'));
    expect(screen.getByTestId('one').textContent).toBe('uno');
    expect(renders.one).toBe(base.one + 1);
    expect(renders.two).toBe(base.two + 1);
    unfollow();
    await client.close();
  });

  it('useAgentSync follows its scope while mounted and returns records grouped by model', async () => {
    const client = newClient();
    const { unmount } = render(
      <StrictMode>
        <SyncProvider client={client}>
          <AgentView />
        </SyncProvider>
      </StrictMode>,
    );
    expect(Object.keys(client.getState().scopes)).toEqual([AGENT_SCOPE]);
    expect(seen?.status).toBe('pending');
    expect(seen?.data.Message).toEqual({});
    const message = {
      id: M1,
      agent_id: AG,
      role: 'user',
      content: 'hi',
      created_at: 't0',
      updated_at: 't0',
    };
    await act(async () =>
      client.receiveFrame(
        JSON.stringify({
          type: 'bootstrap',
          scope: AGENT_SCOPE,
          models: { ...empty, Message: [message] },
          lastSyncId: 7,
        }),
      ),
    );
    expect(screen.getByTestId('status').textContent).toBe('live');
    expect(seen?.lastSyncId).toBe(7);
    expect(seen?.data.Message[M1]).toEqual(message);
    expect(seen?.data.Agent).toEqual({});
    expect(typeof seen?.mutate).toBe('function');
    // Records of another scope do not leak in, and do not change `data`'s identity.
    const before = seen?.data;
    await act(async () => {
      client.subscribeScope(ORG_SCOPE);
      bootstrapOrg(client);
    });
    expect(seen?.data).toBe(before);

    unmount();
    await new Promise((r) => setTimeout(r, 5)); // unfollow is deferred by a tick
    expect(Object.keys(client.getState().scopes)).toEqual([ORG_SCOPE]);
    await client.close();
  });

  it('useConnectionStatus and usePendingMutations follow the client', async () => {
    const client = newClient();
    render(
      <SyncProvider client={client}>
        <Status />
      </SyncProvider>,
    );
    expect(screen.getByTestId('s').textContent).toBe('idle/0');
    let write: Promise<unknown> | undefined;
    await act(async () => {
      write = client.insert('Agent', { org_id: ORG, name: 'new' }).catch((e: unknown) => e);
    });
    expect(screen.getByTestId('s').textContent).toBe('idle/1');
    await act(async () => {
      await client.close();
    });
    expect(String(await write)).toContain('closed');
    expect(screen.getByTestId('s').textContent).toBe('closed/1');
  });
});
