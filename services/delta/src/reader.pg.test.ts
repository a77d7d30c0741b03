import { randomUUID } from 'node:crypto';
import type { DeltaSource } from '@openagents/sync-server-kit';
import { AppError, pruneEvents } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { applyEvents, deleteRecord, insertRecord, sortedSnapshot, updateRecord } from '../test/writes';
import { createDeltaReader } from './reader';

describe('delta reader', () => {
  let db: TestDatabase;
  let reader: DeltaSource;
  const orgId = randomUUID();
  const org = `org:${orgId}`;
  let agentId: string;
  let agent: string;

  beforeAll(async () => {
    db = await createTestDatabase('delta_reader');
    reader = createDeltaReader({ pool: db.pool });
    const a = await insertRecord(db.pool, 'Agent', { org_id: orgId, name: 'first', status: 'idle' });
    agentId = String(a.record.id);
    agent = `agent:${agentId}`;
    await insertRecord(db.pool, 'Payment', {
      org_id: orgId,
      agent_id: agentId,
      amount: 1250,
      currency: 'EUR',
    });
    await insertRecord(db.pool, 'Message', { agent_id: agentId, role: 'user', content: 'hello' });
    const m = await insertRecord(db.pool, 'Message', { agent_id: agentId, role: 'assistant', content: 'hi' });
    await insertRecord(db.pool, 'ReasoningStep', {
      agent_id: agentId,
      message_id: m.record.id,
      content: 'think',
    });
    await insertRecord(db.pool, 'CodeChange', { agent_id: agentId, path: 'a.ts', diff: '+1' });
    await updateRecord(db.pool, 'Agent', agentId, { status: 'running' });
  });
  afterAll(() => db.drop());

  it('bootstraps every model key, the scope rows only, serialized like the API', async () => {
    const snap = await reader.bootstrap(org);
    expect(snap.scope).toBe(org);
    expect(snap.lastSyncId).toBe(3);
    expect(Object.keys(snap.models).sort()).toEqual([
      'Agent',
      'CodeChange',
      'Message',
      'Payment',
      'ReasoningStep',
      'ToolCall',
    ]);
    expect(snap.models.Message).toEqual([]);
    expect(snap.models.Agent).toHaveLength(1);
    expect(snap.models.Agent[0]).toMatchObject({
      id: agentId,
      org_id: orgId,
      name: 'first',
      status: 'running',
    });
    expect(snap.models.Agent[0]!.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(snap.models.Payment[0]).toMatchObject({
      amount: 1250,
      currency: 'EUR',
      status: 'pending',
      agent_id: agentId,
    });

    const agentSnap = await reader.bootstrap(agent);
    expect(agentSnap.lastSyncId).toBe(4);
    expect(agentSnap.models.Message.map((m) => m.content)).toEqual(['hello', 'hi']);
    expect(agentSnap.models.ReasoningStep).toHaveLength(1);
    expect(agentSnap.models.CodeChange).toHaveLength(1);
    expect(agentSnap.models.Agent).toEqual([]);
  });

  it('answers empty snapshots for scopes without rows, other kinds and non-canonical ids', async () => {
    for (const scope of [`org:${randomUUID()}`, 'team:x', 'org:not-a-uuid', `org:${orgId.toUpperCase()}`]) {
      const snap = await reader.bootstrap(scope);
      expect(snap.lastSyncId).toBe(0);
      expect(Object.values(snap.models).every((records) => records.length === 0)).toBe(true);
    }
  });

  it('replays the log from 0 to the same state as the snapshot', async () => {
    const snap = await reader.bootstrap(agent);
    const page = await reader.delta(agent, 0);
    const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [], ToolCall: [] };
    expect(applyEvents(empty, page.events)).toEqual(sortedSnapshot(snap.models));
  });

  it('pages with limit and hasMore, ids contiguous from the cursor', async () => {
    const scope = `org:${randomUUID()}`;
    const orgOf = scope.slice(4);
    const a = await insertRecord(db.pool, 'Agent', { org_id: orgOf, name: 'pager' });
    for (let i = 0; i < 6; i++) await updateRecord(db.pool, 'Agent', String(a.record.id), { name: `n${i}` });
    await deleteRecord(db.pool, 'Agent', String(a.record.id));

    const seen: number[] = [];
    let cursor = 0;
    let pages = 0;
    for (;;) {
      const page = await reader.delta(scope, cursor, 3);
      pages++;
      expect(page.latestSyncId).toBe(8);
      expect(page.events.map((e) => e.id)).toEqual(page.events.map((_, i) => cursor + i + 1));
      seen.push(...page.events.map((e) => e.id));
      cursor = page.events.at(-1)?.id ?? cursor;
      if (!page.hasMore) break;
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(pages).toBe(3);
    expect(await reader.delta(scope, 8)).toEqual({ scope, events: [], latestSyncId: 8, hasMore: false });
    const del = (await reader.delta(scope, 7)).events[0]!;
    expect(del).toMatchObject({ id: 8, action: 'delete', data: null, model: 'Agent', model_id: a.record.id });
    const snap = await reader.bootstrap(scope);
    expect(snap.models.Agent).toEqual([]);
    expect(snap.lastSyncId).toBe(8);
  });

  it('answers an empty page at cursor 0 of a scope that has no log', async () => {
    expect(await reader.delta('team:empty', 0)).toEqual({
      scope: 'team:empty',
      events: [],
      latestSyncId: 0,
      hasMore: false,
    });
  });

  it('requires a reset for a cursor ahead of the log (another history)', async () => {
    const err = await reader.delta(org, 4).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('reset_required');
    expect((err as AppError).status).toBe(410);
    await expect(reader.delta('team:never', 1)).rejects.toMatchObject({ code: 'reset_required' });
  });

  it('requires a reset for a cursor older than the retained log, and serves from the boundary', async () => {
    const orgOf = randomUUID();
    const scope = `org:${orgOf}`;
    const old = new Date(Date.now() - 40 * 86_400_000);
    const a = await insertRecord(db.pool, 'Agent', { org_id: orgOf, name: 'old' });
    await updateRecord(db.pool, 'Agent', String(a.record.id), { name: 'older' });
    await updateRecord(db.pool, 'Agent', String(a.record.id), { name: 'new' });
    await db.pool.query('UPDATE sync_events SET created_at = $2 WHERE scope = $1 AND id <= 2', [scope, old]);
    while ((await pruneEvents(db.pool, new Date(Date.now() - 30 * 86_400_000))) > 0);

    await expect(reader.delta(scope, 0)).rejects.toMatchObject({ code: 'reset_required' });
    await expect(reader.delta(scope, 1)).rejects.toMatchObject({ code: 'reset_required' });
    const page = await reader.delta(scope, 2);
    expect(page.events.map((e) => e.id)).toEqual([3]);
    // A fresh bootstrap still works and agrees with the retained tail.
    const snap = await reader.bootstrap(scope);
    expect(snap.lastSyncId).toBe(3);
    expect(snap.models.Agent[0]).toMatchObject({ name: 'new' });
  });

  it('never skips ids when the pruner deletes the page between the head and the events', async () => {
    const orgOf = randomUUID();
    const scope = `org:${orgOf}`;
    const a = await insertRecord(db.pool, 'Agent', { org_id: orgOf, name: 'v1' });
    await updateRecord(db.pool, 'Agent', String(a.record.id), { name: 'v2' });
    await updateRecord(db.pool, 'Agent', String(a.record.id), { name: 'v3' });
    const old = new Date(Date.now() - 40 * 86_400_000);
    await db.pool.query('UPDATE sync_events SET created_at = $2 WHERE scope = $1 AND id <= 2', [scope, old]);

    // The same database, with the prune run right after the reader's head query returns: the
    // interleaving a busy pruner produces, made deterministic.
    let pruned = false;
    const racing = new Proxy(db.pool, {
      get(target, prop, receiver) {
        if (prop !== 'query') return Reflect.get(target, prop, receiver);
        return async (...args: Parameters<typeof target.query>) => {
          const result = await (target.query as (...a: unknown[]) => Promise<unknown>)(...args);
          if (!pruned && String(args[0]).includes('FROM sync_scopes')) {
            pruned = true;
            while ((await pruneEvents(target, new Date(Date.now() - 30 * 86_400_000))) > 0);
          }
          return result;
        };
      },
    });
    const raced = createDeltaReader({ pool: racing });
    // The head said nothing was pruned; the page now starts at 3. Handing out [3] would skip 1
    // and 2 for good, so the reader must answer reset_required instead.
    await expect(raced.delta(scope, 0)).rejects.toMatchObject({ code: 'reset_required' });
    expect(pruned).toBe(true);
    // Afterwards the boundary is visible up front, and the retained tail is served as usual.
    await expect(reader.delta(scope, 1)).rejects.toMatchObject({ code: 'reset_required' });
    expect((await reader.delta(scope, 2)).events.map((e) => e.id)).toEqual([3]);
  });

  it('reads many heads in one call, 0 for unknown scopes', async () => {
    const heads = await reader.heads([org, agent, 'team:none']);
    expect(heads).toEqual(
      new Map([
        [org, 3],
        [agent, 4],
        ['team:none', 0],
      ]),
    );
  });

  it('rejects nonsense cursors and limits given in-process', async () => {
    await expect(reader.delta(org, -1)).rejects.toMatchObject({ code: 'bad_request' });
    await expect(reader.delta(org, 1.5)).rejects.toMatchObject({ code: 'bad_request' });
    await expect(reader.delta(org, 0, 0)).rejects.toMatchObject({ code: 'bad_request' });
    await expect(reader.delta(org, 0, 10_001)).rejects.toMatchObject({ code: 'bad_request' });
  });
});
