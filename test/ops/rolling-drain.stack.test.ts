import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiWriter,
  planScopes,
  restartService,
  type SyncStack,
  SyncWorkload,
  startSyncStack,
  verifyGuarantee,
  waitUntil,
} from '../support/stack';
import { type CloseRecord, SyncProbe } from '../support/sync-client-probe';
import { tokenFor } from '../support/tokens';
import { type ExternalProcess, startNginx } from './processes';

// A rolling deploy of the gateways, rehearsed with real processes: 2 gateways, 1 mutation worker and
// the delta service; clients spread over both gateways (some directly, some only through the
// shipped nginx config, as real clients would), writes flowing all the time. Each gateway in
// turn gets SIGTERM (what Kubernetes and `docker compose` send) and a replacement starts on the same
// port once it has exited. The clients are the test probe: on any close they reconnect to the next
// gateway in their list with jittered backoff and resume every scope from their cursor.
//
// Expected: every client ends with the complete log of its scopes (no gap, no duplicate, records
// equal to the tables), and each drained gateway's 1012 closes are spread over DRAIN_WINDOW_MS
// instead of landing at once.

const DRAIN_WINDOW_MS = 2_000;
/** Clients that know both gateway addresses and rotate between them. */
const DIRECT_CLIENTS = 30;
/** Clients that only know the load balancer (the shipped nginx.conf), as real clients do. */
const LB_CLIENTS = 20;

describe('rolling restart of the gateways', () => {
  let stack: SyncStack | undefined;
  let lb: ExternalProcess | undefined;
  const probes: SyncProbe[] = [];

  beforeAll(async () => {
    stack = await startSyncStack({
      label: 'ops_drain',
      apiWorkers: 1,
      gateways: 2,
      gatewayEnv: { DRAIN_WINDOW_MS: String(DRAIN_WINDOW_MS), HEAD_CHECK_INTERVAL_MS: '500' },
    });
    lb = await startNginx({
      api: stack.apis.map((a) => a.port),
      delta: [stack.delta.port],
      gateway: stack.gateways.map((g) => g.port),
    });
  }, 90_000);

  afterAll(async () => {
    await Promise.all(probes.map((p) => p.stop()));
    await lb?.stop();
    await stack?.stop();
  }, 30_000);

  it('drains each gateway over its window while clients move over with nothing lost or repeated', async () => {
    const s = stack!;
    try {
      const plan = planScopes(3, 6);
      const lbUrl = `${lb!.url.replace('http', 'ws')}/sync`;
      for (let i = 0; i < DIRECT_CLIENTS + LB_CLIENTS; i++) {
        const scopes = [plan.scopes[i % plan.scopes.length]!, plan.scopes[(i * 5 + 1) % plan.scopes.length]!];
        const unique = [...new Set(scopes)];
        const direct = i < DIRECT_CLIENTS;
        probes.push(
          new SyncProbe({
            urls: direct ? s.gatewayUrls : [lbUrl],
            token: await tokenFor(unique, `client-${i}`),
            scopes: unique,
            startAt: i,
            label: direct ? `c${i}` : `lb${i}`,
          }),
        );
      }
      const direct = probes.slice(0, DIRECT_CLIENTS);
      const lbOrigin = new URL(lbUrl).origin;
      await Promise.all(probes.map((p) => p.whenLive(30_000)));

      const writer = new ApiWriter(s.apiUrls, await tokenFor(['*'], 'writer'));
      const workload = new SyncWorkload(writer, plan, { seed: 11, workers: 1 });
      await workload.createAgents(2);
      let writing = true;
      const writes = workload.run({ concurrency: 2, stop: () => !writing });
      writes.catch(() => {}); // awaited below; keeps an early failure from going unhandled

      const drains: {
        gateway: number;
        onIt: number;
        closes: CloseRecord[];
        lbCloses: CloseRecord[];
        exitCode: number | null;
      }[] = [];
      for (const index of [0, 1]) {
        // Let writes flow on a settled cluster before each drain.
        const flowing = workload.counts.messages;
        await waitUntil(
          () => workload.counts.messages >= flowing + 5,
          20_000,
          'writes flow before the drain',
        );
        const url = s.gatewayUrls[index]!;
        const onIt = direct.filter((p) => p.url === url).length;
        const since = Date.now();
        const old = s.gateways[index]!;
        const exitCode = await old.kill('SIGTERM');
        const exitedAt = Date.now();
        const fresh = await restartService(old, { readyTimeoutMs: 30_000 });
        s.gateways[index] = fresh;
        const origin = new URL(url).origin; // a close record names the gateway by origin
        const drained = (p: SyncProbe, from: string) =>
          p.closes.filter((c) => c.url === from && c.at >= since && c.at <= exitedAt && c.code === 1012);
        const closes = direct.flatMap((p) => drained(p, origin));
        // Clients behind nginx see the LB's origin; during this drain only this gateway sends 1012.
        const lbCloses = probes.slice(DIRECT_CLIENTS).flatMap((p) => drained(p, lbOrigin));
        drains.push({ gateway: index, onIt, closes, lbCloses, exitCode });
        // Everyone is live again (on whichever gateway is up) before the next one goes.
        await waitUntil(
          () => probes.every((p) => [...p.scopes.values()].every((sc) => sc.live)),
          20_000,
          'clients live',
        );
      }

      writing = false;
      await writes;
      const heads = await verifyGuarantee(s, probes, { timeoutMs: 30_000 });

      for (const drain of drains) {
        expect(drain.exitCode, `gateway ${drain.gateway} exits cleanly after draining`).toBe(0);
        expect(drain.onIt, `gateway ${drain.gateway} had clients when it drained`).toBeGreaterThan(5);
        expect(drain.closes.length, `every client of gateway ${drain.gateway} got 1012`).toBe(drain.onIt);
        const times = [...drain.closes, ...drain.lbCloses].map((c) => c.at);
        const spread = Math.max(...times) - Math.min(...times);
        expect(
          spread,
          `1012 closes of gateway ${drain.gateway} spread over the window`,
        ).toBeGreaterThanOrEqual(DRAIN_WINDOW_MS * 0.5);
      }
      // Both gateways drained, so every client moved at least once; none saw a violation.
      for (const p of probes) {
        expect(
          p.closes.some((c) => c.code === 1012),
          p.label,
        ).toBe(true);
        expect(p.violations, p.describe()).toEqual([]);
      }
      const delivered = probes.reduce(
        (n, p) => n + [...p.scopes.values()].reduce((m, sc) => m + sc.received.length, 0),
        0,
      );
      expect(delivered).toBeGreaterThan(0);
      expect([...heads.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(20);
      // Clients behind the load balancer went through both drains too (checked above) and came back
      // through nginx each time.
      expect(drains.reduce((n, d) => n + d.lbCloses.length, 0)).toBeGreaterThanOrEqual(LB_CLIENTS);
      const spreads = drains.map((d) => {
        const t = [...d.closes, ...d.lbCloses].map((c) => c.at);
        return `${d.onIt} direct + ${d.lbCloses.length} via nginx over ${Math.max(...t) - Math.min(...t)} ms`;
      });
      console.info(
        `rolling drain (window ${DRAIN_WINDOW_MS} ms): ${spreads.join('; ')}; ${delivered} events delivered`,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${s.tails(20)}`);
    }
  }, 120_000);
});
