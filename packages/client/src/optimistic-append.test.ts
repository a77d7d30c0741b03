import type { ServerFrame, SyncEvent } from '@openagents/sync-protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Replica } from './replica';
import { createSyncClient } from './sync-client';

/*
 * Optimistic appends: what this client's stream writer writes shows at once in its own records,
 * and the server's append events for the same text — batched, repeated, replayed after a resume —
 * join it by offset without doubling it.
 */

const AGENT = '00000000-0000-4000-8000-0000000000bb';
const SCOPE = `agent:${AGENT}`;
const MSG = '30000000-0000-4000-8000-000000000001';
const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [] };

const messageRow = (content: string) => ({
  id: MSG,
  agent_id: AGENT,
  role: 'assistant',
  content,
  created_at: 't',
  updated_at: 't',
  created_sync_id: 1,
});

function appendEvent(id: number, offset: number, text: string): SyncEvent {
  return {
    id,
    scope: SCOPE,
    model: 'Message',
    model_id: MSG,
    action: 'append',
    data: { field: 'content', offset, text, updated_at: `t${id}` },
    mutationId: null,
    created_at: 't',
  };
}

const sync = (events: SyncEvent[]): ServerFrame => ({
  type: 'sync',
  scope: SCOPE,
  latestSyncId: events.at(-1)?.id ?? 0,
  events,
});

const bootstrap = (content: string, lastSyncId: number): ServerFrame => ({
  type: 'bootstrap',
  scope: SCOPE,
  models: { ...empty, Message: [messageRow(content)] },
  lastSyncId,
});

describe('a stream writer’s pieces in its own client', () => {
  it('show at once, and the server’s events for them (duplicates included) do not double them', async () => {
    const client = createSyncClient({
      url: 'http://127.0.0.1:1',
      token: 't',
      autoConnect: false,
      // Requests never answered: the pieces stay in flight, as on a slow network.
      fetch: () => new Promise<Response>(() => {}),
    });
    client.subscribeScope(SCOPE);
    client.receiveFrame(JSON.stringify(bootstrap('Hi', 1)));
    const content = () => client.getState().records.get('Message', MSG)?.content;
    const writer = client.stream('Message', MSG, 'content');
    writer.write(' the');
    expect(content()).toBe('Hi the');
    writer.write('re 👋');
    expect(content()).toBe('Hi there 👋');
    // The server committed the first piece; the event arrives twice (a redelivery).
    client.receiveFrame(JSON.stringify(sync([appendEvent(2, 2, ' the')])));
    client.receiveFrame(JSON.stringify(sync([appendEvent(2, 2, ' the')])));
    expect(content()).toBe('Hi there 👋');
    // The rest, split differently from the writes (the server merges what commits together).
    client.receiveFrame(JSON.stringify(sync([appendEvent(3, 6, 're'), appendEvent(4, 8, ' 👋')])));
    expect(content()).toBe('Hi there 👋');
    expect(client.getState().scopes[SCOPE]?.lastSyncId).toBe(4);
    writer.close();
    await writer.done.catch(() => {});
    await client.close();
  });

  it('is taken away when the writer is refused, leaving the server’s text', async () => {
    const client = createSyncClient({
      url: 'http://127.0.0.1:1',
      token: 't',
      autoConnect: false,
      fetch: async () =>
        new Response(JSON.stringify({ error: { code: 'forbidden', message: 'not yours' } }), { status: 403 }),
    });
    client.subscribeScope(SCOPE);
    client.receiveFrame(JSON.stringify(bootstrap('Hi', 1)));
    const writer = client.stream('Message', MSG, 'content');
    writer.write(' there');
    expect(client.getState().records.get('Message', MSG)?.content).toBe('Hi there');
    await expect(writer.end()).rejects.toThrow();
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    expect(client.getState().records.get('Message', MSG)?.content).toBe('Hi');
    await client.close();
  });
});

