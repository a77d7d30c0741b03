import { randomUUID } from 'node:crypto';
import { appendEvents, inTransaction, type Pool, readHeads } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiWriter,
  planScopes,
  readMetric,
  restartService,
  type ScopePlan,
  type SyncStack,
  SyncWorkload,
  seededRandom,
  startSyncStack,
  verifyGuarantee,
  waitUntil,
} from './support/stack';
import { SyncProbe, waitForHeads } from './support/sync-client-probe';
import { tokenFor } from './support/tokens';

// The guarantee (contract section 7) while things break: a gateway dies mid-stream, Redis
// restarts, the bus loses publishes, a client stops reading. After each fault the stack must
// settle with every client's stream equal to the log — zero lost, zero duplicated, zero out of
// order — and every client's state equal to the tables. The phases share one stack and run in
// order; each counts what its fault did so the test shows the fault really happened.

const SEED = Number(process.env.STACK_SEED ?? Date.now() % 1_000_000);
const PROBES = 240;
const SLOW_LIMIT_BYTES = 64 * 1024;

describe('chaos: the guarantee under faults', () => {
  let stack: SyncStack;
  let plan: ScopePlan;
  let writer: ApiWriter;
  let workload: SyncWorkload;
  const probes: SyncProbe[] = [];

  /** Runs random writes from both workers until the returned stop function is awaited. */
  const writeInBackground = () => {
    let stopped = false;
    const running = workload.run({ concurrency: 6, stop: () => stopped });
    running.catch(() => {});
    return async () => {
      stopped = true;
      await running;
    };
  };

  /** Adds the service output to any failure, so a broken phase can be diagnosed from CI logs. */
  const withTails = async (work: () => Promise<void>) => {
    try {
      await work();
    } catch (err) {
      throw new Error(`${(err as Error).message}\nseed ${SEED}\n${stack.tails()}`, { cause: err });
    }
  };

  beforeAll(async () => {
    stack = await startSyncStack({
      label: 'chaos',
      gatewayEnv: {
        HEAD_CHECK_INTERVAL_MS: '500',
        MAX_BACKPRESSURE_BYTES: String(SLOW_LIMIT_BYTES),
        DRAIN_WINDOW_MS: '1000',
      },
    });
    plan = planScopes(5, 30);
    writer = new ApiWriter(stack.apiUrls, await tokenFor(['*'], 'chaos-writer'));
    workload = new SyncWorkload(writer, plan, { seed: SEED, workers: stack.apiUrls.length });
    const random = seededRandom(SEED);
    for (let i = 0; i < PROBES; i++) {
      const scopes = new Set([plan.scopes[i % plan.scopes.length]!]);
      while (scopes.size < 1 + (i % 3)) scopes.add(plan.scopes[Math.floor(random() * plan.scopes.length)]!);
      probes.push(
        new SyncProbe({
          urls: stack.gatewayUrls,
          token: await tokenFor([...scopes], `chaos-${i}`),
          scopes: [...scopes],
          startAt: i,
          label: `c${i}`,
        }),
      );
    }
    await Promise.all(probes.map((p) => p.whenLive(30_000)));
    await workload.createAgents();
  }, 90_000);

  afterAll(async () => {
    await Promise.all(probes.map((p) => p.stop()));
    await stack?.stop();
  }, 30_000);

  it('a gateway killed with SIGKILL mid-stream: its clients resume on the other one', async () => {
    await withTails(async () => {
      const stop = writeInBackground();
      const start = workload.counts.messages;
      await waitUntil(() => workload.counts.messages >= start + 100, 20_000, '100 messages written');
      const victims = probes.filter((p) => p.connected && p.url === stack.gatewayUrls[0]);
      expect(victims.length).toBeGreaterThan(50);
      await stack.gateways[0]!.kill('SIGKILL');
      await Promise.all(victims.map((p) => p.whenLive(20_000)));
      const moved = workload.counts.messages;
      await waitUntil(() => workload.counts.messages >= moved + 100, 20_000, '100 more messages written');
      stack.gateways[0] = await restartService(stack.gateways[0]!);
      await stop();
      await verifyGuarantee(stack, probes);
      for (const p of victims) {
        expect(p.closes.at(-1)?.code).toBe(1006);
        expect(p.url).toBe(stack.gatewayUrls[1]);
      }
      console.info(`gateway kill: ${victims.length} clients cut off (1006) resumed on the other gateway`);
    });
  }, 60_000);

  it('Redis restarted while writes flow', async () => {
    await withTails(async () => {
      const stop = writeInBackground();
      const start = workload.counts.messages;
      await waitUntil(() => workload.counts.messages >= start + 50, 20_000, '50 messages written');
      await stack.redis.restart(500);
      const back = workload.counts.messages;
      await waitUntil(() => workload.counts.messages >= back + 100, 20_000, '100 messages after the restart');
      await stop();
      await verifyGuarantee(stack, probes);
      const reconnects = await Promise.all(
        stack.gateways.map((g) => readMetric(g, 'sync_gateway_bus_reconnects_total')),
      );
      expect(reconnects.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
      const closed = probes.reduce((n, p) => n + p.closes.length, 0);
      console.info(
        `redis restart: bus reconnects per gateway ${reconnects.join('/')}, write retries so far ${writer.retries}, client closes so far ${closed}`,
      );
    });
  }, 60_000);

  it('lost publishes: events committed without a publish reach connected clients without a reconnect', async () => {
    await withTails(async () => {
      const headChecks = () =>
        Promise.all(
          stack.gateways.map((g) => readMetric(g, 'sync_gateway_gap_fills_total', { reason: 'head_check' })),
        ).then((n) => n.reduce((a, b) => a + b, 0));
      const headChecksBefore = await headChecks();
      const before = new Map(probes.map((p) => [p, p.opens + p.failedAttempts]));
      const connected = probes.filter((p) => p.live);
      const random = seededRandom(SEED + 1);
      let commits = 0;
      const deadline = Date.now() + 2000;
      while (Date.now() < deadline) {
        const agent = plan.agents[Math.floor(random() * plan.agents.length)]!;
        if (random() < 0.8) await commitMessageWithoutPublish(stack.db.pool, agent.id);
        else
          await commitAgentStatusWithoutPublish(stack.db.pool, agent.id, random() < 0.5 ? 'running' : 'idle');
        commits++;
      }
      expect(commits).toBeGreaterThan(20);
      await verifyGuarantee(stack, probes, { timeoutMs: 15_000 });
      const reconnected = connected.filter((p) => p.opens + p.failedAttempts !== before.get(p));
      expect(reconnected.map((p) => p.describe())).toEqual([]);
      // Only a head check could have found these events: nothing was published, nobody reconnected.
      const fills = (await headChecks()) - headChecksBefore;
      expect(fills).toBeGreaterThan(0);
      console.info(
        `lost publishes: ${commits} unpublished commits reached ${connected.length} connected clients through ${fills} head-check fills, 0 reconnects`,
      );
    });
  }, 60_000);

  it('a client that stops reading is closed with 1013, resumes, and misses nothing; others are unaffected', async () => {
    await withTails(async () => {
      const agentId = randomUUID();
      const orgId = plan.orgIds[0]!;
      await writer.create('agents', { id: agentId, org_id: orgId, name: 'slow consumer target' });
      const scope = `agent:${agentId}`;
      const token = await tokenFor([scope], 'slow');
      const make = (label: string, startAt: number) =>
        new SyncProbe({ urls: stack.gatewayUrls, token, scopes: [scope], startAt, label });
      const slow = make('slow', 0);
      const peers = [make('peer-g0', 0), make('peer-g1', 1)];
      await Promise.all([slow, ...peers].map((p) => p.whenLive()));
      const closesBefore = new Map(probes.map((p) => [p, p.closes.length]));
      const gateway = stack.gateways[0]!;
      const slowClosesBefore = await readMetric(gateway, 'sync_gateway_slow_consumer_closes_total');

      slow.pause();
      // Large messages until the gateway gives up on the paused client (the kernel's socket
      // buffers absorb the first few MB), then a few more it must catch up on after resuming.
      const burstWorkload = new SyncWorkload(
        writer,
        { ...plan, agents: [{ id: agentId, org_id: orgId }] },
        {
          seed: SEED + 2,
          workers: stack.apiUrls.length,
        },
      );
      const slowCloses = () => readMetric(gateway, 'sync_gateway_slow_consumer_closes_total');
      let written = 0;
      while ((await slowCloses()) === slowClosesBefore) {
        if (written >= 600) throw new Error(`slow consumer still open after ${written} messages of 32 KiB`);
        await burstWorkload.burst(agentId, 10, 32 * 1024, 5);
        written += 10;
      }
      await burstWorkload.burst(agentId, 10, 32 * 1024, 5);
      written += 10;
      const head = await readHeads(stack.db.pool, [scope]);
      expect(head.get(scope)).toBe(written);
      await waitForHeads(peers, head, 20_000);
      slow.resume();
      await waitForHeads([slow], head, 20_000);

      expect(slow.closes.map((c) => c.code)).toContain(1013);
      for (const p of peers) expect(p.closes).toEqual([]);
      const disturbed = probes.filter((p) => p.closes.length !== closesBefore.get(p));
      expect(disturbed.map((p) => p.describe())).toEqual([]);
      await verifyGuarantee(stack, [...probes, slow, ...peers]);
      console.info(
        `slow consumer: closed ${slow.closes.map((c) => c.code).join(',')} after ${written} messages of 32 KiB, resumed at ${slow.scopes.get(scope)?.cursor}`,
      );
      await Promise.all([slow, ...peers].map((p) => p.stop()));
    });
  }, 60_000);
});

/**
 * A write exactly as a worker whose publish failed leaves it behind: the record and its event
 * committed in one transaction, nothing on the bus.
 */
async function commitMessageWithoutPublish(pool: Pool, agentId: string): Promise<void> {
  await inTransaction(pool, async (client) => {
    const { rows } = await client.query(
      `INSERT INTO messages (id, agent_id, role, content) VALUES ($1, $2, 'assistant', $3) RETURNING *`,
      [randomUUID(), agentId, `unpublished ${randomUUID()}`],
    );
    const record = wireRecord(rows[0]);
    await appendEvents(client, `agent:${agentId}`, [
      { model: 'Message', model_id: String(record.id), action: 'insert', data: record, mutationId: null },
    ]);
  });
}

async function commitAgentStatusWithoutPublish(pool: Pool, agentId: string, status: string): Promise<void> {
  await inTransaction(pool, async (client) => {
    const { rows } = await client.query(
      'UPDATE agents SET status = $2, updated_at = now() WHERE id = $1 RETURNING org_id, status, updated_at',
      [agentId, status],
    );
    const row = wireRecord(rows[0]);
    await appendEvents(client, `org:${row.org_id}`, [
      {
        model: 'Agent',
        model_id: agentId,
        action: 'update',
        data: { status: row.status, updated_at: row.updated_at },
        mutationId: null,
      },
    ]);
  });
}

function wireRecord(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(row).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v]),
  );
}
