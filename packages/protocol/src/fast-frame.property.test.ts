import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppendEventData } from './events';
import { fastServerFrame, isAppendEventData } from './fast-frame';
import { ServerFrame } from './frames';
import { MODEL_NAMES } from './models';

/*
 * The hand-written check of `sync` frames must be exactly as strict as zod's `ServerFrame`: it
 * takes a frame if and only if zod accepts it and returns it unchanged (nothing stripped), and
 * then returns what zod returns. Checked on valid frames, on frames with one thing broken
 * (a value replaced by an arbitrary or a boundary value, a key removed, a key added) and on
 * arbitrary JSON, each as text through `JSON.parse`, which is what the client hands it.
 */

const RUNS = { numRuns: 3_000 };

/** Values near each check's boundary, plus anything JSON can hold. */
const edgy = fc.oneof(
  fc.constantFrom(
    0,
    -0,
    1,
    -1,
    1.5,
    2 ** 53 - 1,
    2 ** 53,
    -(2 ** 53),
    1e300,
    '',
    'x',
    null,
    true,
    [],
    {},
    'sync',
    'append',
    'Message',
    'message',
    'agent:x',
    'AGENT:x',
    'agent:',
    `agent:${'a'.repeat(128)}`,
    `agent:${'a'.repeat(129)}`,
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    'FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF',
    '00000000-0000-0000-8000-000000000001',
    '00000000-0000-9000-8000-000000000001',
    '00000000-0000-4000-c000-000000000001',
    '00000000-0000-4000-8000-00000000000',
    { field: 'content', offset: 0, text: '', updated_at: '' },
    { __proto__: 1 },
  ),
  fc.jsonValue({ maxDepth: 2 }),
);

const scopeArb = fc.oneof(
  fc.uuid().map((u) => `agent:${u}`),
  fc.uuid().map((u) => `org:${u}`),
  fc.stringMatching(/^[a-z][a-z0-9_-]{0,31}:[A-Za-z0-9_.:-]{1,128}$/),
);

const appendData = fc.record({
  field: fc.string({ minLength: 1, maxLength: 8 }),
  offset: fc.nat(),
  text: fc.string({ maxLength: 8 }),
  updated_at: fc.string({ maxLength: 30 }),
});

const eventArb = fc.record({
  id: fc.oneof(fc.integer({ min: 1 }), fc.constant(2 ** 53 - 1)),
  scope: scopeArb,
  model: fc.constantFrom(...MODEL_NAMES),
  model_id: fc.uuid(),
  action: fc.constantFrom('insert', 'update', 'delete', 'append'),
  data: fc.oneof(
    fc.constant(null),
    appendData,
    fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 })),
  ),
  mutationId: fc.option(fc.string({ maxLength: 10 }), { nil: null }),
  created_at: fc.string({ maxLength: 30 }),
});

const frameArb = fc.record({
  type: fc.constant('sync'),
  scope: fc.string({ maxLength: 20 }),
  events: fc.array(eventArb, { maxLength: 3 }),
  latestSyncId: fc.oneof(fc.nat(), fc.constant(2 ** 53 - 1)),
});

type Json = Record<string, unknown>;
type Mutation = (frame: Json) => void;

/** One thing broken at `at` (a key of the object, found by index): replaced, removed, or a key added. */
const breakObject = fc.oneof(
  fc.tuple(fc.nat(), edgy).map(([i, v]): ((o: Json) => void) => (o) => {
    const keys = Object.keys(o);
    if (keys.length) o[keys[i % keys.length]!] = v;
  }),
  fc.nat().map((i): ((o: Json) => void) => (o) => {
    const keys = Object.keys(o);
    if (keys.length) delete o[keys[i % keys.length]!];
  }),
  fc
    .tuple(fc.constantFrom('__proto__', 'extra', 'type', 'constructor', 'toString'), edgy)
    .map(([k, v]): ((o: Json) => void) => (o) => {
      Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    }),
);

