import { randomUUID } from 'node:crypto';
import {
  AppendEventData,
  applyAppend,
  BootstrapResponse,
  type ModelName,
  type ModelsSnapshot,
  type SyncEvent,
  unreachable,
} from '@openagents/sync-protocol';
import { createLogger, createRegistry, readEvents } from '@openagents/sync-server-kit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { testAuth, tokenFor } from '../../../test/support/tokens';
import { deleteRecord, insertRecord, scopeTables, sortedSnapshot, updateRecord } from '../test/writes';
import { createDeltaApp } from './app';
import { createDeltaReader } from './reader';

/**
 * Paged bootstraps (contract v1.1): the pages of a scope, fetched with writes landing between
 * them, plus the events after the LAST page's lastSyncId, give exactly the tables' state — read
 * straight from SQL as an oracle that shares no code with the reader.
 */
describe('bootstrap pages', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('delta_pages');
  });
  afterAll(() => db.drop());

  /** A client's apply: insert puts, update merges into a record it has (else drops), delete removes. */
  const applyLikeClient = (models: ModelsSnapshot, events: readonly SyncEvent[]): ModelsSnapshot => {
    const byModel = new Map<ModelName, Map<string, Record<string, unknown>>>();
    for (const [model, records] of Object.entries(models) as [ModelName, Record<string, unknown>[]][]) {
      byModel.set(model, new Map(records.map((r) => [String(r.id), { ...r }])));
    }
    for (const event of events) {
      const records = byModel.get(event.model)!;
      switch (event.action) {
        case 'insert':
          records.set(event.model_id, { ...event.data });
          break;
        case 'update': {
          const prev = records.get(event.model_id);
          if (prev) records.set(event.model_id, { ...prev, ...event.data });
          break;
        }
        case 'delete':
          records.delete(event.model_id);
          break;
        case 'append': {
          const prev = records.get(event.model_id);
          const piece = AppendEventData.parse(event.data);
          const outcome = applyAppend(String(prev?.[piece.field] ?? ''), piece);
          if (prev && outcome.kind === 'applied') {
            records.set(event.model_id, {
              ...prev,
              [piece.field]: outcome.text,
              updated_at: piece.updated_at,
            });
          }
          break;
        }
        default:
          unreachable(event.action);
      }
    }
    return sortedSnapshot(
      Object.fromEntries([...byModel].map(([m, r]) => [m, [...r.values()]])) as ModelsSnapshot,
    );
  };

  const union = (pages: readonly BootstrapResponse[]): ModelsSnapshot => {
    const all: ModelsSnapshot = {
      Agent: [],
      Message: [],
      Payment: [],
      CodeChange: [],
      ReasoningStep: [],
      ToolCall: [],
    };
    for (const page of pages) {
      for (const [model, records] of Object.entries(page.models) as [
        ModelName,
        Record<string, unknown>[],
      ][]) {
        all[model].push(...records);
      }
    }
    return all;
  };

  type Write =
    | { kind: 'insert'; model: 'Message' | 'CodeChange' | 'Agent' | 'Payment'; size: number }
    | { kind: 'update'; pick: number; size: number }
    | { kind: 'delete'; pick: number };

  const write: fc.Arbitrary<Write> = fc.oneof(
    fc.record({
      kind: fc.constant('insert' as const),
      model: fc.constantFrom('Message' as const, 'CodeChange' as const, 'Agent' as const, 'Payment' as const),
      size: fc.integer({ min: 0, max: 900 }),
    }),
    fc.record({
      kind: fc.constant('update' as const),
      pick: fc.nat(),
      size: fc.integer({ min: 0, max: 900 }),
    }),
    fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
  );

  it('pages plus the events after the last page equal a fresh read, whatever lands between pages', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          pageBytes: fc.integer({ min: 200, max: 2500 }),
          initial: fc.array(write, { minLength: 3, maxLength: 25 }),
          // Writes landing after page i was read (index i), and after the last page.
          between: fc.array(fc.array(write, { maxLength: 5 }), { minLength: 1, maxLength: 12 }),
          sameInstant: fc.boolean(),
        }),
        async ({ pageBytes, initial, between, sameInstant }) => {
          const orgId = randomUUID();
          const agent = await insertRecord(db.pool, 'Agent', { org_id: orgId, name: 'root' });
          const agentId = String(agent.record.id);
          const live: { model: 'Message' | 'CodeChange' | 'Agent' | 'Payment'; id: string }[] = [];
          // Records created in one instant share created_at: the keyset falls back to the id.
          const instant = new Date();
          const apply = async (w: Write) => {
            if (w.kind === 'insert') {
              const text = 'x'.repeat(w.size);
              const options = sameInstant ? { createdAt: instant } : {};
              const data =
                w.model === 'Message'
                  ? { agent_id: agentId, role: 'user', content: `${text}"\n` }
                  : w.model === 'CodeChange'
                    ? { agent_id: agentId, path: 'a.ts', diff: text }
                    : w.model === 'Agent'
                      ? { org_id: orgId, name: `a${text}`.slice(0, 200) }
                      : { org_id: orgId, agent_id: agentId, amount: w.size, currency: 'EUR' };
              const r = await insertRecord(db.pool, w.model, data, options);
              live.push({ model: w.model, id: String(r.record.id) });
              return;
            }
            const target = live[w.pick % Math.max(1, live.length)];
            if (!target) return;
            if (w.kind === 'delete') {
              await deleteRecord(db.pool, target.model, target.id);
              live.splice(live.indexOf(target), 1);
              return;
            }
            const patch =
              target.model === 'Message'
                ? { content: 'y'.repeat(w.size) }
                : target.model === 'CodeChange'
                  ? { status: 'applied', diff: 'y'.repeat(w.size) }
                  : target.model === 'Agent'
                    ? { name: `b${w.size}` }
                    : { status: 'settled' };
            await updateRecord(db.pool, target.model, target.id, patch);
          };
          for (const w of initial) await apply(w);

          const reader = createDeltaReader({ pool: db.pool, bootstrapPageBytes: pageBytes });
          for (const scope of [`org:${orgId}`, `agent:${agentId}`]) {
            const pages: BootstrapResponse[] = [];
            let page = await reader.bootstrap(scope);
            pages.push(page);
            let step = 0;
            while (page.nextCursor) {
              // Writes land after every page (cycling through `between`): records inserted after
              // the bootstrap began are not walked, so this ends however much is inserted.
              for (const w of between[step++ % between.length]!) await apply(w);
              page = await reader.bootstrap(scope, { cursor: page.nextCursor });
              pages.push(page);
            }
            for (const w of between.at(-1)!) await apply(w);

            // Bounded: a page holds one record, or records of at most pageBytes of JSON.
            for (const p of pages) {
              const records = Object.values(p.models).flat();
              const bytes = records.reduce((n, r) => n + Buffer.byteLength(JSON.stringify(r)) + 1, 0);
              if (records.length > 1) expect(bytes).toBeLessThanOrEqual(pageBytes);
            }
            // No record is in two pages.
            const ids = Object.values(union(pages))
              .flat()
              .map((r) => r.id);
            expect(new Set(ids).size).toBe(ids.length);

            const last = pages.at(-1)!;
            const events = await readEvents(db.pool, scope, last.lastSyncId, 100_000);
            expect(applyLikeClient(union(pages), events), `${scope}, ${pages.length} pages`).toEqual(
              await scopeTables(db.pool, scope),
            );
          }
        },
      ),
      { numRuns: 25, endOnFailure: true },
    );
    // 25 runs of a few hundred real writes each: minutes on a loaded machine, seconds on a quiet one.
  }, 180_000);

  it('ends a bootstrap of a scope that receives inserts faster than pages are fetched', async () => {
    const orgId = randomUUID();
    const agent = await insertRecord(db.pool, 'Agent', { org_id: orgId, name: 'root' });
    const agentId = String(agent.record.id);
    const scope = `agent:${agentId}`;
    const message = (i: number) => ({ agent_id: agentId, role: 'user', content: `m${i} ${'x'.repeat(300)}` });
    for (let i = 0; i < 6; i++) await insertRecord(db.pool, 'Message', message(i));
    // A page holds one message; two more arrive after every page.
    const reader = createDeltaReader({ pool: db.pool, bootstrapPageBytes: 200 });
    const pages: BootstrapResponse[] = [await reader.bootstrap(scope)];
    let inserted = 6;
    while (pages.at(-1)!.nextCursor && pages.length < 40) {
      for (let k = 0; k < 2; k++) await insertRecord(db.pool, 'Message', message(inserted++));
      pages.push(await reader.bootstrap(scope, { cursor: pages.at(-1)!.nextCursor! }));
    }
    // The six messages at L, one per page (and an empty page at most where a model ends).
    expect(pages.at(-1)!.nextCursor).toBeUndefined();
    expect(union(pages).Message).toHaveLength(6);
    const events = await readEvents(db.pool, scope, pages[0]!.lastSyncId, 100_000);
    expect(applyLikeClient(union(pages), events)).toEqual(await scopeTables(db.pool, scope));
  });

  it('serves pages over HTTP with nextCursor until the last, and refuses hostile cursors with 400', async () => {
    const orgId = randomUUID();
    for (let i = 0; i < 12; i++)
      await insertRecord(db.pool, 'Agent', { org_id: orgId, name: `n${i}`.repeat(40) });
    const app = createDeltaApp({
      reader: createDeltaReader({ pool: db.pool, bootstrapPageBytes: 1000 }),
      auth: testAuth,
      log: createLogger({ name: 'delta', level: 'silent' }),
      registry: createRegistry('delta', { defaultMetrics: false }),
    });
    const scope = `org:${orgId}`;
    const token = await tokenFor([scope, 'org:*']);
    const get = (query: string) =>
      app.request(`/sync/bootstrap?scope=${scope}${query}`, {
        headers: { authorization: `Bearer ${token}` },
      });

    const pages: BootstrapResponse[] = [];
    let res = await get('');
    for (;;) {
      expect(res.status).toBe(200);
      const page = BootstrapResponse.parse(await res.json());
      pages.push(page);
      if (!page.nextCursor) break;
      res = await get(`&cursor=${page.nextCursor}`);
    }
    expect(pages.length).toBeGreaterThan(2);
    expect(new Set(pages.map((p) => p.lastSyncId)).size).toBe(1);
    expect(union(pages).Agent.map((a) => a.name)).toEqual(
      Array.from({ length: 12 }, (_, i) => `n${i}`.repeat(40)),
    );

    const real = BootstrapResponse.parse(await (await get('')).json()).nextCursor!;
    const forge = (wire: unknown) => Buffer.from(JSON.stringify(wire)).toString('base64url');
    const decoded = JSON.parse(Buffer.from(real, 'base64url').toString()) as Record<string, unknown>;
    const hostile = [
      'x',
      '!!!',
      'a'.repeat(600),
      `${real}AAAA`,
      real.slice(0, -3),
      forge({ ...decoded, l: 10 ** 12 }),
      forge({ ...decoded, l: -1 }),
      forge({ ...decoded, m: 9 }),
      forge({ ...decoded, m: 3 }),
      forge({ ...decoded, i: "'; DROP TABLE agents; --" }),
      forge({ ...decoded, t: 1e300 }),
      forge({ ...decoded, extra: 1 }),
      forge({ ...decoded, s: 'AAAAAAAAAAA' }),
      forge([]),
      forge(null),
      forge('x'.repeat(100)),
    ];
    for (const cursor of hostile) {
      const answer = await get(`&cursor=${encodeURIComponent(cursor)}`);
      expect(answer.status, cursor).toBe(400);
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('bad_request');
    }
    // A cursor made for another scope the token also covers is refused, not served.
    const other = `org:${randomUUID()}`;
    const cross = await app.request(`/sync/bootstrap?scope=${other}&cursor=${real}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(cross.status).toBe(400);
  });

  it('sends a record larger than a page alone, and caps delta pages by bytes as well as count', async () => {
    const agent = await insertRecord(db.pool, 'Agent', { org_id: randomUUID(), name: 'big' });
    const agentId = String(agent.record.id);
    const scope = `agent:${agentId}`;
    for (let i = 0; i < 5; i++) {
      await insertRecord(db.pool, 'Message', { agent_id: agentId, role: 'user', content: 'z'.repeat(5000) });
    }
    const reader = createDeltaReader({ pool: db.pool, bootstrapPageBytes: 2000, deltaPageBytes: 12_000 });
    let page = await reader.bootstrap(scope);
    let pages = 1;
    expect(page.models.Message).toHaveLength(1);
    while (page.nextCursor) {
      page = await reader.bootstrap(scope, { cursor: page.nextCursor });
      if (page.models.Message.length > 0) expect(page.models.Message).toHaveLength(1);
      pages++;
    }
    expect(pages).toBeGreaterThanOrEqual(5);

    const first = await reader.delta(scope, 0, 1000);
    expect(first.events.map((e) => e.id)).toEqual([1, 2]);
    expect(first.hasMore).toBe(true);
    const rest = await reader.delta(scope, 2, 1000);
    expect(rest.events.map((e) => e.id)).toEqual([3, 4]);
    const tail = await reader.delta(scope, 4, 1000);
    expect(tail.events.map((e) => e.id)).toEqual([5]);
    expect(tail.hasMore).toBe(false);
    // One event larger than the budget still goes out, alone.
    const tiny = createDeltaReader({ pool: db.pool, deltaPageBytes: 100 });
    expect((await tiny.delta(scope, 0, 1000)).events.map((e) => e.id)).toEqual([1]);
  });
});
