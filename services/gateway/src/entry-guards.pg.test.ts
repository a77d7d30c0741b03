import { CLOSE_CODES, type ServerFrame } from '@openagents/sync-protocol';
import { type Auth, type BusMessage, createMemoryBus, type DeltaSource } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { tokenFor } from '../../../test/support/tokens';
import {
  auth,
  newScope,
  pgDeltaSource,
  range,
  startGateway,
  TestClient,
  writeEvents,
} from '../test/support/gateway-harness';
import { MAX_EVENT_DEPTH } from './bus-message';

let db: TestDatabase;
const bus = createMemoryBus();
let gw: Awaited<ReturnType<typeof startGateway>>;
/** Scopes whose snapshot the delta source answers with a record nested 6,000 levels deep. */
const poisoned = new Set<string>();
/** The token that makes the test Auth throw synchronously (a broken verifier, not a rejection). */
const THROWING_TOKEN = 'throw-synchronously';
/** Subjects whose principal's scope list throws when read (a broken principal). */
const BROKEN_SUB = 'broken-principal';

const nested = (levels: number): unknown => JSON.parse(`${'['.repeat(levels)}${']'.repeat(levels)}`);

beforeAll(async () => {
  db = await createTestDatabase('gw_guards');
  const real = pgDeltaSource(db.pool);
  const delta: DeltaSource = {
    ...real,
    async bootstrap(scope) {
      const snapshot = await real.bootstrap(scope);
      if (!poisoned.has(scope)) return snapshot;
      return { ...snapshot, models: { ...snapshot.models, Message: [{ id: 'x', content: nested(6000) }] } };
    },
  };
  const faultyAuth: Auth = {
    ...auth,
    verify(token) {
      if (token === THROWING_TOKEN) throw new Error('verifier blew up');
      return auth.verify(token).then((p) =>
        p.sub === BROKEN_SUB
          ? Object.defineProperty({ ...p }, 'scopes', {
              get() {
                throw new Error('principal blew up');
              },
            })
          : p,
      );
    },
  };
  gw = await startGateway({ bus, delta, auth: faultyAuth });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

/** Proves the node still serves: a fresh connection subscribes and receives a live event. */
async function assertAlive() {
  const scope = newScope();
  const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
  client.subscribe(scope);
  await client.waitFor((f) => f.type === 'subscribed');
  await writeEvents(db.pool, bus, scope, 1);
  expect(await client.untilEvent(scope, 1)).toEqual([1]);
  client.close();
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

const isError = (code: string) => (f: ServerFrame) => f.type === 'error' && f.code === code;

describe('no input crashes the gateway', () => {
  it('answers a ping whose t nests 6,000 levels with bad_request; the connection and the node stay', async () => {
    const client = await TestClient.connect(gw.wsUrl, await tokenFor(['*']));
    client.send(`{"type":"ping","t":${'['.repeat(6000)}${']'.repeat(6000)}}`);
    await client.waitFor(isError('bad_request'));
    client.send({ type: 'ping', t: 7 });
    expect(await client.waitFor((f) => f.type === 'pong')).toEqual({ type: 'pong', t: 7 });
    expect(client.closeCode).toBeUndefined();
    client.close();
    await assertAlive();
  });

  it('closes only the connection whose frame cannot be serialised (1011)', async () => {
    const before = await metric('sync_gateway_handler_errors_total', 'where="serialise"');
    const scope = newScope();
    poisoned.add(scope);
    const bystander = await TestClient.connect(gw.wsUrl, await tokenFor(['*']));
    const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
    client.subscribe(scope);
    expect(await client.closed).toBe(CLOSE_CODES.internalError);
    expect(await metric('sync_gateway_handler_errors_total', 'where="serialise"')).toBe(before + 1);
    bystander.send({ type: 'ping', t: 'x' });
    await bystander.waitFor((f) => f.type === 'pong');
    bystander.close();
    await assertAlive();
  });

  it('answers 500 when the verifier throws instead of rejecting; the node stays', async () => {
    const client = new TestClient(`${gw.wsUrl}?token=${THROWING_TOKEN}`);
    const refused = await client.opened.then(
      () => undefined,
      (err: { status?: number }) => err,
    );
    expect(refused?.status).toBe(500);
    expect(await metric('sync_gateway_handler_errors_total', 'where="upgrade"')).toBe(1);
    await assertAlive();
  });

  it('answers internal when handling a frame throws; the connection stays', async () => {
    const client = await TestClient.connect(gw.wsUrl, await tokenFor(['*'], BROKEN_SUB));
    client.subscribe(newScope());
    const error = await client.waitFor(isError('internal'));
    expect(error).toMatchObject({ message: expect.not.stringContaining('blew up') });
    client.send({ type: 'ping', t: 1 });
    await client.waitFor((f) => f.type === 'pong');
    expect(client.closeCode).toBeUndefined();
    expect(await metric('sync_gateway_handler_errors_total', 'where="message"')).toBeGreaterThanOrEqual(1);
    client.close();
    await assertAlive();
  });

  it('drops malformed and hostile bus messages, counts them, and keeps the scope in order', async () => {
    const scope = newScope();
    const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
    client.subscribe(scope);
    await client.waitFor((f) => f.type === 'subscribed');
    const [first] = await writeEvents(db.pool, bus, scope, 1);
    await client.untilEvent(scope, 1);
    const hostile: unknown[] = [
      { scope, events: 'not an array' },
      { scope, events: [null] },
      { scope, events: [42] },
      { scope, events: [{ ...first, id: '2' }] },
      { scope, events: [{ ...first, id: 2.5 }] },
      { scope, events: [{ ...first, id: 2 ** 53 + 1 }] },
      { scope, events: [{ ...first, id: 2, scope: newScope() }] },
      { scope, events: [{ ...first, id: 2, data: { content: nested(6000) } }] },
      { scope, events: [{ ...first, id: 2, data: nested(MAX_EVENT_DEPTH + 2) }] },
      { scope, events: [{ ...first, id: 2, __proto__: { polluted: true } }], constructor: { prototype: 1 } },
    ];
    const dropped = await metric('sync_gateway_bus_messages_dropped_total', '');
    for (const message of hostile) await bus.publish(message as BusMessage);
    await writeEvents(db.pool, bus, scope, 2);
    expect(await client.untilEvent(scope, 3)).toEqual(range(1, 3));
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const total = text
      .split('\n')
      .filter((l) => l.startsWith('sync_gateway_bus_messages_dropped_total{'))
      .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    // The last message is well-formed (prototype keys are plain data) and a duplicate of id 2.
    expect(total - dropped).toBe(hostile.length - 1);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    client.close();
    await assertAlive();
  });
});