/** A mutation of the frame, of one of its events, or of an event's data. */
const mutation: fc.Arbitrary<Mutation> = fc
  .tuple(fc.constantFrom('frame', 'event', 'data'), fc.nat(), breakObject)
  .map(([where, i, broken]) => (frame) => {
    if (where === 'frame') return broken(frame);
    const events = frame.events;
    if (!Array.isArray(events)) return;
    const event = events[i % Math.max(events.length, 1)] as Json | undefined;
    // An earlier mutation may have replaced the event by a non-object: nothing to break then.
    if (typeof event !== 'object' || event === null || Array.isArray(event)) return;
    if (where === 'event') return broken(event);
    if (event.data && typeof event.data === 'object' && !Array.isArray(event.data))
      broken(event.data as Json);
  });

/** Both checks on the same text, each on its own `JSON.parse` of it. */
function compare(text: string): void {
  const fast = fastServerFrame(JSON.parse(text));
  const input = JSON.parse(text);
  const zod = ServerFrame.safeParse(JSON.parse(text));
  const unchanged = zod.success && isDeepStrictEqual(zod.data, input);
  const isSync = typeof input === 'object' && input !== null && input.type === 'sync';
  // Takes exactly the sync frames zod accepts and returns unchanged, and returns zod's value.
  expect(fast !== undefined).toBe(isSync && unchanged);
  // node's strict deep equality (same prototypes, same own keys and values); vitest's
  // toStrictEqual also compares `constructor` properties by identity, which a data key named
  // `constructor` holding an object fails on any two parses.
  if (fast !== undefined && zod.success) expect(isDeepStrictEqual(fast, zod.data)).toBe(true);
}

describe('fastServerFrame against zod', () => {
  it('takes every valid sync frame, returning what zod returns', () => {
    fc.assert(
      fc.property(frameArb, (frame) => {
        const text = JSON.stringify(frame);
        expect(fastServerFrame(JSON.parse(text))).toBeDefined();
        compare(text);
      }),
      RUNS,
    );
  });

  it('agrees with zod on frames with one or two things broken', () => {
    fc.assert(
      fc.property(frameArb, fc.array(mutation, { minLength: 1, maxLength: 2 }), (frame, mutations) => {
        const copy = structuredClone(frame) as unknown as Json;
        for (const m of mutations) m(copy);
        compare(JSON.stringify(copy));
      }),
      RUNS,
    );
  });

  it('agrees with zod on arbitrary JSON and on other frame types', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue({ maxDepth: 4 }),
          fc.record({
            type: fc.constantFrom('sync', 'bootstrap', 'pong', 'error'),
            scope: edgy,
            events: edgy,
          }),
        ),
        (value) => compare(JSON.stringify(value)),
      ),
      RUNS,
    );
  });

  it('leaves a data object with a __proto__ key to zod (which drops the key)', () => {
    const frame = JSON.stringify({
      type: 'sync',
      scope: 'agent:x',
      latestSyncId: 1,
      events: [
        {
          id: 1,
          scope: 'agent:x',
          model: 'Message',
          model_id: '00000000-0000-4000-8000-000000000001',
          action: 'update',
          data: { content: 'a' },
          mutationId: null,
          created_at: 'now',
        },
      ],
    }).replace('"content":"a"', '"content":"a","__proto__":{"polluted":true}');
    expect(fastServerFrame(JSON.parse(frame))).toBeUndefined();
    compare(frame);
  });
});

describe('isAppendEventData against zod', () => {
  it('accepts exactly what AppendEventData accepts', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          appendData,
          fc.tuple(appendData, fc.array(breakObject, { minLength: 1, maxLength: 2 })).map(([d, breaks]) => {
            const copy = structuredClone(d) as unknown as Json;
            for (const b of breaks) b(copy);
            return copy;
          }),
          edgy,
        ),
        (value) => {
          const text = JSON.stringify(value) ?? 'null';
          expect(isAppendEventData(JSON.parse(text))).toBe(
            AppendEventData.safeParse(JSON.parse(text)).success,
          );
        },
      ),
      RUNS,
    );
  });
});
