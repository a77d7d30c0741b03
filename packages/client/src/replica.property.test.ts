import {
  type ClientFrame,
  MODEL_NAMES,
  type ModelName,
  ServerFrame,
  type SyncEvent,
  type WriteResult,
} from '@openagents/sync-protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Replica } from './replica';
import type { PendingMutation } from './types';

/*
 * Model-based test of the client's frame handling. A small but faithful server keeps a log per
 * scope (ids 1, 2, 3, … — it can also prune, so that a stale cursor gets `bootstrap reset`), and
 * answers subscribe frames the way the contract says. Between the two sits an adversarial
 * network that duplicates, reorders and drops frames, and a socket that may drop at any time.
 * Whatever happens, once the network behaves again (one last reconnect, frames delivered in
 * order), the client must hold exactly what a fresh bootstrap would give it.
 */

const ORG_ID = '00000000-0000-4000-8000-0000000000aa';
const AGENT_ID = '00000000-0000-4000-8000-0000000000bb';
const SCOPES = [`org:${ORG_ID}`, `agent:${AGENT_ID}`] as const;
const uuid = (tag: number, n: number) =>
  `${String(tag).padStart(8, '0')}-0000-4000-8000-${String(n).padStart(12, '0')}`;

type Row = Record<string, unknown>;

class ModelServer {
  state = new Map<string, Map<string, { model: ModelName; row: Row }>>(SCOPES.map((s) => [s, new Map()]));
  logs = new Map<string, SyncEvent[]>(SCOPES.map((s) => [s, []]));
  prunedThrough = new Map<string, number>(SCOPES.map((s) => [s, 0]));
  live = new Set<string>();
  constructor(private readonly push: (frame: ServerFrame) => void) {}

  head(scope: string): number {
    return this.logs.get(scope)!.length;
  }

  commit(
    scope: string,
    model: ModelName,
    action: SyncEvent['action'],
    id: string,
    data: Row | null,
    mutationId: string | null = null,
  ): SyncEvent {
    const rows = this.state.get(scope)!;
    // Like the real server, an insert stamps the record with the id of its own event.
    if (action === 'insert') data = { ...data, created_sync_id: this.head(scope) + 1 };
    if (action === 'insert') rows.set(id, { model, row: data! });
    else if (action === 'update') rows.get(id)!.row = { ...rows.get(id)!.row, ...data };
    else rows.delete(id);
    const event: SyncEvent = {
      id: this.head(scope) + 1,
      scope,
      model,
      model_id: id,
      action,
      data,
      mutationId,
      created_at: 't',
    };
    this.logs.get(scope)!.push(event);
    if (this.live.has(scope)) this.push({ type: 'sync', scope, events: [event], latestSyncId: event.id });
    return event;
  }

  bootstrap(scope: string, reset: boolean): ServerFrame {
    const models = Object.fromEntries(MODEL_NAMES.map((m) => [m, [] as Row[]]));
    for (const { model, row } of this.state.get(scope)!.values()) models[model]!.push(row);
    return {
      type: 'bootstrap',
      scope,
      models,
      lastSyncId: this.head(scope),
      ...(reset ? { reset: true } : {}),
    };
  }

  receive(frame: ClientFrame): void {
    switch (frame.type) {
      case 'subscribe': {
        const { scope } = frame;
        const cursor = frame.lastSyncId ?? 0;
        if (cursor === 0) this.push(this.bootstrap(scope, false));
        else if (cursor < this.prunedThrough.get(scope)! || cursor > this.head(scope)) {
          this.push(this.bootstrap(scope, true));
        } else {
          const events = this.logs.get(scope)!.slice(cursor);
          for (let i = 0; i < events.length; i += 2) {
            const page = events.slice(i, i + 2);
            this.push({ type: 'sync', scope, events: page, latestSyncId: page.at(-1)!.id });
          }
        }
        this.push({ type: 'subscribed', scope, lastSyncId: this.head(scope) });
        this.live.add(scope);
        return;
      }
      case 'unsubscribe':
        this.live.delete(frame.scope);
        return;
      case 'ping':
        return;
    }
  }
}

