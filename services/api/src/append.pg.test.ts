import { ErrorBody, WriteResult } from '@openagents/sync-protocol';
import type { PoolClient } from '@openagents/sync-server-kit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenFor } from '../../../test/support/tokens';
import { type ApiHarness, createApiHarness } from '../test/api-harness';

/** Contract v1.1 append: offsets in UTF-16 code units, exact retries free, pieces merged per group. */
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ label: 'api_append' });
});
afterAll(async () => h?.close());

async function newMessage(content = ''): Promise<{ id: string; agentId: string }> {
  const agent = await h.createAgent();
  const res = await h.request('POST', '/api/messages', { agent_id: agent.id, role: 'assistant', content });
  return { id: ((await res.json()) as WriteResult).data.id as string, agentId: agent.id };
}

const append = (id: string, offset: number, text: string, headers: Record<string, string> = {}) =>
  h.request('POST', `/api/messages/${id}/append`, { field: 'content', offset, text }, { headers });

async function contentOf(id: string): Promise<string> {
  const { rows } = await h.db.pool.query<{ content: string }>('SELECT content FROM messages WHERE id = $1', [
    id,
  ]);
  return rows[0]!.content;
}

async function appendEvents(agentId: string): Promise<Record<string, unknown>[]> {
  return (await h.events(`agent:${agentId}`)).filter((e) => e.action === 'append');
}

