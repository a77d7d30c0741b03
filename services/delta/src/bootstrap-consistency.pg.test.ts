import { randomUUID } from 'node:crypto';
import { BootstrapResponse } from '@openagents/sync-protocol';
import { createLogger, createRegistry, readEvents } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { testAuth, tokenFor } from '../../../test/support/tokens';
import {
  applyEvents,
  deleteRecord,
  emptySnapshot,
  insertRecord,
  scopeTables,
  sortedSnapshot,
  updateRecord,
} from '../test/writes';
import { createDeltaApp } from './app';
import { createDeltaReader } from './reader';

/**
 * The bootstrap promise under load: while writers commit to a scope, every snapshot taken is the
 * state after exactly its `lastSyncId` events, so replaying the log from lastSyncId+1 on top of it
 * reproduces the final tables, read here straight from SQL as an independent oracle.
 */
describe('bootstrap consistency under concurrent writes', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('delta_consistency');
  });
  afterAll(() => db.drop());

  it('every snapshot plus the log after it equals the final tables, for org and agent scopes', async () => {
    const orgId = randomUUID();
    const agent = await insertRecord(db.pool, 'Agent', { org_id: orgId, name: 'root' });
    const agentId = String(agent.record.id);
    const scopes = [`org:${orgId}`, `agent:${agentId}`];
    const app = createDeltaApp({
      reader: createDeltaReader({ pool: db.pool }),
      auth: testAuth,
      log: createLogger({ name: 'delta', level: 'silent' }),
      registry: createRegistry('delta', { defaultMetrics: false }),
    });
    const token = await tokenFor(scopes);

    // Four writers, mixed creates, updates and deletes over five models in both scopes.
    const writer = async (w: number) => {
      const mine: { model: 'Message' | 'Payment' | 'CodeChange' | 'Agent'; id: string }[] = [];
      for (let i = 0; i < 30; i++) {
        const pick = (i * 7 + w) % 6;
        const target = mine[(i + w) % Math.max(1, mine.length)];
        if (pick === 0 || !target) {
          const m = await insertRecord(db.pool, 'Message', {
            agent_id: agentId,
            role: 'user',
            content: `m${w}.${i}`,
          });
          mine.push({ model: 'Message', id: String(m.record.id) });
          await insertRecord(db.pool, 'ReasoningStep', {
            agent_id: agentId,
            message_id: null,
            content: `s${w}.${i}`,
          });
        } else if (pick === 1) {
          const p = await insertRecord(db.pool, 'Payment', {
            org_id: orgId,
            agent_id: agentId,
            amount: i * 100,
            currency: 'USD',
          });
          mine.push({ model: 'Payment', id: String(p.record.id) });
        } else if (pick === 2) {
          const c = await insertRecord(db.pool, 'CodeChange', {
            agent_id: agentId,
            path: `f${i}.ts`,
            diff: '+',
          });
          mine.push({ model: 'CodeChange', id: String(c.record.id) });
        } else if (pick === 3) {
          const a = await insertRecord(db.pool, 'Agent', { org_id: orgId, name: `a${w}.${i}` });
          mine.push({ model: 'Agent', id: String(a.record.id) });
        } else if (pick === 4) {
          const patch =
            target.model === 'Message'
              ? { content: `edited ${i}` }
              : target.model === 'Payment'
                ? { status: 'settled', amount: i }
                : target.model === 'CodeChange'
                  ? { status: 'applied' }
                  : { status: 'running', name: `renamed ${i}` };
          await updateRecord(db.pool, target.model, target.id, patch);
        } else {
          await deleteRecord(db.pool, target.model, target.id);
          mine.splice(mine.indexOf(target), 1);
        }
      }
    };

    let writing = true;
    const writers = Promise.all([0, 1, 2, 3].map(writer)).finally(() => {
      writing = false;
    });
    const snapshots: BootstrapResponse[] = [];
    const bootstrapper = async (scope: string) => {
      while (writing) {
        const res = await app.request(`/sync/bootstrap?scope=${scope}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        expect(res.status).toBe(200);
        snapshots.push(BootstrapResponse.parse(await res.json()));
      }
    };
    await Promise.all([writers, bootstrapper(scopes[0]!), bootstrapper(scopes[1]!)]);

    for (const scope of scopes) {
      const log = await readEvents(db.pool, scope, 0, 100_000);
      expect(log.map((e) => e.id)).toEqual(log.map((_, i) => i + 1));
      const taken = snapshots.filter((s) => s.scope === scope);
      expect(taken.length).toBeGreaterThan(0);
      const empty = emptySnapshot();
      const final = await scopeTables(db.pool, scope);
      for (const snap of taken) {
        expect(
          applyEvents(snap.models, log.slice(snap.lastSyncId)),
          `${scope} at ${snap.lastSyncId}`,
        ).toEqual(final);
        // Stricter, since the whole log is retained: the snapshot is exactly the state after its
        // lastSyncId events, not a later one (replaying onto a later state would converge too).
        expect(sortedSnapshot(snap.models), `${scope} at ${snap.lastSyncId}`).toEqual(
          applyEvents(empty, log.slice(0, snap.lastSyncId)),
        );
      }
      // The whole log from nothing also ends at the tables.
      expect(applyEvents(empty, log)).toEqual(final);
    }
  });
});
