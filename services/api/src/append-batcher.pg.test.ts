import type { WriteResult } from '@openagents/sync-protocol';
import { createLogger, type PoolClient } from '@openagents/sync-server-kit';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness } from '../test/api-harness';
import { createAppendBatcher } from './append-batcher';
import { COMMIT_PIPELINE_DEFAULTS, createCommitPipeline } from './group-commit';
import { createApiMetrics } from './metrics';
import { planAppend } from './mutation-plan';

/**
 * The append batcher over the real commit pipeline and sync_commit: the appends of many replies
 * that wait behind a transaction in flight commit as ONE member, each still answered with its own
 * length and event; one that no longer fits its offset fails alone.
 */
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ label: 'api_append_batcher' });
});
afterAll(async () => h?.close());

async function newMessage(): Promise<{ id: string; agentId: string }> {
  const agent = await h.createAgent();
  const res = await h.request('POST', '/api/messages', {
    agent_id: agent.id,
    role: 'assistant',
    content: '',
  });
  return { id: ((await res.json()) as WriteResult).data.id as string, agentId: agent.id };
}

const plan = (id: string, offset: number, text: string) =>
  planAppend('Message', id, { field: 'content', offset, text }, { key: null, method: 'POST', path: '/' });

async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10));
}

describe('append batcher over Postgres', () => {
  it.each([
    ['every piece fits', -1, [1, 6]],
    // The joined member fails on the stale piece as a whole; then each goes alone.
    ['one piece is stale', 4, [1, 6, 1, 1, 1, 1, 1, 1]],
  ])(
    'commits waiting appends of many replies as one member, each answered as if alone: %s',
    async (_, stale, expected) => {
      const registry = new Registry();
      const metrics = createApiMetrics(registry);
      const pipeline = createCommitPipeline(
        { pool: h.db.pool, bus: h.bus, log: createLogger({ name: 'test', level: 'silent' }), metrics },
        COMMIT_PIPELINE_DEFAULTS,
      );
      // What the batcher hands the pipeline, member by member (the pipeline underneath is the real one).
      const members: number[] = [];
      const commit = createAppendBatcher((member) => {
        members.push(member.mutations.length);
        return pipeline.commit(member);
      });
      const principal = { sub: 'agent-backend', scopes: ['*'], exp: Math.floor(Date.now() / 1000) + 600 };
      const held = await newMessage();
      const replies = await Promise.all(Array.from({ length: 6 }, newMessage));

      // A transaction in flight: the first append waits on its scope's head row, locked from here.
      const locker: PoolClient = await h.db.pool.connect();
      let first: Promise<unknown>;
      let rest: PromiseSettledResult<Awaited<ReturnType<typeof commit>>>[];
      try {
        await locker.query('BEGIN');
        await locker.query('SELECT 1 FROM sync_scopes WHERE scope = $1 FOR UPDATE', [
          `agent:${held.agentId}`,
        ]);
        first = commit({ principal, mutations: [plan(held.id, 0, 'held')] });
        await until(async () => {
          const { rows } = await h.db.pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          );
          return rows[0]!.n > 0;
        });
        // Meanwhile six replies commit a piece each (one at a stale offset, in the second case).
        const pending = replies.map((r, i) =>
          commit({ principal, mutations: [plan(r.id, i === stale ? 7 : 0, `piece ${i}`)] }),
        );
        await new Promise((r) => setImmediate(r));
        await locker.query('COMMIT');
        await first;
        rest = await Promise.allSettled(pending);
      } finally {
        locker.release();
      }

      const answers = rest.map((s) => (s.status === 'fulfilled' ? s.value[0]!.body : String(s.reason)));
      replies.forEach((r, i) => {
        if (i === stale) expect(answers[i]).toMatch(/offset/i);
        else expect(answers[i]).toMatchObject({ data: { id: r.id, length: `piece ${i}`.length }, syncId: 2 });
      });
      for (const [i, r] of replies.entries()) {
        const { rows } = await h.db.pool.query<{ content: string }>(
          'SELECT content FROM messages WHERE id = $1',
          [r.id],
        );
        expect(rows[0]!.content).toBe(i === stale ? '' : `piece ${i}`);
        const appends = (await h.events(`agent:${r.agentId}`)).filter((e) => e.action === 'append');
        expect(appends.map((e) => (e.data as { text: string }).text)).toEqual(
          i === stale ? [] : [`piece ${i}`],
        );
        const { rows: actors } = await h.db.pool.query<{ actor: string }>(
          `SELECT DISTINCT actor FROM sync_events WHERE scope = $1 AND action = 'append'`,
          [`agent:${r.agentId}`],
        );
        expect(actors.map((a) => a.actor)).toEqual(i === stale ? [] : ['agent-backend']);
      }
      // The six waiting appends went as ONE member (one subtransaction); one failing, each alone after.
      expect(members).toEqual(expected);
    },
    60_000,
  );
});
