import { randomUUID } from 'node:crypto';
import { WriteResult } from '@openagents/sync-protocol';
import {
  type Bus,
  type BusMessage,
  createLogger,
  createMemoryBus,
  createRegistry,
  type Principal,
} from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness } from '../test/api-harness';
import type { MutationOutcome } from './commit';
import { type AnswerAfter, COMMIT_PIPELINE_DEFAULTS, createCommitPipeline } from './group-commit';
import { createApiMetrics } from './metrics';
import { planCreate } from './mutation-plan';

/**
 * The commit pipeline frees a transaction's slot (and its scopes) once the statement has
 * committed and the group's publishes are handed to the bus, not once the bus acknowledged them:
 * the next group of the same scope commits while the previous publish is still in flight, and the
 * publishes of a scope still leave in commit order. Made deterministic with a bus whose publish
 * the test holds, and a pipeline of depth 1 (one transaction at a time).
 */
let h: ApiHarness;
const published: BusMessage[] = [];
let gate: Promise<void> | null = null;

beforeAll(async () => {
  const inner = createMemoryBus();
  const bus: Bus = {
    ...inner,
    async publish(message) {
      published.push(message);
      const held = gate;
      gate = null;
      if (held) await held;
      await inner.publish(message);
    },
  };
  h = await createApiHarness({ label: 'api_pipeline_publish', bus, config: { WRITE_PIPELINE_DEPTH: 1 } });
});
afterAll(async () => h?.close());

async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10));
}

describe('commit pipeline and the bus', () => {
  it('commits the next group of a scope while the previous publish is unacknowledged, publishing in order', async () => {
    const agent = await h.createAgent();
    const scope = `agent:${agent.id}`;
    let open!: () => void;
    gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const first = h.request('POST', '/api/messages', { agent_id: agent.id, role: 'user', content: 'a' });
    await until(() => published.some((m) => m.scope === scope));

    const second = h.request('POST', '/api/messages', { agent_id: agent.id, role: 'user', content: 'b' });
    // Committed with the first publish still held (with the slot kept until the publish was
    // acknowledged, this never happens and the test times out).
    await until(async () => (await h.events(scope)).length === 2);
    const secondAnswer = await second;
    expect(secondAnswer.status).toBe(201);
    expect(WriteResult.parse(await secondAnswer.json()).syncId).toBe(2);

    open();
    const firstAnswer = await first;
    expect(firstAnswer.status).toBe(201);
    expect(WriteResult.parse(await firstAnswer.json()).syncId).toBe(1);
    expect(published.filter((m) => m.scope === scope).map((m) => m.events.map((e) => e.id))).toEqual([
      [1],
      [2],
    ]);
  });

  it('answers a write at commit with WRITE_ANSWER_AFTER=commit, while its publish is unacknowledged', async () => {
    const agent = await h.createAgent();
    const scope = `agent:${agent.id}`;
    let open!: () => void;
    gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    try {
      // With the answer waiting for the publish (the default), this await never returns.
      const res = await h.withConfig({ WRITE_PIPELINE_DEPTH: 1, WRITE_ANSWER_AFTER: 'commit' })(
        'POST',
        '/api/messages',
        { agent_id: agent.id, role: 'user', content: 'early' },
      );
      expect(res.status).toBe(201);
      expect(WriteResult.parse(await res.json()).syncId).toBe(1);
      // Its publish was issued (in commit order, before the answer) and is still held.
      expect(published.filter((m) => m.scope === scope).map((m) => m.events.map((e) => e.id))).toEqual([[1]]);
      expect(gate).toBeNull();
    } finally {
      open();
    }
  });

  it('by default answers a write only once the bus acknowledged its publish', async () => {
    const agent = await h.createAgent();
    const scope = `agent:${agent.id}`;
    let open!: () => void;
    gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let answered = false;
    const pending = h.request('POST', '/api/messages', { agent_id: agent.id, role: 'user', content: 'x' });
    void pending.then(() => {
      answered = true;
    });
    await until(() => published.some((m) => m.scope === scope));
    await until(async () => (await h.events(scope)).length === 1);
    expect(answered).toBe(false);
    open();
    expect((await pending).status).toBe(201);
  });
});

