import type { BusMessage } from '@openagents/sync-server-kit';
import { createMemoryBus } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { tokenFor } from '../../../test/support/tokens';
import {
  chaoticBus,
  countingDeltaSource,
  newScope,
  pgDeltaSource,
  range,
  startGateway,
  TestClient,
  writeEvents,
} from '../test/support/gateway-harness';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('gw_ordering');
});
afterAll(async () => {
  await db?.drop();
});

async function liveClients(wsUrl: string, scope: string, n: number, lastSyncId?: number) {
  const token = await tokenFor([scope]);
  const clients = await Promise.all(Array.from({ length: n }, () => TestClient.connect(wsUrl, token)));
  for (const c of clients) c.subscribe(scope, lastSyncId);
  await Promise.all(clients.map((c) => c.waitFor((f) => f.type === 'subscribed')));
  return clients;
}

async function metricValue(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) total += Number(line.split(' ').pop());
  return total;
}

describe('ordering over a bus that misbehaves', () => {
  it('delivers contiguously when the bus reorders and duplicates', async () => {
    const inner = createMemoryBus();
    const chaos = chaoticBus(inner);
    const gw = await startGateway({ bus: chaos.bus, delta: pgDeltaSource(db.pool) });
    try {
      const scope = newScope();
      const clients = await liveClients(gw.wsUrl, scope, 3);
      // Reverse order: 20 publishes held back, then released last-first, each one twice.
      chaos.holdBack();
      await writeEvents(db.pool, chaos.bus, scope, 20);
      await chaos.releaseReversed(2);
      await inner.publish({ scope, events: [] });
      for (const c of clients) expect(await c.untilEvent(scope, 20)).toEqual(range(1, 20));
      const dups = await metricValue(gw.url, 'sync_gateway_duplicates_dropped_total');
      expect(dups).toBeGreaterThan(0);
      for (const c of clients) c.close();
    } finally {
      await gw.stop();
    }
  });

  it('fills a dropped publish from the log when a later event reveals the gap', async () => {
    const inner = createMemoryBus();
    const chaos = chaoticBus(inner);
    const gw = await startGateway(
      { bus: chaos.bus, delta: pgDeltaSource(db.pool) },
      { HEAD_CHECK_INTERVAL_MS: 60_000, REORDER_HOLD_MS: 50 },
    );
    try {
      const scope = newScope();
      const [client] = await liveClients(gw.wsUrl, scope, 1);
      let n = 0;
      chaos.setTransform((m: BusMessage) => (++n % 3 === 0 ? [] : [m])); // every third publish lost
      await writeEvents(db.pool, chaos.bus, scope, 31);
      expect(await client!.untilEvent(scope, 31)).toEqual(range(1, 31));
      expect(await metricValue(gw.url, 'sync_gateway_gap_fills_total{reason="gap"')).toBeGreaterThan(0);
      client!.close();
    } finally {
      await gw.stop();
    }
  });

  it('delivers an event whose publish was lost, with no later event, through the head check', async () => {
    const inner = createMemoryBus();
    const chaos = chaoticBus(inner);
    const gw = await startGateway(
      { bus: chaos.bus, delta: pgDeltaSource(db.pool) },
      { HEAD_CHECK_INTERVAL_MS: 200 },
    );
    try {
      const scope = newScope();
      const clients = await liveClients(gw.wsUrl, scope, 2);
      chaos.setTransform(() => []); // the bus loses everything
      await writeEvents(db.pool, chaos.bus, scope, 2);
      for (const c of clients) expect(await c.untilEvent(scope, 2)).toEqual([1, 2]);
      expect(await metricValue(gw.url, 'sync_gateway_gap_fills_total{reason="head_check"')).toBeGreaterThan(
        0,
      );
      for (const c of clients) c.close();
    } finally {
      await gw.stop();
    }
  });

  it('keeps streams exact under random drop, duplicate and reorder, with clients joining mid-stream', async () => {
    const inner = createMemoryBus();
    const chaos = chaoticBus(inner);
    const gw = await startGateway(
      { bus: chaos.bus, delta: pgDeltaSource(db.pool) },
      { HEAD_CHECK_INTERVAL_MS: 300, REORDER_HOLD_MS: 30 },
    );
    try {
      const scope = newScope();
      let seed = 7;
      const rand = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      const late: BusMessage[] = [];
      chaos.setTransform((m) => {
        const r = rand();
        const out: BusMessage[] = [...late.splice(0)];
        if (r < 0.15) return out; // dropped
        if (r < 0.3)
          out.push(m, m); // duplicated
        else if (r < 0.5)
          late.push(m); // delivered after the next one
        else out.push(m);
        return out;
      });
      const early = await liveClients(gw.wsUrl, scope, 2);
      const writing = writeEvents(db.pool, chaos.bus, scope, 60);
      await new Promise((r) => setTimeout(r, 30));
      const joining = [
        ...(await liveClients(gw.wsUrl, scope, 1)),
        ...(await liveClients(gw.wsUrl, scope, 1, 5)),
      ];
      await writing;
      for (const c of early) expect(await c.untilEvent(scope, 60)).toEqual(range(1, 60));
      for (const c of joining) {
        const boot = c.frames.find((f) => f.type === 'bootstrap');
        const from = boot?.type === 'bootstrap' ? boot.lastSyncId : 5;
        expect(await c.untilEvent(scope, 60)).toEqual(range(from + 1, 60));
      }
      for (const c of [...early, ...joining]) c.close();
    } finally {
      await gw.stop();
    }
  });
});

describe('thundering herd', () => {
  it('serves many clients resuming one scope at one cursor with one delta read and one bootstrap', async () => {
    const bus = createMemoryBus();
    const { source, calls } = countingDeltaSource(pgDeltaSource(db.pool));
    const gw = await startGateway({ bus, delta: source }, { HEAD_CHECK_INTERVAL_MS: 60_000 });
    try {
      const scope = newScope();
      await writeEvents(db.pool, bus, scope, 12);
      const token = await tokenFor([scope]);
      const resumers = await Promise.all(
        Array.from({ length: 40 }, () => TestClient.connect(gw.wsUrl, token)),
      );
      const booters = await Promise.all(
        Array.from({ length: 40 }, () => TestClient.connect(gw.wsUrl, token)),
      );
      const before = { ...calls };
      for (const c of resumers) c.subscribe(scope, 7);
      for (const c of booters) c.subscribe(scope);
      await Promise.all([...resumers, ...booters].map((c) => c.waitFor((f) => f.type === 'subscribed')));
      for (const c of resumers) expect(c.eventIds(scope)).toEqual(range(8, 12));
      expect(calls.delta - before.delta).toBe(1);
      expect(calls.bootstrap - before.bootstrap).toBe(1);
      await writeEvents(db.pool, bus, scope, 1);
      for (const c of [...resumers, ...booters]) expect((await c.untilEvent(scope, 13)).at(-1)).toBe(13);
      for (const c of [...resumers, ...booters]) c.close();
    } finally {
      await gw.stop();
    }
  });
});
