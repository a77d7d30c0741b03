import type { ClientFrame, ServerFrame, SyncEvent } from '@openagents/sync-protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RecordStore } from './record-store';
import { Replica } from './replica';

/*
 * A reply streamed as append pieces must end, on every viewer, byte for byte equal to the
 * writer's text — whatever the split (emoji and other astral characters cut between their two
 * UTF-16 halves, combining marks cut from their letter, empty pieces), however the pieces reach
 * the viewer (duplicated, dropped, around reconnects), and whenever the viewer joins.
 */

const AGENT = '00000000-0000-4000-8000-0000000000bb';
const SCOPE = `agent:${AGENT}`;
const MSG = '30000000-0000-4000-8000-000000000001';

/** Text made of awkward pieces: astral characters, combining marks, ZWJ sequences, plain ASCII. */
const awkwardText = fc
  .array(
    fc.oneof(
      fc.constantFrom('😀', '👩‍💻', '🇫🇷', 'e\u0301', 'a\u0308\u0323', '𝔘', '\u{10FFFF}', 'ß', '\n'),
      fc.string({ unit: 'grapheme', maxLength: 3 }),
      fc.string({ maxLength: 4 }),
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(''));

/** Splits `text` at random UTF-16 offsets (so inside surrogate pairs too), empty pieces included. */
function splitArb(text: string): fc.Arbitrary<string[]> {
  return fc.array(fc.integer({ min: 0, max: text.length }), { maxLength: 12 }).map((cuts) => {
    const points = [0, ...cuts.sort((a, b) => a - b), text.length];
    return points.slice(1).map((end, i) => text.slice(points[i], end));
  });
}

const messageRow = (content: string, syncId: number) => ({
  id: MSG,
  agent_id: AGENT,
  role: 'assistant',
  content,
  created_at: 't',
  updated_at: 't',
  created_sync_id: syncId,
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

describe('append pieces', () => {
  it('the store ends with the writer’s text under any split, duplicates and late joins', () => {
    fc.assert(
      fc.property(
        awkwardText.chain((text) =>
          fc.tuple(fc.constant(text), splitArb(text), fc.array(fc.nat(), { maxLength: 20 }), fc.nat()),
        ),
        ([text, pieces, dupes, joinAt]) => {
          // The viewer's snapshot already holds a prefix (it bootstrapped mid-reply), cut anywhere:
          // the piece it ends in is then partly new.
          const offsets = pieces.map((_, i) => pieces.slice(0, i).join('').length);
          const store = new RecordStore();
          store.replaceScope(SCOPE, { Message: [messageRow(text.slice(0, joinAt % (text.length + 1)), 1)] });
          // Every piece from the start is delivered (those in the snapshot are covered); after each
          // one, some earlier pieces come again, merged into one (as pieces committed together are).
          for (let i = 0; i < pieces.length; i++) {
            expect(store.applyEvent(appendEvent(i + 2, offsets[i]!, pieces[i]!))).toBe('applied');
            const d = dupes[i];
            if (d === undefined) continue;
            const from = d % (i + 1);
            store.applyEvent(appendEvent(i + 2, offsets[from]!, pieces.slice(from, i + 1).join('')));
          }
          store.commit();
          expect(store.records.get('Message', MSG)?.content).toBe(text);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a piece beyond the text is a gap: refused until the missing piece came', () => {
    fc.assert(
      fc.property(
        awkwardText.filter((t) => t.length >= 2),
        fc.nat(),
        (text, at) => {
          const cut = 1 + (at % (text.length - 1));
          const store = new RecordStore();
          store.replaceScope(SCOPE, { Message: [messageRow('', 1)] });
          expect(store.applyEvent(appendEvent(3, cut, text.slice(cut)))).toBe('gap');
          expect(store.applyEvent(appendEvent(2, 0, text.slice(0, cut)))).toBe('applied');
          expect(store.applyEvent(appendEvent(3, cut, text.slice(cut)))).toBe('applied');
          store.commit();
          expect(store.records.get('Message', MSG)?.content).toBe(text);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a viewer behind a lossy network, reconnecting and joining mid-reply, ends with the writer’s text', () => {
    type Net = { k: 'deliver'; dup: boolean } | { k: 'drop' } | { k: 'reconnect' };
    const net: fc.Arbitrary<Net> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ k: fc.constant('deliver' as const), dup: fc.boolean() }) },
      { weight: 1, arbitrary: fc.constant({ k: 'drop' as const }) },
      { weight: 1, arbitrary: fc.constant({ k: 'reconnect' as const }) },
    );
    fc.assert(
      fc.property(
        awkwardText.chain((text) => fc.tuple(fc.constant(text), splitArb(text))),
        fc.nat(),
        fc.array(net, { maxLength: 60 }),
        ([text, pieces], joinAt, steps) => {
          // The server: event 1 inserts the empty message, then one append event per piece.
          const log: SyncEvent[] = [
            {
              id: 1,
              scope: SCOPE,
              model: 'Message',
              model_id: MSG,
              action: 'insert',
              data: messageRow('', 1),
              mutationId: null,
              created_at: 't',
            },
          ];
          let written = '';
          let head = 1;
          const network: ServerFrame[] = [];
          let live = false;
          const write = (piece: string) => {
            const event = appendEvent(++head, written.length, piece);
            written += piece;
            log.push(event);
            if (live) network.push({ type: 'sync', scope: SCOPE, events: [event], latestSyncId: head });
          };
          const answer = (frame: ClientFrame) => {
            if (frame.type === 'unsubscribe') live = false;
            if (frame.type !== 'subscribe') return;
            const cursor = frame.lastSyncId ?? 0;
            if (cursor === 0) {
              network.push({
                type: 'bootstrap',
                scope: SCOPE,
                models: { Message: [messageRow(written, 1)] },
                lastSyncId: head,
              });
            } else {
              const events = log.slice(cursor);
              if (events.length > 0) network.push({ type: 'sync', scope: SCOPE, events, latestSyncId: head });
            }
            network.push({ type: 'subscribed', scope: SCOPE, lastSyncId: head });
            live = true;
          };
          let now = 0;
          const replica = new Replica({ send: answer, report: () => {}, now: () => now });
          // The writer is partway through when the viewer opens the page.
          const join = joinAt % (pieces.length + 1);
          for (const piece of pieces.slice(0, join)) write(piece);
          replica.follow(SCOPE);
          replica.connected();
          let next = join;
          for (const s of steps) {
            if (next < pieces.length) write(pieces[next++]!);
            now += 1_000;
            if (s.k === 'reconnect') {
              replica.disconnected();
              network.length = 0;
              live = false;
              replica.connected();
            } else if (network.length > 0) {
              const frame = network.shift()!;
              if (s.k === 'deliver') {
                replica.receive(frame);
                if (s.dup) replica.receive(frame);
              }
            }
          }
          // The writer finishes; the network heals (one clean reconnect, frames in order).
          while (next < pieces.length) write(pieces[next++]!);
          now += 10_000;
          replica.disconnected();
          network.length = 0;
          live = false;
          replica.connected();
          for (let guard = 0; network.length > 0 && guard < 1_000; guard++) replica.receive(network.shift()!);
          replica.store.commit();
          expect(written).toBe(text);
          expect(replica.cursor(SCOPE)).toBe(head);
          expect(replica.store.records.get('Message', MSG)?.content).toBe(text);
        },
      ),
      { numRuns: 300 },
    );
  });
});
