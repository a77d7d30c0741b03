/**
 * `npm run bench`: starts the multi-node stack on this machine (fresh database, private Redis,
 * 2 api workers, 2 gateways, delta), runs the load scenarios at a size that fits a 2-core box,
 * runs the fan-out scenario against the peers in the same run, prints one table and writes it
 * to docs/benchmarks.md (section `bench`). Bounded: a watchdog ends it before 10 minutes.
 */
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { updateBenchmarkSection } from '../../test/support/bench';
import { freePort } from '../../test/support/ports';
import { createPeerTarget } from '../driver/peer-target';
import { silentProgress } from '../driver/progress';
import { passed, type ScenarioResult } from '../driver/result';
import { runBootstrap } from '../driver/scenarios/bootstrap';
import { FANOUT_DEFAULTS, type FanoutOptions, runFanout } from '../driver/scenarios/fanout';
import { runMutations } from '../driver/scenarios/mutations';
import { runReconnectStorm } from '../driver/scenarios/reconnect-storm';
import { connectionSpecs, type RunEnv, withPool } from '../driver/scenarios/run-env';
import { formatSummary } from '../driver/summary';
import { createSyncTarget } from '../driver/sync-target';
import type { LoadTarget } from '../driver/target';
import { launchPeer, type PeerProcess } from '../peers/launch';
import { PEER_KINDS, type PeerKind } from '../peers/peer-kind';
import { startLocalStack } from './local-stack';
import { type BenchFigures, benchTable, type FanoutFigures } from './report';
import { readCpuSeconds, readRssKiB } from './rss';

const SIZES: BenchFigures['sizes'] = {
  saturationConnections: Number(process.env.BENCH_SATURATION_CONNECTIONS ?? 2000),
  saturationScopes: Number(process.env.BENCH_SATURATION_SCOPES ?? 5),
  saturationBatch: 10,
  rateConnections: 500,
  rateScopes: 25,
  eventsPerSecond: 200,
  idleConnections: Number(process.env.BENCH_IDLE_CONNECTIONS ?? 4000),
  writers: 16,
  stormClients: Number(process.env.BENCH_STORM_CLIENTS ?? 5000),
  stormScopes: 50,
  bootstrapRecords: 10_000,
};
const PUBLISH_SECONDS = 6;
const WATCHDOG_MS = 9.5 * 60_000;

const env: RunEnv = { workers: Math.max(2, availableParallelism()), progress: silentProgress };
const began = Date.now();
const loadAtStart = loadavg()[0]!;
const log = (line: string) =>
  process.stderr.write(`[bench ${((Date.now() - began) / 1000).toFixed(0)}s] ${line}\n`);
const cleanups: (() => Promise<void>)[] = [];

async function cleanup(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {});
}

const watchdog = setTimeout(() => {
  log('watchdog: the bench ran out of time; stopping everything');
  void cleanup().finally(() => process.exit(1));
}, WATCHDOG_MS);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void cleanup().finally(() => process.exit(130));
  });
}

function report(result: ScenarioResult): ScenarioResult {
  log(
    `${result.scenario}[${result.target}] ${passed(result) ? 'ok' : 'CHECKS FAILED'}\n${formatSummary(result)}`,
  );
  return result;
}

function metricValue(
  result: ScenarioResult,
  name: string,
  field: 'value' | 'perSecond' | 'med' | 'p99' = 'value',
) {
  const m = result.metrics[name] as Record<string, unknown> | undefined;
  const v = m?.[field];
  return typeof v === 'number' ? v : Number.NaN;
}

/**
 * Fan-out figures of one target. `fanoutPids` are the processes of its fan-out tier (the
 * gateways; a peer's nodes): their CPU time over the saturation window gives deliveries per
 * CPU-second, the figure that does not depend on how much of the shared box the driver took.
 */
