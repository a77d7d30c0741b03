/**
 * Property/fuzz test of the WebSocket surface: arbitrary JSON and non-JSON thrown at every
 * client frame type over a real socket to a real gateway. After each case the answer must be the
 * contract's (an error frame with the right code, close 1009, a pong with a valid `t`, an
 * `unauthorized` answer to a bad `auth`, nothing for a valid unsubscribe), and the node must be
 * alive: a fresh connection subscribes and receives a live event.
 */
import { randomUUID } from 'node:crypto';
import {
  CLOSE_CODES,
  ClientFrame,
  canonicalScope,
  MAX_PING_T_LENGTH,
  type ServerFrame,
} from '@openagents/sync-protocol';
import { createMemoryBus } from '@openagents/sync-server-kit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { tokenFor } from '../../../test/support/tokens';
import {
  newScope,
  pgDeltaSource,
  startGateway,
  TestClient,
  writeEvents,
} from '../test/support/gateway-harness';

const MAX_FRAME_BYTES = 16 * 1024;
let db: TestDatabase;
const bus = createMemoryBus();
let gw: Awaited<ReturnType<typeof startGateway>>;
/** The one scope the fuzzing token grants; any other valid scope must be `forbidden`. */
const granted = `org:${randomUUID()}`;
let token = '';

beforeAll(async () => {
  db = await createTestDatabase('gw_fuzz');
  gw = await startGateway(
    { bus, delta: pgDeltaSource(db.pool) },
    {
      MAX_FRAME_BYTES,
      FRAME_RATE_PER_SECOND: 100_000,
      FRAME_BURST: 100_000,
      MAX_SUBSCRIPTIONS_PER_CONNECTION: 5,
    },
  );
  token = await tokenFor([granted], 'fuzzer');
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

/* Raw JSON text generators: text, so that nesting far beyond what JSON.stringify survives can be built. */

const nestedArrays = fc.integer({ min: 1, max: 6000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`);
const nestedObjects = fc.integer({ min: 1, max: 3000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`);
const hugeString = fc
  .integer({ min: MAX_FRAME_BYTES - 200, max: MAX_FRAME_BYTES + 200 })
  .map((n) => JSON.stringify('x'.repeat(n)));
const oddNumbers = fc
  .constantFrom(
    '1e308',
    '-1e308',
    '1e999',
    '-0',
    '0',
    '-1',
    '1.5',
    '9007199254740993',
    '-9007199254740993',
    '1e-400',
    '42',
  )
  .map(String);
const oddStrings = fc.constantFrom(
  '"NaN"',
  '"Infinity"',
  '"-0"',
  '"1e308"',
  '"__proto__"',
  '""',
  '"\\u0000"',
  '"\\ud800"',
);
const scopeLike = fc
  .oneof(
    fc.constant(granted),
    fc.constant(granted.toUpperCase().replace('ORG:', 'org:')),
    fc.uuid().map((u) => `org:${u}`),
    fc.string({ maxLength: 40 }),
    fc.stringMatching(/^[a-z]{1,5}:[A-Za-z0-9_.:-]{1,20}$/),
  )
  .map((s) => JSON.stringify(s));
const shortStrings = fc.string({ maxLength: 80 }).map((s) => JSON.stringify(s));
const anyJson = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null');
const value: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: anyJson },
  { weight: 2, arbitrary: nestedArrays },
  { weight: 1, arbitrary: nestedObjects },
  { weight: 1, arbitrary: hugeString },
  { weight: 2, arbitrary: oddNumbers },
  { weight: 2, arbitrary: oddStrings },
  { weight: 3, arbitrary: shortStrings },
  { weight: 2, arbitrary: scopeLike },
);
const key = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'type'),
  fc.string({ maxLength: 12 }),
);
const typeText = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('"subscribe"', '"unsubscribe"', '"ping"', '"auth"') },
  { weight: 1, arbitrary: value },
);
/** An object frame: a type, some of the known fields and some other keys, each any value. */
const objectFrame = fc
  .record({
    type: typeText,
    fields: fc.array(fc.tuple(fc.constantFrom('scope', 'lastSyncId', 't', 'token'), value), { maxLength: 3 }),
    extra: fc.array(fc.tuple(key, value), { maxLength: 2 }),
    typeLast: fc.boolean(),
  })
  .map(({ type, fields, extra, typeLast }) => {
    const members = [...fields, ...extra].map(([k, v]) => `${JSON.stringify(k)}:${v}`);
    const typed = `"type":${type}`;
    return `{${(typeLast ? [...members, typed] : [typed, ...members]).join(',')}}`;
  });
