import type { SyncEvent } from '@openagents/sync-protocol';
import { describe, expect, it } from 'vitest';
import { busMessageProblem, depthExceeds, eventJson, keepEventJson, singleEventJson } from './bus-message';
import { syncFrame } from './frame-writer';

const SCOPE = 'agent:00000000-0000-4000-8000-000000000001';
const HEAD = `{"scope":${JSON.stringify(SCOPE)},"events":[`;
const appendEvent = (id: number, text = 'tok') => ({
  id,
  scope: SCOPE,
  model: 'Message',
  model_id: '10000000-0000-4000-8000-000000000001',
  action: 'append',
  data: { field: 'content', offset: id * 3, text, updated_at: '2026-12-01T00:00:00.000Z' },
  mutationId: null,
  created_at: '2026-12-01T00:00:00.000Z',
});

/** What the Redis bus hands a handler: the parsed message and the text it came as. */
function received(raw: string) {
  const message = JSON.parse(raw) as { scope: string; events: SyncEvent[] };
  expect(busMessageProblem(message, SCOPE)).toBeUndefined();
  return message;
}

describe('singleEventJson', () => {
  it('cuts the event’s own text out of a message laid out as JSON.stringify lays it out', () => {
    for (const text of ['tok', 'emoji 😀 and "quotes" and \\ and \n', '', 'the "events" word']) {
      const event = appendEvent(7, text);
      const raw = JSON.stringify({ scope: SCOPE, events: [event] });
      expect(singleEventJson(received(raw), raw, HEAD)).toBe(JSON.stringify(event));
    }
  });

  it('declines every other layout, so the event is serialised from what was parsed', () => {
    const e = JSON.stringify(appendEvent(1));
    const f = JSON.stringify(appendEvent(2));
    const declined = [
      `{"scope":${JSON.stringify(SCOPE)},"events":[${e},${f}]}`, // two events
      `{"scope": ${JSON.stringify(SCOPE)}, "events": [${e}]}`, // other spacing
      `{"events":[${e}],"scope":${JSON.stringify(SCOPE)}}`, // other key order
      `{"scope":${JSON.stringify(SCOPE)},"events":[${e}],"extra":[1]}`, // an extra key
      // A duplicate key, where JSON.parse keeps the last: the first one's event must not ride along.
      `{"scope":${JSON.stringify(SCOPE)},"events":[${e}],"events":[${f}]}`,
      `{"scope":${JSON.stringify(SCOPE)},"events":[${e}],"scope":${JSON.stringify(SCOPE)},"events":[${f}]}`,
      // A record with a field named "events".
      `{"scope":${JSON.stringify(SCOPE)},"events":[${JSON.stringify({ ...appendEvent(1), data: { events: 1 } })}]}`,
    ];
    for (const raw of declined) expect(singleEventJson(received(raw), raw, HEAD), raw).toBeUndefined();
  });
});

describe('syncFrame', () => {
  it('is the frame JSON.stringify makes, whether events kept their text or not', () => {
    const events = [appendEvent(4), appendEvent(5, '😀'), appendEvent(6, '"')] as SyncEvent[];
    const expected = JSON.stringify({ type: 'sync', scope: SCOPE, events, latestSyncId: 6 });
    expect(syncFrame(SCOPE, events, 6)).toBe(expected);
    const raw = JSON.stringify({ scope: SCOPE, events: [events[1]] });
    keepEventJson(events[1]!, singleEventJson(received(raw), raw, HEAD)!);
    expect(syncFrame(SCOPE, events, 6)).toBe(expected);
    // The kept text is what goes out (not a fresh serialisation), and JSON.stringify never sees it.
    keepEventJson(events[0]!, '{"id":4}');
    expect(eventJson(events[0]!)).toBe('{"id":4}');
    expect(syncFrame(SCOPE, events.slice(0, 1), 4)).toBe(
      `{"type":"sync","scope":"${SCOPE}","events":[{"id":4}],"latestSyncId":4}`,
    );
    expect(JSON.stringify(events[0])).toBe(JSON.stringify(appendEvent(4)));
    expect(Object.keys(events[0]!)).toEqual(Object.keys(appendEvent(4)));
  });
});

describe('depthExceeds', () => {
  const nest = (n: number): unknown => (n === 0 ? 1 : { a: [nest(n - 1)] });
  it('counts objects and arrays as levels, and stops at the bound however deep the input is', () => {
    expect(depthExceeds(1, 0)).toBe(false);
    expect(depthExceeds({}, 1)).toBe(false);
    expect(depthExceeds({ a: {} }, 1)).toBe(true);
    expect(depthExceeds(nest(16), 32)).toBe(false); // 32 levels: 16 objects, 16 arrays
    expect(depthExceeds(nest(17), 32)).toBe(true);
    const deep = JSON.parse(`${'['.repeat(20_000)}${']'.repeat(20_000)}`);
    expect(depthExceeds(deep, 33)).toBe(true);
    // Only own keys count.
    const inherited = Object.create({ deep: { deeper: {} } }) as object;
    expect(depthExceeds(inherited, 1)).toBe(false);
  });
});