async function fanoutFigures(target: LoadTarget, fanoutPids: number[]): Promise<FanoutFigures> {
  const base: FanoutOptions = { ...FANOUT_DEFAULTS, durationMs: PUBLISH_SECONDS * 1000, settleMs: 15_000 };
  let cpuAtStart = Number.NaN;
  let fanoutCpuSeconds = Number.NaN;
  const saturate: FanoutOptions = {
    ...base,
    mode: 'saturate',
    connections: SIZES.saturationConnections,
    scopes: SIZES.saturationScopes,
    concurrency: 16,
    batch: SIZES.saturationBatch,
  };
  // Every target gets the same unreported warm-up first (JIT, buffers, connection pools): a cold
  // run measured against a warm one would say more about start-up than about fan-out.
  await runFanout(target, { ...saturate, durationMs: 2000 }, env);
  const rate = report(
    await runFanout(
      target,
      {
        ...base,
        mode: 'rate',
        connections: SIZES.rateConnections,
        scopes: SIZES.rateScopes,
        eventsPerSecond: SIZES.eventsPerSecond,
      },
      env,
    ),
  );
  const saturated = report(
    await runFanout(target, saturate, env, {
      publishWindow(phase) {
        const cpu = fanoutPids.reduce((sum, pid) => sum + readCpuSeconds(pid), 0);
        if (phase === 'start') cpuAtStart = cpu;
        else fanoutCpuSeconds = cpu - cpuAtStart;
      },
    }),
  );
  const delivered = metricValue(saturated, 'events_delivered');
  return {
    saturatedPerSecond: metricValue(saturated, 'events_delivered', 'perSecond'),
    publishedPerSecond: metricValue(saturated, 'events_published', 'perSecond'),
    fanoutCpuSeconds,
    deliveriesPerCpuSecond: fanoutCpuSeconds > 0 ? delivered / fanoutCpuSeconds : Number.NaN,
    p50Ms: metricValue(rate, 'sync_delivery_ms', 'med'),
    p99Ms: metricValue(rate, 'sync_delivery_ms', 'p99'),
    correct: passed(rate) && passed(saturated),
  };
}

/**
 * How long the driver takes to connect `count` clients (each subscribing one scope) to a target:
 * against plain uWS this is the client side's own floor for the reconnect storm on this machine.
 */
async function connectTime(target: LoadTarget, count: number): Promise<number> {
  const scopes = await target.prepareScopes(SIZES.stormScopes);
  const specs = await connectionSpecs(target, scopes, count);
  return withPool(env, async (pool) => {
    const started = Date.now();
    const opened = await pool.open(specs, { measureLatency: false, timeoutMs: 60_000 });
    const ms = Date.now() - started;
    log(`${target.name}: ${opened.ready}/${count} clients connected in ${ms} ms`);
    return opened.ready === count ? ms : Number.NaN;
  });
}

