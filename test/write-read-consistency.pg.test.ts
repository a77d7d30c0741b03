import { randomUUID } from 'node:crypto';
import { createApiApp } from '@openagents/sync-api-service';
import { createDeltaApp, createDeltaReader } from '@openagents/sync-delta-service';
import {
  BootstrapResponse,
  DeltaResponse,
  type ModelsSnapshot,
  MutationBatchResult,
  type SyncEvent,
  WriteResult,
} from '@openagents/sync-protocol';
import {
  createLogger,
  createMemoryBus,
  createPool,
  createRegistry,
  type Pool,
  readHeads,
} from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyEvents, emptySnapshot, scopeTables, sortedSnapshot } from '../services/delta/test/writes';
import { createTestDatabase, type TestDatabase } from './support/pg';
import { testAuth, tokenFor } from './support/tokens';

/**
 * Contract section 5, end to end in one process: many writers commit through the mutation API
 * (creates, updates, deletes, cross-scope batches) on shared and separate scopes while readers
 * poll `/sync/delta`. Every reader must see each scope's ids as 1, 2, 3, … with nothing skipped
 * (a skipped id that committed later would be a gap that "fills"), every event must look the same
 * to every reader, and at the end bootstrap + delta must equal the tables for every scope.
 */

const log = createLogger({ name: 'consistency', level: 'silent' });