type Step =
  | { k: 'write'; scope: 0 | 1; slot: number; op: number; text: string }
  | { k: 'deliver'; i: number; dup: boolean }
  | { k: 'drop'; i: number }
  | { k: 'reconnect' }
  | { k: 'prune'; scope: 0 | 1 }
  | { k: 'clientWrite'; slot: number; text: string }
  | { k: 'commitPending'; ack: boolean };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('write' as const),
      scope: fc.constantFrom(0 as const, 1 as const),
      slot: fc.nat(3),
      op: fc.nat(3),
      text: fc.string({ maxLength: 4 }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({ k: fc.constant('deliver' as const), i: fc.nat(20), dup: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('drop' as const), i: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('reconnect' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('prune' as const),
      scope: fc.constantFrom(0 as const, 1 as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('clientWrite' as const),
      slot: fc.nat(3),
      text: fc.string({ maxLength: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('commitPending' as const), ack: fc.boolean() }) },
);

function run(steps: Step[]) {
  let network: ServerFrame[] = [];
  let connected = false;
  const server = new ModelServer((f) => {
    if (connected) network.push(JSON.parse(JSON.stringify(f)));
  });
  let clock = 0;
  const replica = new Replica({
    send: (f) => {
      if (connected) server.receive(f);
    },
    report: () => {},
    now: () => (clock += 1000),
  });
  // Every frame goes through the client's parser, as it would off the socket.
  const deliver = (f: ServerFrame) => replica.receive(ServerFrame.parse(JSON.parse(JSON.stringify(f))));
  const reconnect = () => {
    connected = false;
    network = [];
    server.live.clear();
    replica.disconnected();
    connected = true;
    replica.connected();
  };
  for (const s of SCOPES) replica.follow(s);
  reconnect();

  let clientSeq = 0;
  const lostAcks: [string, WriteResult][] = [];
  let queue: PendingMutation[] = [];
  const commitPending = (p: PendingMutation, ack: boolean) => {
    const rows = server.state.get(SCOPES[0])!;
    if (p.action === 'update' && !rows.has(p.id)) {
      replica.store.removePending(p.mutationId); // the server says 404: rolled back
      return;
    }
    const data =
      p.action === 'insert'
        ? { ...p.data, id: p.id, created_at: 't', updated_at: 't' }
        : { ...p.data, updated_at: 'u' };
    const event = server.commit(SCOPES[0], 'Agent', p.action, p.id, data, p.mutationId);
    const result = { data: {}, scope: SCOPES[0], syncId: event.id };
    // A lost response is not lost for good: the client retries under the same key and the server
    // answers with this first result. That answer arrives once the network heals.
    if (ack) replica.mutationCommitted(p.mutationId, result);
    else lostAcks.push([p.mutationId, result]);
  };

  for (const s of steps) {
    switch (s.k) {
      case 'write': {
        const scope = SCOPES[s.scope];
        const model: ModelName = s.scope === 0 ? 'Agent' : 'Message';
        const id = uuid(s.scope + 1, s.slot);
        const exists = server.state.get(scope)!.has(id);
        if (!exists) {
          const row =
            model === 'Agent'
              ? { id, org_id: ORG_ID, name: s.text || 'n', status: 'idle', created_at: 't', updated_at: 't' }
              : { id, agent_id: AGENT_ID, role: 'user', content: s.text, created_at: 't', updated_at: 't' };
          server.commit(scope, model, 'insert', id, row);
        } else if (s.op === 0) server.commit(scope, model, 'delete', id, null);
        else
          server.commit(
            scope,
            model,
            'update',
            id,
            model === 'Agent' ? { name: s.text || 'n' } : { content: s.text },
          );
        break;
      }
      case 'deliver': {
        if (network.length === 0) break;
        const i = s.i % network.length;
        const frame = network[i]!;
        if (!s.dup) network.splice(i, 1);
        deliver(frame);
        break;
      }
      case 'drop':
        if (network.length > 0) network.splice(s.i % network.length, 1);
        break;
      case 'reconnect':
        reconnect();
        break;
      case 'prune': {
        const scope = SCOPES[s.scope];
        server.prunedThrough.set(scope, server.head(scope));
        break;
      }
      case 'clientWrite': {
        const target = uuid(1, s.slot);
        const known = replica.store.records.get('Agent', target) !== undefined;
        const p: PendingMutation = {
          mutationId: `c-${++clientSeq}`,
          model: 'Agent',
          action: known ? 'update' : 'insert',
          id: known ? target : uuid(9, clientSeq),
          data: known ? { name: `c${s.text}` } : { org_id: ORG_ID, name: `c${s.text}`, status: 'idle' },
          status: 'sending',
          createdAt: 't',
          attempts: 0,
        };
        replica.store.addPending(p);
        replica.store.commit();
        queue.push(p);
        break;
      }
      case 'commitPending': {
        const p = queue.shift();
        if (p) commitPending(p, s.ack);
        break;
      }
    }
    replica.store.commit();
  }

  // The network heals: every write is committed, one clean reconnect, frames in order.
  for (const p of queue) commitPending(p, false);
  queue = [];
  for (const [mutationId, result] of lostAcks) replica.mutationCommitted(mutationId, result);
  reconnect();
  for (let guard = 0; network.length > 0 && guard < 10_000; guard++) deliver(network.shift()!);
  replica.store.commit();

  const fresh = new Replica({ send: () => {}, report: () => {} });
  for (const s of SCOPES) {
    fresh.follow(s);
    fresh.receive(server.bootstrap(s, false));
  }
  fresh.store.commit();
  return { replica, fresh, server };
}

describe('Replica (model-based)', () => {
  it('converges to a fresh bootstrap under duplicates, reordering, drops, reconnects and resets', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), (steps) => {
        const { replica, fresh, server } = run(steps);
        expect(replica.store.records.toJSON()).toEqual(fresh.store.records.toJSON());
        // The maintained lists hold the same records in the same (commit) order as a fresh copy.
        for (const scope of SCOPES) {
          for (const m of MODEL_NAMES) {
            expect(replica.store.records.list(scope, m).map((r) => r.id)).toEqual(
              fresh.store.records.list(scope, m).map((r) => r.id),
            );
          }
        }
        expect(replica.store.pending).toEqual([]);
        for (const s of SCOPES) {
          expect(replica.cursor(s)).toBe(server.head(s));
          expect(replica.scopes[s]?.status).toBe('live');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('shows pending writes on top of whatever the server sent, at every step', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.string({ maxLength: 3 }), (steps, text) => {
        const { replica, server } = run(steps);
        const id = uuid(7, 1);
        replica.store.addPending({
          mutationId: 'mine',
          model: 'Agent',
          action: 'insert',
          id,
          data: { org_id: ORG_ID, name: `p${text}`, status: 'idle' },
          status: 'sending',
          createdAt: 't',
          attempts: 0,
        });
        replica.store.commit();
        expect(replica.store.records.get('Agent', id)?.name).toBe(`p${text}`);
        replica.receive({
          type: 'bootstrap',
          scope: SCOPES[0],
          models: {},
          lastSyncId: server.head(SCOPES[0]),
          reset: true,
        });
        replica.store.commit();
        expect(replica.store.records.all('Agent').map((r) => r.id)).toEqual([id]);
      }),
      { numRuns: 50 },
    );
  });
});
