import { createMemoryBus } from '@openagents/sync-server-kit';
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

let db: TestDatabase;
const bus = createMemoryBus();
let gw: Awaited<ReturnType<typeof startGateway>>;

beforeAll(async () => {
  db = await createTestDatabase('gw_canonical');
  gw = await startGateway({ bus, delta: pgDeltaSource(db.pool) });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

describe('scopes in canonical form', () => {
  it('serves an uppercase-uuid subscribe from the lowercase log, under a lowercase grant', async () => {
    const scope = newScope('org');
    const upper = `org:${scope.slice(4).toUpperCase()}`;
    const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
    client.subscribe(upper);
    expect(await client.waitFor((f) => f.type === 'bootstrap')).toMatchObject({ scope, lastSyncId: 0 });
    await client.waitFor((f) => f.type === 'subscribed' && f.scope === scope);
    await writeEvents(db.pool, bus, scope, 2);
    expect(await client.untilEvent(scope, 2)).toEqual([1, 2]);
    // Both spellings are one subscription: unsubscribing either ends it.
    client.send({ type: 'unsubscribe', scope: scope });
    client.send({ type: 'ping', t: 'after-unsubscribe' });
    await client.waitFor((f) => f.type === 'pong');
    await writeEvents(db.pool, bus, scope, 1);
    client.subscribe(upper, 2);
    await client.waitFor((f) => f.type === 'subscribed' && f.lastSyncId === 3);
    expect(client.eventIds(scope)).toEqual([1, 2, 3]);
    expect(client.frames.filter((f) => f.type === 'error')).toEqual([]);
    client.close();
  });

  it('lets an uppercase token pattern grant the lowercase scope, and nothing else', async () => {
    const scope = newScope('agent');
    const client = await TestClient.connect(
      gw.wsUrl,
      await tokenFor([scope.toUpperCase().replace('AGENT:', 'agent:')]),
    );
    client.subscribe(scope);
    await client.waitFor((f) => f.type === 'subscribed' && f.scope === scope);
    const other = newScope('agent');
    client.subscribe(other.toUpperCase().replace('AGENT:', 'agent:'));
    expect(await client.waitFor((f) => f.type === 'error')).toMatchObject({
      code: 'forbidden',
      scope: other,
    });
    client.close();
  });
});