describe('append', () => {
  it('adds pieces at the current length and logs only the piece', async () => {
    const m = await newMessage();
    const first = await append(m.id, 0, 'Hel');
    expect(first.status).toBe(200);
    const a = WriteResult.parse(await first.json());
    expect(a).toMatchObject({ data: { id: m.id, length: 3 }, scope: `agent:${m.agentId}`, syncId: 2 });
    const b = WriteResult.parse(await (await append(m.id, 3, 'lo')).json());
    expect(b).toMatchObject({ data: { length: 5 }, syncId: 3 });
    expect(await contentOf(m.id)).toBe('Hello');
    const events = await appendEvents(m.agentId);
    expect(events.map((e) => e.data)).toEqual([
      { field: 'content', offset: 0, text: 'Hel', updated_at: expect.any(String) },
      { field: 'content', offset: 3, text: 'lo', updated_at: expect.any(String) },
    ]);
  });

  it('answers an exact retry 200 without writing, and any other offset 409 with the length', async () => {
    const m = await newMessage('ab');
    await append(m.id, 2, 'cd');
    const before = await h.counts();
    const retry = await append(m.id, 2, 'cd');
    expect(retry.status).toBe(200);
    expect(WriteResult.parse(await retry.json())).toMatchObject({ data: { length: 4 }, syncId: 2 });
    expect(await h.counts()).toEqual(before);
    for (const [offset, text] of [
      [2, 'cx'],
      [1, 'bx'],
      [5, 'e'],
      [3, 'x'],
      [3, 'de'],
    ] as const) {
      const res = await append(m.id, offset, text);
      expect(res.status, `${offset} ${text}`).toBe(409);
      const error = ErrorBody.parse(await res.json()).error;
      expect(error.code).toBe('offset_mismatch');
      expect(error.details).toMatchObject({ length: 4 });
    }
    expect(await h.counts()).toEqual(before);
    expect(await contentOf(m.id)).toBe('abcd');
  });

  it('counts UTF-16 code units: emoji take two, combining marks one each, never half a pair', async () => {
    const m = await newMessage('x');
    const emoji = '😀';
    expect((await (await append(m.id, 1, emoji)).json()) as WriteResult).toMatchObject({
      data: { length: 3 },
    });
    expect((await append(m.id, 2, 'y')).status).toBe(409);
    expect((await append(m.id, 1, emoji)).status).toBe(200);
    const combining = 'e\u0301';
    expect((await (await append(m.id, 3, combining)).json()) as WriteResult).toMatchObject({
      data: { length: 5 },
    });
    expect((await append(m.id, 4, '\u0301')).status).toBe(200);
    expect(await contentOf(m.id)).toBe(`x${emoji}${combining}`);
  });

  it('takes empty pieces as no-ops at a valid offset and refuses them elsewhere', async () => {
    const m = await newMessage('abc');
    const before = await h.counts();
    for (const offset of [0, 2, 3]) expect((await append(m.id, offset, '')).status).toBe(200);
    expect((await append(m.id, 4, '')).status).toBe(409);
    expect(await h.counts()).toEqual(before);
  });

  it('refuses fields and models without append, unknown records and foreign scopes', async () => {
    const m = await newMessage();
    const wrongField = await h.request('POST', `/api/messages/${m.id}/append`, {
      field: 'role',
      offset: 0,
      text: 'x',
    });
    expect(wrongField.status).toBe(400);
    expect(ErrorBody.parse(await wrongField.json()).error.details).toEqual([
      { path: 'field', message: 'must be one of: content' },
    ]);
    const agent = await h.request('POST', `/api/agents/${m.agentId}/append`, {
      field: 'name',
      offset: 0,
      text: 'x',
    });
    expect(agent.status).toBe(400);
    expect(
      (
        await h.request('POST', `/api/messages/${m.agentId}/append`, {
          field: 'content',
          offset: 0,
          text: 'x',
        })
      ).status,
    ).toBe(404);
    const stranger = await tokenFor(['agent:00000000-0000-4000-8000-000000000000']);
    const forbidden = await h.request(
      'POST',
      `/api/messages/${m.id}/append`,
      { field: 'content', offset: 0, text: 'x' },
      { token: stranger },
    );
    expect(forbidden.status).toBe(403);
    expect(await contentOf(m.id)).toBe('');
  });

  it('merges consecutive pieces of one record committed together into one event', async () => {
    const m = await newMessage();
    const res = await h.request('POST', '/api/mutations', {
      mutations: ['a', 'b', 'c'].map((text, i) => ({
        model: 'Message',
        action: 'append',
        id: m.id,
        data: { field: 'content', offset: i, text },
      })),
    });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: WriteResult[] };
    expect(results.map((r) => [r.data.length, r.syncId])).toEqual([
      [1, 2],
      [2, 2],
      [3, 2],
    ]);
    expect((await appendEvents(m.agentId)).map((e) => e.data)).toEqual([
      { field: 'content', offset: 0, text: 'abc', updated_at: expect.any(String) },
    ]);

    // Across requests: appends queued behind a held scope commit as one group, one event.
    const locker: PoolClient = await h.db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM sync_scopes WHERE scope = $1 FOR UPDATE', [`agent:${m.agentId}`]);
      const held = append(m.id, 3, 'd');
      while (
        (
          await h.db.pool.query(
            `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
          )
        ).rowCount === 0
      ) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const queued = ['e', 'f', 'g'].map((text, i) => append(m.id, 4 + i, text));
      while ((await h.metric('sync_commit_queue_length')) !== 3) await new Promise((r) => setTimeout(r, 10));
      await locker.query('COMMIT');
      expect((await held).status).toBe(200);
      const answers = await Promise.all(queued.map(async (p) => WriteResult.parse(await (await p).json())));
      expect(new Set(answers.map((a) => a.syncId)).size).toBe(1);
    } finally {
      locker.release();
    }
    expect(await contentOf(m.id)).toBe('abcdefg');
    expect((await appendEvents(m.agentId)).map((e) => (e.data as { text: string }).text)).toEqual([
      'abc',
      'd',
      'efg',
    ]);
  });

  it('takes a merged piece back out of the event when its request fails later in the group', async () => {
    const m = await newMessage();
    await append(m.id, 0, 'a');
    const locker: PoolClient = await h.db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM sync_scopes WHERE scope = $1 FOR UPDATE', [`agent:${m.agentId}`]);
      const held = append(m.id, 1, 'b');
      while (
        (
          await h.db.pool.query(
            `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
          )
        ).rowCount === 0
      ) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const single = append(m.id, 2, 'c');
      const failing = h.request('POST', '/api/mutations', {
        mutations: [
          { model: 'Message', action: 'append', id: m.id, data: { field: 'content', offset: 3, text: 'X' } },
          { model: 'Message', action: 'update', id: m.agentId, data: { content: 'no such message' } },
        ],
      });
      const after = append(m.id, 3, 'd');
      while ((await h.metric('sync_commit_queue_length')) !== 3) await new Promise((r) => setTimeout(r, 10));
      await locker.query('COMMIT');
      expect([
        (await held).status,
        (await single).status,
        (await failing).status,
        (await after).status,
      ]).toEqual([200, 200, 404, 200]);
    } finally {
      locker.release();
    }
    expect(await contentOf(m.id)).toBe('abcd');
    expect((await appendEvents(m.agentId)).map((e) => e.data)).toEqual([
      expect.objectContaining({ offset: 0, text: 'a' }),
      expect.objectContaining({ offset: 1, text: 'b' }),
      expect.objectContaining({ offset: 2, text: 'cd' }),
    ]);
  });

  it('property: pieces with retries and duplicates give exactly the writer’s text', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ unit: 'grapheme', maxLength: 6 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        async (pieces, retries) => {
          const m = await newMessage();
          let text = '';
          const sent: [number, string][] = [];
          for (const piece of pieces) {
            const res = await append(m.id, text.length, piece);
            expect(res.status).toBe(200);
            sent.push([text.length, piece]);
            text += piece;
            for (const r of retries) {
              const [offset, again] = sent[r % sent.length]!;
              expect((await append(m.id, offset, again)).status).toBe(200);
            }
            expect(WriteResult.parse(await res.json()).data.length).toBe(text.length);
          }
          expect(await contentOf(m.id)).toBe(text);
          const events = await appendEvents(m.agentId);
          expect(events.map((e) => (e.data as { text: string }).text).join('')).toBe(text);
        },
      ),
      { numRuns: 15 },
    );
  });
});