/** A valid frame now and then, so the accepting paths are fuzzed too. */
const validFrame = fc.oneof(
  fc
    .record({
      t: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 64 })),
    })
    .map(({ t }) => JSON.stringify({ type: 'ping', t })),
  fc.constant(JSON.stringify({ type: 'subscribe', scope: granted })),
  fc.uuid().map((u) => JSON.stringify({ type: 'subscribe', scope: `agent:${u}`, lastSyncId: 3 })),
  fc.constant(JSON.stringify({ type: 'unsubscribe', scope: granted })),
  fc.string({ minLength: 1, maxLength: 300 }).map((t) => JSON.stringify({ type: 'auth', token: t })),
);
const payload: fc.Arbitrary<string | Buffer> = fc.oneof(
  { weight: 8, arbitrary: objectFrame },
  { weight: 2, arbitrary: validFrame },
  { weight: 1, arbitrary: value },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
);

type Expected =
  | { kind: 'close'; code: number }
  | { kind: 'error'; code: string }
  | { kind: 'pong'; t: unknown }
  | { kind: 'subscribe-answer'; scope: string }
  | { kind: 'nothing' };

/** What the contract says the gateway answers to one frame (the protocol schema is the spec). */
function expectedAnswer(frame: string | Buffer): Expected {
  const bytes = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.byteLength;
  if (bytes > MAX_FRAME_BYTES) return { kind: 'close', code: CLOSE_CODES.messageTooBig };
  if (typeof frame !== 'string') return { kind: 'error', code: 'bad_request' };
  let raw: unknown;
  try {
    raw = JSON.parse(frame);
  } catch {
    return { kind: 'error', code: 'bad_request' };
  }
  const parsed = ClientFrame.safeParse(raw);
  if (!parsed.success) return { kind: 'error', code: 'bad_request' };
  const f = parsed.data;
  switch (f.type) {
    case 'ping':
      // As it travels back: JSON has no -0.
      return { kind: 'pong', t: f.t === undefined ? undefined : JSON.parse(JSON.stringify(f.t)) };
    case 'unsubscribe':
      return { kind: 'nothing' };
    case 'auth':
      return { kind: 'error', code: 'unauthorized' };
    case 'subscribe': {
      const scope = canonicalScope(f.scope)!;
      return scope === granted ? { kind: 'subscribe-answer', scope } : { kind: 'error', code: 'forbidden' };
    }
  }
}

let socket: TestClient | undefined;
let sentinel = 0;

async function connection(): Promise<TestClient> {
  if (!socket || socket.closeCode !== undefined) socket = await TestClient.connect(gw.wsUrl, token);
  return socket;
}

/**
 * Fresh connections that uWS dropped (1006) before answering anything. Known and not yet
 * explained (docs/protocol.md, "Closes without a close frame"): about once in thousands of cases,
 * a connection opened right after one closed with 1009 gets its 101 and then a FIN with no frame,
 * no close frame and no reason from uWS, while the node stays up. Such a case is thrown again once
 * on a new connection; a second drop, a drop of a connection that had answered, or a connection
 * that stays open without answering still fails.
 */
let freshDrops = 0;

/** Sends one frame and checks the answer against the contract. */
async function throwFrame(frame: string | Buffer): Promise<void> {
  const client = await connection();
  const fresh = client.frames.length === 0;
  try {
    await throwFrameOn(client, frame);
  } catch (err) {
    if (!(fresh && client.closeCode === 1006 && client.frames.length === 0 && freshDrops < 3)) throw err;
    freshDrops++;
    console.warn(`frames fuzz: a fresh connection was dropped (1006) unanswered; the case runs again once`);
    await throwFrameOn(await connection(), frame);
  }
}

