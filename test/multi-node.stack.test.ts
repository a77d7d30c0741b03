import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiWriter,
  planScopes,
  type SyncStack,
  SyncWorkload,
  seededRandom,
  startSyncStack,
  verifyGuarantee,
  waitUntil,
} from './support/stack';
import { SyncProbe } from './support/sync-client-probe';
import { tokenFor } from './support/tokens';

// The contract's guarantee (section 7) over real processes: 2 mutation workers, 1 delta service
// and 2 gateways on one Postgres and one Redis. Hundreds of clients follow overlapping scopes on
// both gateways while both workers write; some join mid-stream (bootstrap at L, then L+1...), some
// lose their connection and resume on the other gateway, some go away and come back with their
// stored cursor and records. At the end every stream must be the log, exactly, and every state the
// tables.

const SEED = Number(process.env.STACK_SEED ?? Date.now() % 1_000_000);
const ORGS = 5;
const AGENTS = 30;
const EARLY_PROBES = 200;
const LATE_PROBES = 100;
const OPS = 1200;

describe('multi-node stack: every client gets every event of its scopes once, in order', () => {
  let stack: SyncStack | undefined;
  const probes: SyncProbe[] = [];

  beforeAll(async () => {
    stack = await startSyncStack({ label: 'multinode', gatewayEnv: { HEAD_CHECK_INTERVAL_MS: '1000' } });
  }, 90_000);

  afterAll(async () => {
    await Promise.all(probes.map((p) => p.stop()));
    await stack?.stop();
  }, 30_000);

  it(`${EARLY_PROBES + LATE_PROBES} clients on 2 gateways, writes from 2 workers (seed ${SEED})`, async () => {
    const s = stack!;
    try {
      const plan = planScopes(ORGS, AGENTS);
      const random = seededRandom(SEED);
      const pickScopes = (i: number) => {
        const chosen = new Set([plan.scopes[i % plan.scopes.length]!]);
        const want = 1 + (i % 3);
        while (chosen.size < want) chosen.add(plan.scopes[Math.floor(random() * plan.scopes.length)]!);
        return [...chosen];
      };
      const newProbe = async (i: number, extra: { resumeFrom?: SyncProbe; scopes?: string[] } = {}) => {
        const scopes = extra.scopes ?? pickScopes(i);
        const probe = new SyncProbe({
          urls: s.gatewayUrls,
          token: await tokenFor(scopes, `client-${i}`),
          scopes,
          startAt: i,
          label: `c${i}`,
          ...(extra.resumeFrom ? { resumeFrom: extra.resumeFrom } : {}),
        });
        probes.push(probe);
        return probe;
      };

      // Everyone subscribed before the first write: their streams start at 1 (bootstrap at 0).
      const early = await Promise.all(Array.from({ length: EARLY_PROBES }, (_, i) => newProbe(i)));
      await Promise.all(early.map((p) => p.whenLive(30_000)));
      expect(new Set(early.map((p) => p.url)).size).toBe(2);

      const writer = new ApiWriter(s.apiUrls, await tokenFor(['*'], 'writer'));
      const workload = new SyncWorkload(writer, plan, { seed: SEED, workers: s.apiUrls.length });
      await workload.createAgents();
      const writing = workload.run({ ops: OPS, concurrency: 8 });
      writing.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled

      // Mid-stream: late joiners bootstrap at whatever L the scope has reached; 30 early clients
      // lose their connection (and resume on the other gateway); 20 go away for a while and come
      // back as new connections carrying their stored cursor and records.
      await waitUntil(() => workload.counts.messages >= 150, 20_000, 'workload reached 150 messages');
      const late = await Promise.all(
        Array.from({ length: LATE_PROBES }, (_, i) => newProbe(EARLY_PROBES + i)),
      );
      const dropped = early.slice(0, 30);
      for (const p of dropped) p.dropConnection();
      const away = early.slice(30, 50);
      await Promise.all(away.map((p) => p.stop()));
      await waitUntil(() => workload.counts.messages >= 300, 20_000, 'workload reached 300 messages');
      const returned = await Promise.all(
        away.map((p, i) => newProbe(1000 + i, { resumeFrom: p, scopes: [...p.scopes.keys()] })),
      );
      await writing;

      const current = probes.filter((p) => !away.includes(p));
      const heads = await verifyGuarantee(s, current, { timeoutMs: 30_000 });

      // The away probes saw no violation before they left; their successors resumed from their
      // cursors without a bootstrap, and late joiners began at their bootstrap's L + 1.
      for (const p of away) expect(p.violations).toEqual([]);
      for (const p of returned) for (const scope of p.scopes.values()) expect(scope.bootstraps).toEqual([]);
      expect(
        late.some((p) => [...p.scopes.values()].some((sc) => (sc.bootstraps[0]?.lastSyncId ?? 0) > 0)),
      ).toBe(true);
      for (const p of dropped) expect(p.opens).toBeGreaterThanOrEqual(2);

      const events = current.reduce((n, p) => n + p.eventsReceived, 0);
      const totalHeads = [...heads.values()].reduce((a, b) => a + b, 0);
      expect(totalHeads).toBeGreaterThanOrEqual(OPS + AGENTS);
      console.info(
        `multi-node: ${current.length} clients, ${heads.size} scopes, ${totalHeads} events in the log, ` +
          `${events} deliveries checked, writes ${JSON.stringify(workload.counts)}, retries ${writer.retries}, seed ${SEED}`,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\nseed ${SEED}\n${s.tails()}`, { cause: err });
    }
  }, 120_000);
});