async function main(): Promise<void> {
  log(`starting the stack (2 api, 2 gateways, delta, Postgres db, private Redis) on ${cpus().length} cores`);
  const stack = await startLocalStack({ apiWorkers: 2, gateways: 2 });
  cleanups.push(() => stack.stop());
  const sync = createSyncTarget({
    apiUrls: stack.apiUrls,
    gatewayUrls: stack.gatewayUrls,
    deltaUrl: stack.deltaUrl,
    secret: stack.secret,
  });

  // 0. Warm-up, not reported: fresh processes compile (tsx) and JIT their hot paths first (the
  // fan-out runs get one more of their own, as every peer does).
  log('warm-up: a few seconds of writes and fan-out');
  await runMutations(sync, { scopes: 10, vus: 8, durationMs: 3000, batch: 1, contentBytes: 200 }, env);
  await runFanout(
    sync,
    {
      ...FANOUT_DEFAULTS,
      connections: 200,
      scopes: 10,
      eventsPerSecond: 100,
      durationMs: 2000,
      settleMs: 10_000,
    },
    env,
  );

  // 1. Memory per idle connection, on fresh gateways. The first half of the connections warms
  // the gateways up (heap growth, JIT, buffers); the figure is the slope over the second half.
  log(`idle connections: ${SIZES.idleConnections}`);
  const idleScopes = await sync.prepareScopes(50);
  const idleSpecs = await connectionSpecs(sync, idleScopes, SIZES.idleConnections);
  const half = Math.floor(SIZES.idleConnections / 2);
  const gatewaysRss = () => stack.gateways.reduce((sum, g) => sum + readRssKiB(g.proc.pid!), 0);
  const rssPerConnectionKiB = await withPool(env, async (pool) => {
    const first = await pool.open(idleSpecs.slice(0, half), { measureLatency: false, timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 2000));
    const atHalf = gatewaysRss();
    const second = await pool.open(idleSpecs.slice(half), { measureLatency: false, timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 2000));
    const atFull = gatewaysRss();
    log(
      `idle connections ready: ${first.ready + second.ready}/${SIZES.idleConnections}; RSS ${atHalf} → ${atFull} KiB`,
    );
    return second.ready === idleSpecs.length - half ? (atFull - atHalf) / second.ready : Number.NaN;
  });

  // 2. Fan-out: this system, then each peer on the same machine, one at a time.
  const fanout: BenchFigures['fanout'] = {
    sync: await fanoutFigures(
      sync,
      stack.gateways.map((g) => g.proc.pid!),
    ),
  };
  let stormFloorMs = Number.NaN;
  for (const kind of PEER_KINDS) {
    const nodes: PeerProcess[] = [];
    try {
      const count = kind === 'uws-local' ? 1 : 2;
      for (let i = 0; i < count; i++) {
        nodes.push(
          await launchPeer(kind as PeerKind, {
            port: await freePort(),
            redisUrl: stack.redisUrl,
            channelPrefix: `peer-${kind}:`,
          }),
        );
      }
      const peer = createPeerTarget(
        kind,
        nodes.map((n) => n.url),
      );
      fanout[kind] = await fanoutFigures(
        peer,
        nodes.map((n) => n.pid),
      );
      if (kind === 'uws-local') stormFloorMs = await connectTime(peer, SIZES.stormClients);
    } catch (err) {
      log(`peer ${kind} failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
    }
  }

  // 3. Writes.
  const mutations = report(
    await runMutations(
      sync,
      { scopes: 50, vus: SIZES.writers, durationMs: PUBLISH_SECONDS * 1000, batch: 1, contentBytes: 200 },
      env,
    ),
  );

  // 4. Reconnect storm.
  const storm = report(
    await runReconnectStorm(
      sync,
      {
        connections: SIZES.stormClients,
        scopes: SIZES.stormScopes,
        eventsBefore: 2,
        eventsWhileAway: 5,
        settleMs: 45_000,
      },
      env,
    ),
  );

  // 5. Bootstrap of a large scope.
  const bootstrap = report(
    await runBootstrap(
      sync,
      { records: SIZES.bootstrapRecords, httpClients: 2, iterations: 3, wsClients: 10 },
      env,
    ),
  );

  const figures: BenchFigures = {
    sizes: SIZES,
    fanout,
    rssPerConnectionKiB,
    mutationsPerSecond: metricValue(mutations, 'mutations', 'perSecond'),
    mutationP99Ms: metricValue(mutations, 'mutation_ms', 'p99'),
    mutationsCorrect: passed(mutations),
    stormCatchUpMs: metricValue(storm, 'storm_catch_up_ms'),
    stormReconnectedMs: metricValue(storm, 'storm_reconnected_ms'),
    stormInitialConnectMs: metricValue(storm, 'initial_connect_ms'),
    stormFloorMs,
    stormCaughtUp: storm.checks.find((c) => c.name.startsWith('every client caught up'))?.ok === true,
    stormDeltaRequests: metricValue(storm, 'delta_requests'),
    stormDeltaQueries: metricValue(storm, 'delta_queries'),
    stormResumePairs: metricValue(storm, 'resume_pairs'),
    stormResumePairsPerNode: metricValue(storm, 'resume_pairs_per_node'),
    bootstrapHttpP50Ms: metricValue(bootstrap, 'bootstrap_http_ms', 'med'),
    bootstrapWsAllMs: metricValue(bootstrap, 'bootstrap_ws_all_ready_ms'),
    bootstrapCorrect: passed(bootstrap),
  };
  const table = benchTable(figures);
  const seconds = ((Date.now() - began) / 1000).toFixed(0);
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const markdown = [
    '## Whole system (`npm run bench`)',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${machine}, in ${seconds} s ` +
      `(1-minute load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end). ` +
      'Every process — Postgres, Redis, 2 api workers, 2 gateways, delta, the peers and the load driver (' +
      `${env.workers} worker threads) — shares these cores, so absolute figures are a floor; the ratios compare ` +
      'like with like. Fan-out latency is commit (`created_at`, 1 ms resolution) to receipt; saturation uses 16 ' +
      `closed-loop publishers for ${PUBLISH_SECONDS} s, ${SIZES.saturationBatch} events per publish (one transaction, one frame) to keep commits out of the way as far as a shared box allows — the row below it shows whether the publish path or the fan-out was the limit; the fixed rate publishes one event at a time. How to read it: docs/loadtest.md.`,
    '',
    table,
  ].join('\n');
  console.log(`\n${table}\n`);
  updateBenchmarkSection('bench', markdown);
  log('wrote docs/benchmarks.md (section bench)');
}

try {
  await main();
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(0);