async function throwFrameOn(client: TestClient, frame: string | Buffer): Promise<void> {
  const expected = expectedAnswer(frame);
  const from = client.frames.length;
  client.socket.send(frame);
  if (expected.kind === 'close') {
    expect(await client.closed).toBe(expected.code);
    return;
  }
  if (expected.kind === 'error' && expected.code === 'unauthorized') {
    // Verification is asynchronous: wait for its answer itself.
    await client.until(() =>
      client.frames.slice(from).some((f) => f.type === 'error' && f.code === 'unauthorized'),
    );
  }
  const mark = `s${++sentinel}`;
  client.send({ type: 'ping', t: mark });
  await client.waitFor((f) => f.type === 'pong' && f.t === mark);
  const answers = client.frames
    .slice(from)
    .filter((f) => !(f.type === 'pong' && f.t === mark))
    // Catch-up and live frames of an earlier subscribe may interleave; they are checked elsewhere.
    .filter((f) => !['bootstrap', 'sync', 'subscribed'].includes(f.type));
  for (const f of client.frames.slice(from)) {
    if (f.type === 'pong') expect(isValidT(f.t)).toBe(true);
  }
  expect(client.closeCode).toBeUndefined();
  switch (expected.kind) {
    case 'error':
      expect(answers.map(errorCode)).toEqual([expected.code]);
      return;
    case 'pong':
      expect(answers).toEqual([
        expected.t === undefined ? { type: 'pong' } : { type: 'pong', t: expected.t },
      ]);
      return;
    case 'nothing':
      expect(answers).toEqual([]);
      return;
    case 'subscribe-answer':
      // Accepted (its bootstrap/catch-up follows) or over the per-connection cap.
      expect(answers.map(errorCode).filter((c) => c !== 'too_many_subscriptions')).toEqual([]);
      return;
  }
}

const errorCode = (f: ServerFrame) => (f.type === 'error' ? f.code : f.type);
const isValidT = (t: unknown) =>
  t === undefined ||
  (typeof t === 'number' && Number.isFinite(t)) ||
  (typeof t === 'string' && t.length <= MAX_PING_T_LENGTH);

/** The node is alive: a fresh connection subscribes and receives a live event. */
async function assertAlive(): Promise<void> {
  const scope = newScope();
  const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
  try {
    client.subscribe(scope);
    await client.waitFor((f) => f.type === 'subscribed');
    await writeEvents(db.pool, bus, scope, 1);
    expect(await client.untilEvent(scope, 1)).toEqual([1]);
  } finally {
    client.close();
  }
}

describe('fuzzing every client frame type over a real socket', () => {
  it('answers every frame per the contract and stays alive', async () => {
    await fc.assert(
      fc.asyncProperty(payload, async (frame) => {
        await throwFrame(frame);
        await assertAlive();
      }),
      { numRuns: 60, endOnFailure: true },
    );
  });

  it('survives the named hostile cases, each followed by a live-node check', async () => {
    const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    const cases: (string | Buffer)[] = [
      `{"type":"ping","t":${deep(6000)}}`,
      `{"type":"subscribe","scope":${deep(6000)}}`,
      `{"type":"ping","unknown":${deep(6000)}}`,
      `{"type":"subscribe","scope":"${granted}","x":${deep(5000)}}`,
      `{"type":"ping","t":${JSON.stringify('y'.repeat(MAX_FRAME_BYTES - 30))}}`,
      `{"type":"ping","t":1e308}`,
      `{"type":"ping","t":-0}`,
      `{"type":"ping","t":1e999}`,
      `{"type":"ping","t":"NaN"}`,
      `{"type":"subscribe","scope":"${granted}","lastSyncId":9007199254740993}`,
      `{"type":"subscribe","scope":"${granted}","lastSyncId":1e308}`,
      `{"__proto__":{"type":"ping"},"type":"ping","t":1}`,
      `{"type":"ping","constructor":{"prototype":{"polluted":true}}}`,
      `{"type":"auth","token":${JSON.stringify('z'.repeat(MAX_FRAME_BYTES - 40))}}`,
      `{"type":"auth","token":${deep(3000)}}`,
      Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
      Buffer.alloc(MAX_FRAME_BYTES + 1, 0x5b),
      'x'.repeat(MAX_FRAME_BYTES + 1),
    ];
    for (const frame of cases) {
      await throwFrame(frame);
      await assertAlive();
    }
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });
});
