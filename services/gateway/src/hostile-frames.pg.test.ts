import { CLOSE_CODES } from '@openagents/sync-protocol';
import { createMemoryBus } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { tokenFor } from '../../../test/support/tokens';
import {
  newScope,
  pgDeltaSource,
  range,
  startGateway,
  TestClient,
  writeEvents,
} from '../test/support/gateway-harness';

let db: TestDatabase;
const bus = createMemoryBus();
let gw: Awaited<ReturnType<typeof startGateway>>;
const MAX_FRAME_BYTES = 4096;

beforeAll(async () => {
  db = await createTestDatabase('gw_hostile');
  gw = await startGateway(
    { bus, delta: pgDeltaSource(db.pool) },
    { MAX_FRAME_BYTES, MAX_SUBSCRIPTIONS_PER_CONNECTION: 3, FRAME_RATE_PER_SECOND: 5, FRAME_BURST: 20 },
  );
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

/** A bystander subscribed to a scope, to show the node keeps serving others. */
async function bystander() {
  const scope = newScope();
  const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
  client.subscribe(scope);
  await client.waitFor((f) => f.type === 'subscribed');
  return { scope, client };
}

const errorCodes = (client: TestClient) => client.frames.flatMap((f) => (f.type === 'error' ? [f.code] : []));

describe('hostile frames', () => {
  it('answers malformed, binary, mistyped and unknown frames with bad_request and keeps the connection', async () => {
    const other = await bystander();
    const client = await TestClient.connect(gw.wsUrl, await tokenFor(['*']));
    const hostile: (string | Buffer)[] = [
      '{not json',
      '',
      'null',
      '42',
      '[]',
      JSON.stringify({ type: 'subscribe' }),
      JSON.stringify({ type: 'subscribe', scope: 'no colon' }),
      JSON.stringify({ type: 'subscribe', scope: 'agent:x', lastSyncId: -1 }),
      JSON.stringify({ type: 'subscribe', scope: 'agent:x', lastSyncId: 1.5 }),
      JSON.stringify({ type: 'subscribe', scope: 'agent:x', lastSyncId: '3' }),
      JSON.stringify({ type: 'subscribe', scope: `agent:${'x'.repeat(500)}` }),
      JSON.stringify({ type: 'unsubscribe' }),
      JSON.stringify({ type: 'hello' }),
      JSON.stringify({ type: { $ne: 1 } }),
      JSON.stringify({ __proto__: { type: 'ping' } }),
      Buffer.from([0xff, 0x00, 0x01]),
    ];
    for (const frame of hostile) client.socket.send(frame);
    await client.until(() => errorCodes(client).length >= hostile.length);
    expect(errorCodes(client)).toEqual(hostile.map(() => 'bad_request'));
    client.send({ type: 'ping', t: 'still here' });
    expect(await client.waitFor((f) => f.type === 'pong')).toEqual({ type: 'pong', t: 'still here' });
    expect(client.closeCode).toBeUndefined();

    await writeEvents(db.pool, bus, other.scope, 2);
    expect(await other.client.untilEvent(other.scope, 2)).toEqual([1, 2]);
    client.close();
    other.client.close();
  });

  it('closes a connection sending a frame over the size limit with 1009; others are unharmed', async () => {
    const other = await bystander();
    const justOver = await TestClient.connect(gw.wsUrl, await tokenFor(['*']));
    justOver.send('x'.repeat(MAX_FRAME_BYTES + 1));
    expect(await justOver.closed).toBe(CLOSE_CODES.messageTooBig);
    const wayOver = await TestClient.connect(gw.wsUrl, await tokenFor(['*']));
    wayOver.send({ type: 'ping', t: 'x'.repeat(MAX_FRAME_BYTES * 3) });
    expect(await wayOver.closed).toBe(CLOSE_CODES.messageTooBig);
    // A frame of exactly the limit is fine.
    const atLimit = await TestClient.connect(gw.wsUrl, await tokenFor(['*']));
    const filler = MAX_FRAME_BYTES - JSON.stringify({ type: 'ping', pad: '' }).length;
    atLimit.send({ type: 'ping', pad: 'y'.repeat(filler) });
    await atLimit.waitFor((f) => f.type === 'pong');
    atLimit.close();
    await writeEvents(db.pool, bus, other.scope, 1);
    expect(await other.client.untilEvent(other.scope, 1)).toEqual([1]);
    other.client.close();
  });

  it('answers a scope outside the token with forbidden and the scope; the connection stays', async () => {
    const mine = newScope();
    const client = await TestClient.connect(gw.wsUrl, await tokenFor([mine, 'org:*']));
    const theirs = newScope('agent');
    client.subscribe(theirs);
    const error = await client.waitFor((f) => f.type === 'error');
    expect(error).toMatchObject({ type: 'error', code: 'forbidden', scope: theirs });
    client.subscribe(mine);
    await client.waitFor((f) => f.type === 'subscribed' && f.scope === mine);
    expect(client.frames.some((f) => f.type === 'bootstrap' && f.scope === theirs)).toBe(false);
    client.close();
  });

  it('refuses subscriptions over the cap with too_many_subscriptions', async () => {
    const client = await TestClient.connect(gw.wsUrl, await tokenFor(['*']));
    const scopes = [newScope(), newScope(), newScope(), newScope()];
    for (const s of scopes) client.subscribe(s);
    const error = await client.waitFor((f) => f.type === 'error');
    expect(error).toMatchObject({ code: 'too_many_subscriptions', scope: scopes[3] });
    for (const s of scopes.slice(0, 3)) await client.waitFor((f) => f.type === 'subscribed' && f.scope === s);
    // Resubscribing an already subscribed scope is not a new subscription.
    client.subscribe(scopes[0]!, 0);
    client.send({ type: 'unsubscribe', scope: scopes[1] });
    client.subscribe(scopes[3]!);
    await client.waitFor((f) => f.type === 'subscribed' && f.scope === scopes[3]);
    expect(errorCodes(client)).toEqual(['too_many_subscriptions']);
    client.close();
  });

  it('rate-limits a flood with rate_limited, then closes it with 1008 if it persists', async () => {
    const other = await bystander();
    const client = await TestClient.connect(gw.wsUrl, await tokenFor(['*']));
    for (let i = 0; i < 25; i++) client.send({ type: 'ping', t: i });
    await client.waitFor((f) => f.type === 'error' && f.code === 'rate_limited');
    expect(client.closeCode).toBeUndefined();
    for (let i = 0; i < 200; i++) client.send({ type: 'ping', t: i });
    expect(await client.closed).toBe(CLOSE_CODES.policyViolation);
    await writeEvents(db.pool, bus, other.scope, 3);
    expect(await other.client.untilEvent(other.scope, 3)).toEqual(range(1, 3));
    other.client.close();
  });
});