/** A small deterministic PRNG so a failing interleaving of choices can be re-run. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('write → read consistency through the API and the delta service', () => {
  let db: TestDatabase;
  let readPool: Pool;
  let api: ReturnType<typeof createApiApp>;
  let delta: ReturnType<typeof createDeltaApp>;
  let token: string;

  beforeAll(async () => {
    db = await createTestDatabase('write_read');
    // Separate pools, as separate services would have.
    readPool = createPool({ url: db.url, max: 6 });
    api = createApiApp({
      pool: db.pool,
      bus: createMemoryBus(),
      auth: testAuth,
      log,
      registry: createRegistry('api', { defaultMetrics: false }),
      config: { RATE_LIMIT_PER_SECOND: 0 },
    });
    delta = createDeltaApp({
      reader: createDeltaReader({ pool: readPool }),
      auth: testAuth,
      log,
      registry: createRegistry('delta', { defaultMetrics: false }),
    });
    token = await tokenFor(['*']);
  });
  afterAll(async () => {
    await readPool?.end();
    await db?.drop();
  });

  const write = async (method: string, path: string, body: unknown): Promise<Response> =>
    api.request(path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  const read = async (path: string): Promise<Response> =>
    delta.request(path, { headers: { authorization: `Bearer ${token}` } });

  it('readers see contiguous ids from 1, identical events, and bootstrap + delta equals the tables', async () => {
    // Two orgs with two agents each: six scopes. Agents are shared by every writer.
    const orgs = [randomUUID(), randomUUID()];
    const agents: { id: string; org: string }[] = [];
    for (const org of orgs) {
      for (let i = 0; i < 2; i++) {
        const res = await write('POST', '/api/agents', { org_id: org, name: `agent ${i}` });
        expect(res.status).toBe(201);
        agents.push({ id: String(WriteResult.parse(await res.json()).data.id), org });
      }
    }
    const scopes = [...orgs.map((o) => `org:${o}`), ...agents.map((a) => `agent:${a.id}`)];
    /** syncIds handed to writers, per scope: must end up exactly 1..head, each once. */
    const acknowledged = new Map<string, number[]>(scopes.map((s) => [s, []]));
    acknowledged.get(`org:${orgs[0]}`)!.push(1, 2);
    acknowledged.get(`org:${orgs[1]}`)!.push(1, 2);
    const acknowledge = (result: WriteResult) => acknowledged.get(result.scope)!.push(result.syncId);

    const writer = async (w: number) => {
      const random = mulberry32(1000 + w);
      const pickAgent = () => agents[Math.floor(random() * agents.length)]!;
      const owned: { path: string; id: string; patch: () => Record<string, unknown> }[] = [];
      for (let i = 0; i < 30; i++) {
        const roll = random();
        let res: Response;
        if (roll < 0.2) {
          res = await write('POST', '/api/messages', {
            agent_id: pickAgent().id,
            role: 'user',
            content: `w${w} m${i}`,
          });
          if (res.status === 201) {
            const id = String(WriteResult.parse(await res.clone().json()).data.id);
            owned.push({ path: 'messages', id, patch: () => ({ content: `w${w} edit ${random()}` }) });
          }
        } else if (roll < 0.35) {
          const agent = pickAgent();
          res = await write('POST', '/api/payments', {
            org_id: agent.org,
            agent_id: agent.id,
            amount: Math.floor(random() * 10_000),
            currency: 'USD',
          });
          if (res.status === 201) {
            const id = String(WriteResult.parse(await res.clone().json()).data.id);
            owned.push({ path: 'payments', id, patch: () => ({ status: 'settled', amount: i }) });
          }
        } else if (roll < 0.45) {
          res = await write('POST', '/api/code-changes', {
            agent_id: pickAgent().id,
            path: `f${i}.ts`,
            diff: '+a',
          });
          if (res.status === 201) {
            const id = String(WriteResult.parse(await res.clone().json()).data.id);
            owned.push({ path: 'code-changes', id, patch: () => ({ status: 'applied' }) });
          }
        } else if (roll < 0.55) {
          res = await write('POST', '/api/reasoning-steps', {
            agent_id: pickAgent().id,
            content: `w${w} s${i}`,
          });
        } else if (roll < 0.65) {
          // Contended: every writer updates the same few agent rows (last writer wins per field).
          const status = ['idle', 'running', 'error', 'stopped'][Math.floor(random() * 4)];
          res = await write('PATCH', `/api/agents/${pickAgent().id}`, { status, name: `by w${w} #${i}` });
        } else if (roll < 0.75 && owned.length > 0) {
          const target = owned[Math.floor(random() * owned.length)]!;
          res = await write('PATCH', `/api/${target.path}/${target.id}`, target.patch());
        } else if (roll < 0.85 && owned.length > 0) {
          const target = owned.splice(Math.floor(random() * owned.length), 1)[0]!;
          res = await write('DELETE', `/api/${target.path}/${target.id}`, undefined);
        } else {
          // One transaction over two scopes: both events or neither.
          const agent = pickAgent();
          res = await write('POST', '/api/mutations', {
            mutations: [
              {
                model: 'Message',
                action: 'insert',
                data: { agent_id: agent.id, role: 'tool', content: 'batch' },
              },
              {
                model: 'Payment',
                action: 'insert',
                data: { org_id: agent.org, amount: 1, currency: 'EUR' },
              },
            ],
          });
          expect(res.status).toBe(200);
          for (const result of MutationBatchResult.parse(await res.json()).results) acknowledge(result);
          continue;
        }
        expect([200, 201], `${res.status} ${await res.clone().text()}`).toContain(res.status);
        acknowledge(WriteResult.parse(await res.json()));
      }
    };

    /** What one reader has seen of one scope. */
    interface ScopeView {
      cursor: number;
      events: SyncEvent[];
      state: ModelsSnapshot;
    }

    let writing = true;
    const pollOnce = async (view: ScopeView, scope: string, limit: number): Promise<boolean> => {
      const res = await read(`/sync/delta?scope=${scope}&lastSyncId=${view.cursor}&limit=${limit}`);
      expect(res.status).toBe(200);
      const page = DeltaResponse.parse(await res.json());
      const ids = page.events.map((e) => e.id);
      // The heart of it: a page always continues exactly where the cursor was.
      expect(ids, `${scope} after ${view.cursor}`).toEqual(ids.map((_, i) => view.cursor + 1 + i));
      expect(page.latestSyncId).toBeGreaterThanOrEqual(view.cursor + ids.length);
      if (page.hasMore) expect(ids).toHaveLength(limit);
      view.events.push(...page.events);
      view.state = applyEvents(view.state, page.events);
      view.cursor += ids.length;
      return page.hasMore || view.cursor < page.latestSyncId;
    };

    /** Polls every scope with small random pages until the writers stop, then catches up fully. */
    const reader = async (r: number, start: 'zero' | 'bootstrap'): Promise<Map<string, ScopeView>> => {
      const random = mulberry32(5000 + r);
      const views = new Map<string, ScopeView>();
      for (const scope of scopes) {
        if (start === 'zero') {
          views.set(scope, { cursor: 0, events: [], state: emptySnapshot() });
        } else {
          const res = await read(`/sync/bootstrap?scope=${scope}`);
          expect(res.status).toBe(200);
          const snap = BootstrapResponse.parse(await res.json());
          views.set(scope, { cursor: snap.lastSyncId, events: [], state: sortedSnapshot(snap.models) });
        }
      }
      while (writing) {
        for (const scope of scopes) await pollOnce(views.get(scope)!, scope, 1 + Math.floor(random() * 15));
      }
      for (const scope of scopes) {
        while (await pollOnce(views.get(scope)!, scope, 50));
      }
      return views;
    };

    const writers = Promise.all(Array.from({ length: 8 }, (_, w) => writer(w))).finally(() => {
      writing = false;
    });
    const readers = Promise.all([reader(0, 'zero'), reader(1, 'zero'), reader(2, 'bootstrap')]);
    const [, views] = await Promise.all([writers, readers]);

    const heads = await readHeads(db.pool, scopes);
    let total = 0;
    for (const scope of scopes) {
      const head = heads.get(scope)!;
      total += head;
      // Every acknowledged write has its own id, and every id was acknowledged to some writer.
      const acks = [...acknowledged.get(scope)!].sort((a, b) => a - b);
      expect(acks, scope).toEqual(Array.from({ length: head }, (_, i) => i + 1));

      const tables = await scopeTables(db.pool, scope);
      const [fromZero, fromZeroToo, fromBootstrap] = views.map((v) => v.get(scope)!);
      // Readers from 0 saw the whole log, identically, and it replays to the tables.
      expect(fromZero!.events.map((e) => e.id)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
      expect(fromZeroToo!.events).toEqual(fromZero!.events);
      expect(fromZero!.state).toEqual(tables);
      // The reader that bootstrapped mid-stream saw the same events after its snapshot.
      expect(fromBootstrap!.events).toEqual(fromZero!.events.slice(head - fromBootstrap!.events.length));
      expect(fromBootstrap!.state).toEqual(tables);

      // A client arriving now: bootstrap, then delta from its lastSyncId.
      const snap = BootstrapResponse.parse(await (await read(`/sync/bootstrap?scope=${scope}`)).json());
      expect(snap.lastSyncId).toBe(head);
      const rest = DeltaResponse.parse(
        await (await read(`/sync/delta?scope=${scope}&lastSyncId=${snap.lastSyncId}`)).json(),
      );
      expect(rest).toMatchObject({ events: [], latestSyncId: head, hasMore: false });
      expect(applyEvents(snap.models, rest.events)).toEqual(tables);
    }
    expect(total).toBeGreaterThan(250);
  });
});
