// @vitest-environment jsdom
import { createSyncClient, type SyncClient } from '@openagents/sync-client';
import { act, cleanup, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClientStore, SyncProvider, useRecord } from './index';

/**
 * `throttleMs`: at most one store update (one render of the hooks) per interval, the first change
 * after a quiet spell at once, the rest merged into one update at the interval's end carrying the
 * client's latest state. Fake timers: the interval is the clock's.
 */

const ORG = '00000000-0000-4000-8000-0000000000aa';
const A1 = '10000000-0000-4000-8000-000000000001';
const ORG_SCOPE = `org:${ORG}`;
const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [] };
const agent = { id: A1, org_id: ORG, name: 'n0', status: 'idle', created_at: 't0', updated_at: 't0' };

function newClient(): SyncClient {
  const client = createSyncClient({ url: 'http://127.0.0.1:1', token: 't', autoConnect: false });
  client.subscribeScope(ORG_SCOPE);
  client.receiveFrame(
    JSON.stringify({
      type: 'bootstrap',
      scope: ORG_SCOPE,
      models: { ...empty, Agent: [agent] },
      lastSyncId: 1,
    }),
  );
  return client;
}

/**
 * Event `seq` renames the agent `n<seq>`: the name says which event a reader has seen. The client
 * publishes in a microtask; the await lets it.
 */
async function rename(client: SyncClient, seq: number) {
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
          model_id: A1,
          action: 'update',
          data: { name: `n${seq}` },
          mutationId: null,
          created_at: 't',
        },
      ],
    }),
  );
  await Promise.resolve();
}

/** The last event of the state the store holds (the records view reads through to the client). */
const seqIn = (store: ReturnType<typeof createClientStore>['store']) =>
  store.getState().scopes[ORG_SCOPE]?.lastSyncId;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

describe('createClientStore throttleMs', () => {
  it('passes the first change at once and merges the rest of the interval into one update with the latest state', async () => {
    const client = newClient();
    const { store, attach } = createClientStore(client, { throttleMs: 100 });
    const stop = attach();
    const updates = vi.fn();
    store.subscribe(updates);

    await rename(client, 2);
    expect(seqIn(store)).toBe(2);
    expect(updates).toHaveBeenCalledTimes(1);

    vi.advanceTimersByTime(30);
    await rename(client, 3);
    vi.advanceTimersByTime(30);
    await rename(client, 4);
    expect(seqIn(store)).toBe(2);
    expect(updates).toHaveBeenCalledTimes(1);

    vi.advanceTimersByTime(39);
    expect(updates).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(seqIn(store)).toBe(4);
    expect(updates).toHaveBeenCalledTimes(2);

    // Quiet for a whole interval: the next change goes through at once again.
    vi.advanceTimersByTime(200);
    await rename(client, 5);
    expect(seqIn(store)).toBe(5);
    expect(updates).toHaveBeenCalledTimes(3);
    stop();
  });

  it('a 30-per-second stream updates the store at most once per interval', async () => {
    const client = newClient();
    const { store, attach } = createClientStore(client, { throttleMs: 100 });
    const stop = attach();
    const updates = vi.fn();
    store.subscribe(updates);
    for (let seq = 2; seq < 32; seq++) {
      await rename(client, seq);
      vi.advanceTimersByTime(33);
    }
    vi.advanceTimersByTime(100);
    expect(seqIn(store)).toBe(31);
    // 30 events over 990 ms: one update per 100 ms, and the last one.
    expect(updates.mock.calls.length).toBeGreaterThanOrEqual(10);
    expect(updates.mock.calls.length).toBeLessThanOrEqual(11);
    stop();
  });

  it('stopping drops a pending update: nothing reaches the store afterwards', async () => {
    const client = newClient();
    const { store, attach } = createClientStore(client, { throttleMs: 100 });
    const stop = attach();
    await rename(client, 2);
    await rename(client, 3);
    stop();
    vi.advanceTimersByTime(1_000);
    expect(seqIn(store)).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('without throttleMs every change reaches the store', async () => {
    const client = newClient();
    const { store, attach } = createClientStore(client);
    const stop = attach();
    const updates = vi.fn();
    store.subscribe(updates);
    for (let seq = 2; seq < 7; seq++) await rename(client, seq);
    expect(updates).toHaveBeenCalledTimes(5);
    expect(seqIn(store)).toBe(6);
    stop();
  });
});

let renders = 0;
function Name() {
  renders++;
  return <span data-testid="name">{useRecord('Agent', A1)?.name}</span>;
}

describe('<SyncProvider throttleMs>', () => {
  it('renders a burst of events once at the interval’s end, with the last one', async () => {
    const client = newClient();
    render(
      <SyncProvider client={client} throttleMs={100}>
        <Name />
      </SyncProvider>,
    );
    renders = 0;
    await act(() => rename(client, 2));
    expect(screen.getByTestId('name').textContent).toBe('n2');
    expect(renders).toBe(1);
    await act(async () => {
      for (let seq = 3; seq < 10; seq++) await rename(client, seq);
    });
    expect(screen.getByTestId('name').textContent).toBe('n2');
    expect(renders).toBe(1);
    act(() => vi.advanceTimersByTime(100));
    expect(screen.getByTestId('name').textContent).toBe('n9');
    expect(renders).toBe(2);
  });

  it('changing throttleMs takes effect (a new binding), with the current state', async () => {
    const client = newClient();
    const view = render(
      <SyncProvider client={client} throttleMs={100}>
        <Name />
      </SyncProvider>,
    );
    await act(() => rename(client, 2));
    await act(() => rename(client, 3));
    view.rerender(
      <SyncProvider client={client}>
        <Name />
      </SyncProvider>,
    );
    expect(screen.getByTestId('name').textContent).toBe('n3');
    await act(() => rename(client, 4));
    expect(screen.getByTestId('name').textContent).toBe('n4');
  });
});
