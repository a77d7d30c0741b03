import { readHeads } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiWriter,
  planScopes,
  readMetric,
  type SyncStack,
  SyncWorkload,
  startSyncStack,
  verifyGuarantee,
  waitUntil,
} from '../support/stack';
import { SyncProbe, waitForHeads } from '../support/sync-client-probe';
import { tokenFor } from '../support/tokens';

// Contract v1.1 §8 with real processes: Redis, which every gateway and worker shares, goes away
// while writes flow. Before v1.1 every gateway's /readyz turned 503 and the load balancer refused
// every socket, although each gateway can still deliver from the log through its head checks.
// Expected now: every process stays ready (200) the whole outage, reports the outage in
// sync_dependency_up{dependency="redis"} (what the SyncDependencyDown alert reads), connected
// clients keep receiving what is committed meanwhile, a client can connect during the outage, and
// when Redis returns the gateways re-subscribe and the log ends complete (no gap, no duplicate).

const HEAD_CHECK_INTERVAL_MS = 300;

describe('a Redis outage under load', () => {
  let stack: SyncStack | undefined;
  const probes: SyncProbe[] = [];

  beforeAll(async () => {
    stack = await startSyncStack({
      label: 'ops_redis_outage',
      apiWorkers: 1,
      gateways: 2,
      gatewayEnv: { HEAD_CHECK_INTERVAL_MS: String(HEAD_CHECK_INTERVAL_MS) },
    });
  }, 90_000);

  afterAll(async () => {
    await Promise.all(probes.map((p) => p.stop()));
    await stack?.stop();
  }, 30_000);

  it('keeps every gateway ready and delivering through head checks, then recovers', async () => {
    const s = stack!;
    try {
      const plan = planScopes(2, 4);
      for (let i = 0; i < 12; i++) {
        const scopes = [...new Set([plan.scopes[i % plan.scopes.length]!, plan.scopes[(i + 3) % 6]!])];
        probes.push(
          new SyncProbe({
            urls: s.gatewayUrls,
            token: await tokenFor(scopes, `client-${i}`),
            scopes,
            startAt: i,
            label: `c${i}`,
          }),
        );
      }
      await Promise.all(probes.map((p) => p.whenLive(30_000)));
      const writer = new ApiWriter(s.apiUrls, await tokenFor(['*'], 'writer'));
      const workload = new SyncWorkload(writer, plan, { seed: 23, workers: 1 });
      await workload.createAgents(2);
      let writing = true;
      const writes = workload.run({ concurrency: 2, stop: () => !writing });
      writes.catch(() => {}); // awaited below

      // Poll every process's /readyz through the whole outage: any answer but 200 is recorded.
      const notReady: string[] = [];
      let polling = true;
      const poll = (async () => {
        while (polling) {
          for (const svc of s.services()) {
            const status = await fetch(`${svc.url}/readyz`, { signal: AbortSignal.timeout(2_000) })
              .then((r) => r.status)
              .catch((err: Error) => err.message);
            if (status !== 200) notReady.push(`${svc.name}:${svc.port} → ${status}`);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      })();

      // Writes are flowing before Redis goes.
      const flowing = workload.counts.messages;
      await waitUntil(() => workload.counts.messages >= flowing + 5, 20_000, 'writes flow before the outage');
      await s.redis.stop();
      await waitUntil(
        async () =>
          (
            await Promise.all(
              [...s.gateways, ...s.apis].map((g) =>
                readMetric(g, 'sync_dependency_up', { dependency: 'redis' }),
              ),
            )
          ).every((v) => v === 0),
        10_000,
        'every gateway and worker reports redis down in sync_dependency_up',
      );
      // Committed while Redis is down: the publishes are lost, the head checks deliver them.
      const before = workload.counts.messages;
      await waitUntil(
        () => workload.counts.messages >= before + 20,
        20_000,
        '20 more writes during the outage',
      );
      const scopes = [...new Set(probes.flatMap((p) => [...p.scopes.keys()]))];
      const outageHeads = await readHeads(s.db.pool, scopes);
      await waitForHeads(probes, outageHeads, 15_000);
      // A client arriving during the outage is admitted (the gateways are still in rotation).
      const late = new SyncProbe({
        urls: s.gatewayUrls,
        token: await tokenFor([plan.scopes[0]!], 'late'),
        scopes: [plan.scopes[0]!],
        label: 'late',
      });
      probes.push(late);
      await late.whenLive(15_000);
      const gapFillsDuringOutage = (
        await Promise.all(
          s.gateways.map((g) => readMetric(g, 'sync_gateway_gap_fills_total', { reason: 'head_check' })),
        )
      ).reduce((a, b) => a + b, 0);

      await s.redis.restart(0);
      await waitUntil(
        async () =>
          (
            await Promise.all(
              [...s.gateways, ...s.apis].map((g) =>
                readMetric(g, 'sync_dependency_up', { dependency: 'redis' }),
              ),
            )
          ).every((v) => v === 1),
        20_000,
        'every gateway and worker reports redis up again',
      );
      // And they keep flowing once it is back.
      const recovered = workload.counts.messages;
      await waitUntil(
        () => workload.counts.messages >= recovered + 5,
        20_000,
        'writes flow after the outage',
      );
      writing = false;
      await writes;
      polling = false;
      await poll;
      await verifyGuarantee(s, probes, { timeoutMs: 30_000 });

      expect(notReady, 'no process left the load balancer because of Redis').toEqual([]);
      expect(gapFillsDuringOutage, 'events reached clients through head checks').toBeGreaterThan(0);
      for (const g of s.gateways) {
        expect(await readMetric(g, 'sync_gateway_bus_reconnects_total')).toBeGreaterThanOrEqual(1);
        expect(await readMetric(g, 'sync_ready')).toBe(1);
      }
      for (const p of probes) expect(p.violations, p.describe()).toEqual([]);
      console.info(
        `redis outage: ${workload.counts.messages - before}+ writes during the outage, ` +
          `${gapFillsDuringOutage} head-check fills, every /readyz 200 throughout`,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${s.tails(20)}`);
    }
  }, 120_000);
});