describe('commit pipeline back-pressure', () => {
  it('answers at commit only while at most maxUnpublished commits wait for the bus', async () => {
    const held: { scope: string; release: () => void }[] = [];
    const inner = createMemoryBus();
    const bus: Bus = {
      ...inner,
      publish: (message) =>
        new Promise<void>((resolve) => {
          held.push({ scope: message.scope, release: resolve });
        }),
    };
    const pipeline = createCommitPipeline(
      {
        pool: h.db.pool,
        bus,
        log: createLogger({ name: 'pipeline-test', level: 'silent' }),
        metrics: createApiMetrics(createRegistry('pipeline-test', { defaultMetrics: false })),
      },
      { ...COMMIT_PIPELINE_DEFAULTS, depth: 1, maxUnpublished: 1 },
    );
    const principal: Principal = { sub: 'pipeline-test', scopes: ['*'], exp: Date.now() / 1000 + 3600 };
    const agents = [await h.createAgent(), await h.createAgent(), await h.createAgent()];
    const write = (agentId: string, answerAfter: AnswerAfter) => {
      const answer = { done: false, outcomes: undefined as Promise<MutationOutcome[]> | undefined };
      const plan = planCreate(
        'Message',
        { id: randomUUID(), agent_id: agentId, role: 'user', content: 'x' },
        { key: null, method: 'POST', path: '/api/messages' },
      );
      answer.outcomes = pipeline.commit({ principal, mutations: [plan] }, undefined, answerAfter);
      void answer.outcomes.then(() => {
        answer.done = true;
      });
      return answer;
    };

    // One commit waits for the bus: still within the bound, answered at commit.
    const first = write(agents[0]!.id, 'commit');
    expect((await first.outcomes!)[0]!.status).toBe(201);
    expect(held.map((p) => p.scope)).toEqual([`agent:${agents[0]!.id}`]);

    // A second would make two: it commits, its publish is issued, but its answer waits for it.
    const second = write(agents[1]!.id, 'commit');
    await until(() => held.length === 2);
    await until(async () => (await h.events(`agent:${agents[1]!.id}`)).length === 1);
    // The first publish settling does not answer it either: it waits for its own.
    held[0]!.release();
    await first.outcomes;
    await h.events(`agent:${agents[1]!.id}`);
    expect(second.done).toBe(false);
    held[1]!.release();
    expect((await second.outcomes!)[0]!.status).toBe(201);

    // Once the bus caught up, answers come at commit again.
    const third = write(agents[2]!.id, 'commit');
    expect((await third.outcomes!)[0]!.status).toBe(201);
    expect(held).toHaveLength(3);
    held[2]!.release();
  });
});

describe('commit pipeline after COMMIT', () => {
  it('answers a committed write with its outcome even when its onCommitted callback throws', async () => {
    const pipeline = createCommitPipeline(
      {
        pool: h.db.pool,
        bus: createMemoryBus(),
        log: createLogger({ name: 'pipeline-test', level: 'silent' }),
        metrics: createApiMetrics(createRegistry('pipeline-test', { defaultMetrics: false })),
      },
      COMMIT_PIPELINE_DEFAULTS,
    );
    const principal: Principal = { sub: 'pipeline-test', scopes: ['*'], exp: Date.now() / 1000 + 3600 };
    const agent = await h.createAgent();
    const plan = planCreate(
      'Message',
      { id: randomUUID(), agent_id: agent.id, role: 'user', content: 'x' },
      { key: null, method: 'POST', path: '/api/messages' },
    );
    const outcomes = await pipeline.commit({ principal, mutations: [plan] }, () => {
      throw new Error('callback bug');
    });
    expect(outcomes.map((o) => o.status)).toEqual([201]);
    expect(await h.events(`agent:${agent.id}`)).toHaveLength(1);
  });
});
