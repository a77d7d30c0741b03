// @vitest-environment jsdom
import { createSyncClient, type SyncClient } from '@openagents/sync-client';
import { act, cleanup, render, screen } from '@testing-library/react';
import { memo, StrictMode } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type AgentSync,
  SyncProvider,
  useAgentSync,
  useConnectionStatus,
  usePendingMutations,
  useRecord,
  useRecords,
  useScopeReady,
} from './index';

const ORG = '00000000-0000-4000-8000-0000000000aa';
const A1 = '10000000-0000-4000-8000-000000000001';
const A2 = '10000000-0000-4000-8000-000000000002';
const AG = '20000000-0000-4000-8000-000000000001';
const M1 = '30000000-0000-4000-8000-000000000001';
const ORG_SCOPE = `org:${ORG}`;
const AGENT_SCOPE = `agent:${AG}` as const;

const agent = (id: string, name: string) => ({
  id,
  org_id: ORG,
  name,
  status: 'idle',
  created_at: 't0',
  updated_at: 't0',
});
const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [] };

function newClient(fetch: typeof globalThis.fetch = () => new Promise<Response>(() => {})): SyncClient {
  // No socket: frames are fed through the client's message handler, as the gateway would send them.
  return createSyncClient({ url: 'http://127.0.0.1:1', token: 't', autoConnect: false, fetch });
}

/**
 * The write API in memory: records each request and answers it when the test calls `commit`
 * with the row the server would store (the body plus timestamps) in the scope of its agent.
 */
