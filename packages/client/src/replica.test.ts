import type { ClientFrame, ServerFrame, SyncEvent } from '@openagents/sync-protocol';
import { describe, expect, it } from 'vitest';
import { Replica } from './replica';
import type { PendingMutation, SyncErrorEntry } from './types';

const ORG = '00000000-0000-4000-8000-0000000000aa';
const SCOPE = `org:${ORG}`;
const id = (n: number) => `10000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const agent = (n: number, name = `a${n}`) => ({
  id: id(n),
  org_id: ORG,
  name,
  status: 'idle',
  created_at: 't',
  updated_at: 't',
});
const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [] };

function ev(
  seq: number,
  action: SyncEvent['action'],
  n: number,
  data: object | null,
  mutationId: string | null = null,
) {
  return {
    id: seq,
    scope: SCOPE,
    model: 'Agent',
    model_id: id(n),
    action,
    data,
    mutationId,
    created_at: 't',
  } as SyncEvent;
}
const sync = (...events: SyncEvent[]): ServerFrame => ({
  type: 'sync',
  scope: SCOPE,
  events,
  latestSyncId: events.at(-1)?.id ?? 0,
});
const boot = (lastSyncId: number, agents: object[], reset = false): ServerFrame => ({
  type: 'bootstrap',
  scope: SCOPE,
  models: { ...empty, Agent: agents as never },
  lastSyncId,
  ...(reset ? { reset: true as const } : {}),
});

function setup() {
  const sent: ClientFrame[] = [];
  const errors: Omit<SyncErrorEntry, 'at'>[] = [];
  let now = 0;
  const replica = new Replica({ send: (f) => sent.push(f), report: (e) => errors.push(e), now: () => now });
  const names = () => {
    replica.store.commit();
    return Object.fromEntries(replica.store.records.all('Agent').map((a) => [a.id, a.name]));
  };
  return { replica, sent, errors, names, tick: (ms: number) => (now += ms) };
}

const pending = (mutationId: string, n: number, name: string): PendingMutation => ({
  mutationId,
  model: 'Agent',
  action: 'update',
  id: id(n),
  data: { name },
  status: 'sending',
  createdAt: 'tc',
  attempts: 0,
});

describe('Replica', () => {
  it('subscribes followed scopes on connect: without a cursor first, from the cursor after', () => {
    const { replica, sent } = setup();
    replica.follow(SCOPE);
    expect(sent).toEqual([]);
    replica.connected();
    expect(sent).toEqual([{ type: 'subscribe', scope: SCOPE }]);
    expect(replica.scopes[SCOPE]?.status).toBe('bootstrapping');
    replica.receive(boot(4, [agent(1)]));
    expect(replica.scopes[SCOPE]).toEqual({ status: 'live', lastSyncId: 4 });
    replica.disconnected();
    expect(replica.scopes[SCOPE]?.status).toBe('pending');
    replica.connected();
    expect(sent.at(-1)).toEqual({ type: 'subscribe', scope: SCOPE, lastSyncId: 4 });
    replica.receive({ type: 'subscribed', scope: SCOPE, lastSyncId: 4 });
    expect(replica.scopes[SCOPE]?.status).toBe('live');
  });

  it('holds bootstrap pages with more: true aside and applies the scope at once with the last', () => {
    const { replica, names } = setup();
    replica.follow(SCOPE);
    replica.connected();
    replica.receive(boot(2, [agent(9, 'old')]));
    replica.receive(sync(ev(3, 'insert', 8, agent(8))));
    const page = (lastSyncId: number, agents: object[], more: boolean, reset = true): ServerFrame => ({
      ...(boot(lastSyncId, agents, reset) as Extract<ServerFrame, { type: 'bootstrap' }>),
      ...(more ? { more: true as const } : {}),
    });
    // A reset in three pages: nothing changes until the last one, then exactly the pages' union.
    replica.receive(page(7, [agent(1)], true));
    replica.receive(page(7, [agent(2)], true));
    expect(names()).toEqual({ [id(9)]: 'old', [id(8)]: 'a8' });
    expect(replica.cursor(SCOPE)).toBe(3);
    replica.receive(page(7, [agent(3)], false));
    expect(names()).toEqual({ [id(1)]: 'a1', [id(2)]: 'a2', [id(3)]: 'a3' });
    expect(replica.scopes[SCOPE]).toEqual({ status: 'live', lastSyncId: 7 });
    replica.receive(sync(ev(8, 'update', 2, { name: 'x' })));
    expect(names()).toEqual({ [id(1)]: 'a1', [id(2)]: 'x', [id(3)]: 'a3' });

    // Pages of an abandoned bootstrap (another lastSyncId) are dropped, not mixed in.
    replica.receive(page(9, [agent(4)], true));
    replica.receive(page(11, [agent(5)], true));
    replica.receive(page(11, [agent(6)], false));
    expect(names()).toEqual({ [id(5)]: 'a5', [id(6)]: 'a6' });
    // And pages held when the socket drops are forgotten: the next subscribe starts over.
    replica.receive(page(12, [agent(7)], true));
    replica.disconnected();
    replica.connected();
    replica.receive(page(12, [agent(1)], false));
    expect(names()).toEqual({ [id(1)]: 'a1' });
  });

  it('applies events in id order, skips duplicates, resubscribes from the cursor on a gap', () => {
    const { replica, sent, names, tick } = setup();
    replica.follow(SCOPE);
    replica.connected();
    replica.receive(boot(2, [agent(1)]));
    replica.receive(sync(ev(3, 'insert', 2, agent(2)), ev(4, 'update', 1, { name: 'x' })));
    replica.receive(sync(ev(3, 'insert', 2, agent(2, 'dup')))); // duplicate
    expect(names()).toEqual({ [id(1)]: 'x', [id(2)]: 'a2' });
    sent.length = 0;
    replica.receive(sync(ev(6, 'update', 2, { name: 'gap' })));
    expect(sent).toEqual([
      { type: 'unsubscribe', scope: SCOPE },
      { type: 'subscribe', scope: SCOPE, lastSyncId: 4 },
    ]);
    expect(names()[id(2)]).toBe('a2');
    // Another gap right away does not storm the server; after a while it may ask again.
    replica.receive(sync(ev(7, 'update', 2, { name: 'gap' })));
    expect(sent).toHaveLength(2);
    tick(10_000);
    replica.receive(sync(ev(7, 'update', 2, { name: 'gap' })));
    expect(sent).toHaveLength(4);
    // The catch-up arrives (out of order inside the frame): applied in id order.
    replica.receive(sync(ev(6, 'update', 2, { name: 'six' }), ev(5, 'update', 2, { name: 'five' })));
    expect(names()[id(2)]).toBe('six');
    expect(replica.cursor(SCOPE)).toBe(6);
  });

  it('a reset replaces the scope but keeps pending mutations on top', () => {
    const { replica, names } = setup();
    replica.follow(SCOPE);
    replica.connected();
    replica.receive(boot(3, [agent(1), agent(2)]));
    replica.store.addPending(pending('m1', 2, 'mine'));
    expect(names()).toEqual({ [id(1)]: 'a1', [id(2)]: 'mine' });
    replica.receive(boot(9, [agent(2, 'server'), agent(3)], true));
    expect(names()).toEqual({ [id(2)]: 'mine', [id(3)]: 'a3' });
    expect(replica.cursor(SCOPE)).toBe(9);
    // The event carrying the mutationId confirms it: the pending layer goes, the server value stays.
    replica.receive(sync(ev(10, 'update', 2, { name: 'mine' }, 'm1')));
    expect(replica.store.pending).toEqual([]);
    expect(names()[id(2)]).toBe('mine');
    expect(replica.takeChanges().pending).toBe(true);
  });

  it('a committed mutation waits for the cursor to reach its syncId', () => {
    const { replica, names } = setup();
    replica.follow(SCOPE);
    replica.connected();
    replica.receive(boot(1, [agent(1)]));
    replica.store.addPending(pending('m1', 1, 'mine'));
    replica.mutationCommitted('m1', { data: {}, scope: SCOPE, syncId: 3 });
    expect(replica.store.pending[0]).toMatchObject({ status: 'sent', syncId: 3 });
    replica.receive(sync(ev(2, 'update', 1, { status: 'running' })));
    expect(replica.store.pending).toHaveLength(1);
    expect(names()[id(1)]).toBe('mine');
    replica.receive(sync(ev(3, 'update', 1, { name: 'mine' })));
    expect(replica.store.pending).toEqual([]);
    // Already passed: confirmed at once. Unfollowed scope: nothing will come, confirmed too.
    replica.store.addPending(pending('m2', 1, 'again'));
    replica.mutationCommitted('m2', { data: {}, scope: SCOPE, syncId: 3 });
    replica.store.addPending(pending('m3', 1, 'elsewhere'));
    replica.mutationCommitted('m3', { data: {}, scope: 'org:other', syncId: 1 });
    expect(replica.store.pending).toEqual([]);
  });

  it('marks a refused scope as error and ignores frames for scopes it does not follow', () => {
    const { replica, errors, names } = setup();
    replica.follow(SCOPE);
    replica.connected();
    replica.receive({ type: 'error', code: 'forbidden', message: 'no', scope: SCOPE });
    expect(replica.scopes[SCOPE]).toMatchObject({ status: 'error', error: 'forbidden: no' });
    expect(errors[0]).toMatchObject({ kind: 'scope', code: 'forbidden', scope: SCOPE });
    replica.receive({ type: 'error', code: 'bad_request', message: 'bad' });
    expect(errors[1]).toMatchObject({ kind: 'connection', code: 'bad_request' });
    replica.receive({ ...boot(1, [agent(1)]), scope: 'org:someone-else' } as ServerFrame);
    replica.receive({ ...sync(ev(1, 'insert', 5, agent(5))), scope: 'org:someone-else' } as ServerFrame);
    expect(names()).toEqual({});
  });

  it('does not send a scope the server would refuse as malformed; marks it as error', () => {
    const { replica, sent } = setup();
    for (const bad of ['', 'no-colon', 'org:', 'ORG:x', `org:${'x'.repeat(500)}`, 'org:a b'])
      replica.follow(bad);
    replica.connected();
    expect(sent).toEqual([]);
    for (const state of Object.values(replica.scopes)) expect(state.status).toBe('error');
  });

  it('an event whose scope differs from its frame is treated as a gap, not applied', () => {
    const { replica, names, sent } = setup();
    replica.follow(SCOPE);
    replica.connected();
    replica.receive(boot(0, []));
    replica.receive(sync({ ...ev(1, 'insert', 1, agent(1)), scope: 'org:other' }));
    expect(names()).toEqual({});
    expect(sent.at(-1)).toEqual({ type: 'subscribe', scope: SCOPE });
  });

  it('follow is ref-counted; the last unfollow unsubscribes and forgets the records', () => {
    const { replica, sent, names } = setup();
    replica.follow(SCOPE);
    replica.follow(SCOPE);
    replica.connected();
    expect(sent).toHaveLength(1);
    replica.receive(boot(1, [agent(1)]));
    replica.unfollow(SCOPE);
    expect(names()).toEqual({ [id(1)]: 'a1' });
    replica.unfollow(SCOPE);
    expect(sent.at(-1)).toEqual({ type: 'unsubscribe', scope: SCOPE });
    expect(names()).toEqual({});
    expect(replica.scopes).toEqual({});
    expect(replica.takeChanges().dropped.has(SCOPE)).toBe(true);
  });
  it('an append piece beyond the text is not applied: resume from the cursor, then a fresh bootstrap', () => {
    const { replica, sent, names, tick } = setup();
    replica.follow(SCOPE);
    replica.connected();
    replica.receive(boot(4, [agent(1, 'Sc')]));
    const piece = (seq: number, offset: number, text: string) =>
      ev(seq, 'append', 1, { field: 'name', offset, text, updated_at: 't' });
    replica.receive(sync(piece(5, 2, 'out')));
    expect(names()[id(1)]).toBe('Scout');
    sent.length = 0;
    // Event 6 starts at 9 but the name is 5 long: a piece is missing from our copy.
    replica.receive(sync(piece(6, 9, '!')));
    expect(names()[id(1)]).toBe('Scout');
    expect(replica.cursor(SCOPE)).toBe(5);
    expect(sent).toEqual([
      { type: 'unsubscribe', scope: SCOPE },
      { type: 'subscribe', scope: SCOPE, lastSyncId: 5 },
    ]);
    // Replayed from the cursor, it still does not fit: only a fresh snapshot can fix our copy.
    sent.length = 0;
    tick(10);
    replica.receive(sync(piece(6, 9, '!')));
    expect(sent).toEqual([
      { type: 'unsubscribe', scope: SCOPE },
      { type: 'subscribe', scope: SCOPE },
    ]);
    replica.receive(boot(6, [agent(1, 'Scout...!')]));
    expect(names()[id(1)]).toBe('Scout...!');
    expect(replica.cursor(SCOPE)).toBe(6);
  });
});