describe('local text against the server’s events (property)', () => {
  type Step =
    | { k: 'write' }
    | { k: 'commit'; pieces: number }
    | { k: 'deliver' }
    | { k: 'redeliver'; back: number }
    | { k: 'resume'; extra: number };
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 4, arbitrary: fc.constant({ k: 'write' as const }) },
    {
      weight: 3,
      arbitrary: fc.record({ k: fc.constant('commit' as const), pieces: fc.integer({ min: 1, max: 4 }) }),
    },
    { weight: 3, arbitrary: fc.constant({ k: 'deliver' as const }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('redeliver' as const), back: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('resume' as const), extra: fc.nat() }) },
  );
  const piece = fc.oneof(
    fc.constantFrom('😀', '👩‍💻', 'e\u0301', '\n', ''),
    fc.string({ maxLength: 5 }),
    fc.string({ unit: 'grapheme', maxLength: 2 }),
  );

  it('the writer always sees exactly what it wrote, and in the end the server’s text alone', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 6 }),
        fc.array(piece, { minLength: 1, maxLength: 25 }),
        fc.array(step, { maxLength: 80 }),
        (start, pieces, steps) => {
          const replica = new Replica({ send: () => {}, report: () => {} });
          const store = replica.store;
          replica.follow(SCOPE);
          replica.connected();
          replica.receive(bootstrap(start, 1));
          store.commit();
          // The writer's side: pieces written so far, and the offset each went to.
          let written = start;
          let nextPiece = 0;
          // The server's side: text committed (always a prefix of what was written), its log.
          let committed = start;
          let sentUpTo = 0; // pieces the server has committed
          const log: SyncEvent[] = [];
          let delivered = 0;
          const offsets: number[] = [];
          const visible = () => store.records.get('Message', MSG)?.content;
          const write = () => {
            const p = pieces[nextPiece++]!;
            offsets.push(written.length);
            store.appendLocal('Message', MSG, 'content', written.length, p);
            written += p;
          };
          const commit = (n: number) => {
            // Pieces committed together become one event (the server's commit pipeline).
            const upTo = Math.min(nextPiece, sentUpTo + n);
            if (upTo === sentUpTo) return;
            const text = pieces.slice(sentUpTo, upTo).join('');
            log.push(appendEvent(log.length + 2, committed.length, text));
            committed += text;
            sentUpTo = upTo;
          };
          for (const s of steps) {
            if (s.k === 'write' && nextPiece < pieces.length) write();
            else if (s.k === 'commit') commit(s.pieces);
            else if (s.k === 'deliver' && delivered < log.length) replica.receive(sync([log[delivered++]!]));
            else if (s.k === 'redeliver' && delivered > 0) {
              // A redelivery of events already applied (duplicate ids: skipped).
              const from = s.back % delivered;
              replica.receive(sync(log.slice(from, delivered)));
            } else if (s.k === 'resume') {
              // A resume: the socket dropped and the scope came back as a fresh snapshot of the
              // server's text (possibly ahead of the events delivered so far).
              replica.disconnected();
              replica.connected();
              const upTo = delivered + (log.length > delivered ? s.extra % (log.length - delivered + 1) : 0);
              const text =
                start +
                log
                  .slice(0, upTo)
                  .map((e) => (e.data as { text: string }).text)
                  .join('');
              replica.receive(bootstrap(text, upTo + 1));
              delivered = upTo;
            }
            store.commit();
            expect(visible()).toBe(written);
          }
          // The writer ends; the server commits and delivers the rest.
          while (nextPiece < pieces.length) write();
          commit(pieces.length);
          replica.receive(sync(log.slice(delivered)));
          store.commit();
          expect(visible()).toBe(written);
          expect(committed).toBe(written);
          expect(store.hasLocal('Message', MSG, 'content')).toBe(false);
          // Without local text, the record is the server's: a later snapshot shows it alone.
          replica.receive({ ...bootstrap('reset', log.length + 5), reset: true } as ServerFrame);
          store.commit();
          expect(visible()).toBe('reset');
        },
      ),
      { numRuns: 300 },
    );
  });
});