function answeringApi() {
  const requests: { url: string; method: string; key: string | null; body: Record<string, unknown> }[] = [];
  const waiting: ((res: Response) => void)[] = [];
  const fetch = ((url: string, init: RequestInit) => {
    requests.push({
      url,
      method: init.method ?? 'GET',
      key: new Headers(init.headers).get('idempotency-key'),
      body: JSON.parse(String(init.body)),
    });
    return new Promise<Response>((resolve) => waiting.push(resolve));
  }) as typeof globalThis.fetch;
  function commit(syncId: number, overrides: Record<string, unknown> = {}) {
    const body = requests[requests.length - waiting.length]!.body;
    const data = { ...body, created_at: 't1', updated_at: 't1', created_sync_id: syncId, ...overrides };
    waiting.shift()!(Response.json({ data, scope: `agent:${String(body.agent_id)}`, syncId }));
    return data;
  }
  return { fetch, requests, commit };
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

let seen: AgentSync<typeof AGENT_SCOPE> | undefined;
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

/** Render counters of the streaming test's components. */
const stream = {
  calls: { statusSelector: 0 },
  renders: { status: 0, ready: 0, list: 0, agents: 0, bubbles: new Map<string, number>() },
  list: [] as readonly { id: string; content: string }[],
};
const Bubble = memo(function Bubble({ id }: { id: string }) {
  stream.renders.bubbles.set(id, (stream.renders.bubbles.get(id) ?? 0) + 1);
  return <p>{useRecord('Message', id)?.content}</p>;
});
function StatusOnly() {
  stream.renders.status++;
  const status = useAgentSync(AGENT_SCOPE, (s) => {
    stream.calls.statusSelector++;
    return s.status;
  });
  return <span data-testid="st">{status}</span>;
}
function Ready() {
  stream.renders.ready++;
  return <span data-testid="ready">{String(useScopeReady(AGENT_SCOPE))}</span>;
}
function Transcript() {
  stream.renders.list++;
  stream.list = useRecords(AGENT_SCOPE, 'Message');
  return (
    <div>
      {stream.list.map((m) => (
        <Bubble key={m.id} id={m.id} />
      ))}
    </div>
  );
}
function Agents() {
  stream.renders.agents++;
  return <span>{useRecords(ORG_SCOPE, 'Agent').length}</span>;
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
    const api = answeringApi();
    const client = newClient(api.fetch);
    const { unmount } = render(
      <StrictMode>
        <SyncProvider client={client}>
          <AgentView />
        </SyncProvider>
      </StrictMode>,
    );
    expect(Object.keys(client.getState().scopes)).toEqual([AGENT_SCOPE]);
    expect(seen?.status).toBe('pending');
    expect(seen?.ready).toBe(false);
    expect(seen?.data.Message).toEqual([]);
    const message = {
      id: M1,
      agent_id: AG,
      role: 'user',
      content: 'hi',
      created_at: 't0',
      updated_at: 't0',
      created_sync_id: 7,
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
    expect(seen?.ready).toBe(true);
    expect(seen?.data.Message).toEqual([message]);
    expect(seen?.data.Agent).toEqual([]);
    // Records of another scope do not leak in, and do not change `data`'s identity.
    const before = seen?.data;
    await act(async () => {
      client.subscribeScope(ORG_SCOPE);
      bootstrapOrg(client);
    });
    expect(seen?.data).toBe(before);

    // `mutate` is bound to the scope: the insert lands in it with agent_id filled in, at once…
    let sent: Promise<unknown> | undefined;
    await act(async () => {
      sent = seen!.mutate.insert('Message', { role: 'user', content: 'typed' });
    });
    expect(seen?.data.Message.map((m) => [m.content, m.agent_id])).toEqual([
      ['hi', AG],
      ['typed', AG],
    ]);
    // …and goes to the server as a write into that scope.
    await vi.waitFor(() => expect(api.requests).toHaveLength(1));
    const [request] = api.requests;
    expect(request).toMatchObject({
      url: 'http://127.0.0.1:1/api/messages',
      method: 'POST',
      body: { agent_id: AG, role: 'user', content: 'typed' },
    });
    expect(request!.key).toBe(client.getState().pending[0]!.mutationId);
    // A model of another kind of scope, or a foreign scope id, is refused before anything happens.
    const refused = await (seen!.mutate as unknown as { insert: (m: string, d: object) => Promise<unknown> })
      .insert('Agent', { org_id: ORG, name: 'x' })
      .catch((e: unknown) => e);
    expect(String(refused)).toContain(`Agent records do not live in ${AGENT_SCOPE}`);
    const foreign = await seen!.mutate
      .insert('Message', { agent_id: ORG, role: 'user', content: 'elsewhere' })
      .catch((e: unknown) => e);
    expect(String(foreign)).toContain('is not the scope');
    expect(client.getState().pending).toHaveLength(1);
    expect(api.requests).toHaveLength(1);

    // The server's answer commits the write; its event, arriving on the stream, settles it.
    let stored: Record<string, unknown> = {};
    await act(async () => {
      stored = api.commit(8, { content: 'typed (stored)' });
      await sent;
    });
    expect(await sent).toMatchObject({ scope: AGENT_SCOPE, syncId: 8 });
    expect(client.getState().pending).toMatchObject([{ status: 'sent', scope: AGENT_SCOPE, syncId: 8 }]);
    await act(async () =>
      client.receiveFrame(
        JSON.stringify({
          type: 'sync',
          scope: AGENT_SCOPE,
          latestSyncId: 8,
          events: [
            {
              id: 8,
              scope: AGENT_SCOPE,
              model: 'Message',
              model_id: stored.id,
              action: 'insert',
              data: stored,
              mutationId: request!.key,
              created_at: 't1',
            },
          ],
        }),
      ),
    );
    expect(client.getState().pending).toEqual([]);
    expect(seen?.data.Message.map((m) => [m.id, m.content])).toEqual([
      [M1, 'hi'],
      [request!.body.id, 'typed (stored)'],
    ]);

    unmount();
    // Unfollowing waits a tick (a remount in the same tick keeps the scope), then happens.
    expect(Object.keys(client.getState().scopes)).toEqual([AGENT_SCOPE, ORG_SCOPE]);
    await vi.waitFor(() => expect(Object.keys(client.getState().scopes)).toEqual([ORG_SCOPE]));
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
  it('while a reply streams, only what shows the streamed message renders, and unrelated selectors do not run', async () => {
    const client = newClient();
    const count = 300;
    const msgId = (i: number) => `30000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    const messages = Array.from({ length: count }, (_, i) => ({
      id: msgId(i),
      agent_id: AG,
      role: i % 2 ? 'assistant' : 'user',
      content: `m${i}`,
      created_at: 't0', // every message shares a timestamp: only created_sync_id orders them
      updated_at: 't0',
      created_sync_id: i + 1,
    }));
    const calls = stream.calls;
    const r = stream.renders;
    render(
      <SyncProvider client={client}>
        <StatusOnly />
        <Ready />
        <Transcript />
        <Agents />
      </SyncProvider>,
    );
    client.subscribeScope(ORG_SCOPE);
    await act(async () => {
      bootstrapOrg(client);
      client.receiveFrame(
        JSON.stringify({
          type: 'bootstrap',
          scope: AGENT_SCOPE,
          // Delivered in reverse: the list is in commit order all the same.
          models: { ...empty, Message: [...messages].reverse() },
          lastSyncId: count,
        }),
      );
    });
    expect(screen.getByTestId('st').textContent).toBe('live');
    expect(screen.getByTestId('ready').textContent).toBe('true');
    expect(stream.list.map((m) => m.id)).toEqual(messages.map((m) => m.id));
    const base = { ...r, bubbles: new Map(r.bubbles), selector: calls.statusSelector };
    const target = msgId(count - 1);
    const before = stream.list;

    const tokens = 25;
    let text = messages.at(-1)!.content;
    for (let i = 0; i < tokens; i++) {
      const piece = ` t${i}`;
      const event = {
        id: count + 1 + i,
        scope: AGENT_SCOPE,
        model: 'Message',
        model_id: target,
        action: 'append',
        data: { field: 'content', offset: text.length, text: piece, updated_at: `t${i}` },
        mutationId: null,
        created_at: 't',
      };
      text += piece;
      await act(async () =>
        client.receiveFrame(
          JSON.stringify({ type: 'sync', scope: AGENT_SCOPE, events: [event], latestSyncId: event.id }),
        ),
      );
    }
    expect(stream.list.at(-1)?.content).toBe(text);
    expect(before.at(-1)?.content).toBe('m299'); // the list handed out earlier did not change
    expect(stream.list[0]).toBe(before[0]); // untouched records keep their identity
    // Per token: the transcript (its list changed) and the one streaming bubble render; the
    // status reader, the ready flag, the org's agent list and the other 999 bubbles do not.
    expect(r.list - base.list).toBe(tokens);
    expect((r.bubbles.get(target) ?? 0) - (base.bubbles.get(target) ?? 0)).toBe(tokens);
    const otherRenders = [...r.bubbles].filter(([id, n]) => id !== target && n !== base.bubbles.get(id));
    expect(otherRenders).toEqual([]);
    expect(r.status).toBe(base.status);
    expect(r.ready).toBe(base.ready);
    expect(r.agents).toBe(base.agents);

    // Changes in another scope do not even run this scope's selector.
    const selectorBefore = calls.statusSelector;
    const listBefore = stream.list;
    await act(async () => updateName(client, 3, A1, 'busy'));
    expect(calls.statusSelector).toBe(selectorBefore);
    expect(r.agents).toBe(base.agents + 1); // the org's list did change: a record in it moved
    expect(stream.list).toBe(listBefore);
    expect(r.list - base.list).toBe(tokens);
    await client.close();
  });
});
