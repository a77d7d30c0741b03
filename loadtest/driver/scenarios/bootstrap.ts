import { Histogram } from '../histogram';
import { publishEach } from '../publisher';
import { check, counter, gauge, type ScenarioResult, trend } from '../result';
import type { SyncTarget } from '../sync-target';
import { type RunEnv, withPool } from './run-env';

export interface BootstrapOptions {
  /** Records in the scope (Messages of one agent). */
  records: number;
  /** Concurrent HTTP bootstraps, and how many each makes. */
  httpClients: number;
  iterations: number;
  /** WebSocket clients subscribing without a cursor (each gets a bootstrap frame). */
  wsClients: number;
}

export const BOOTSTRAP_DEFAULTS: BootstrapOptions = {
  records: 10_000,
  httpClients: 4,
  iterations: 3,
  wsClients: 20,
};

/**
 * A large scope: seeds `records` Messages into one agent scope through `POST /api/mutations`,
 * then times `GET /sync/bootstrap` (several clients at once) and WebSocket subscribes without a
 * cursor. Every answer must hold all records at `lastSyncId` = the log head.
 */
export async function runBootstrap(
  target: SyncTarget,
  options: BootstrapOptions,
  env: RunEnv,
): Promise<ScenarioResult> {
  const startedAt = new Date();
  const t0 = performance.now();
  const scope = await target.createAgent();
  const seedStart = performance.now();
  const seed = await publishEach(target, [scope], options.records, {
    batch: 500,
    contentBytes: 200,
    concurrency: 1,
  });
  const seedMs = performance.now() - seedStart;
  const head = seed.heads.get(scope) ?? 0;

  const http = new Histogram();
  let httpBad = 0;
  let bytes = 0;
  let firstProblem: string | undefined;
  const lane = async () => {
    for (let i = 0; i < options.iterations; i++) {
      const started = performance.now();
      try {
        const snapshot = await target.bootstrap(scope);
        http.record(performance.now() - started);
        const n = snapshot.models.Message?.length ?? 0;
        if (n !== options.records || snapshot.lastSyncId !== head) {
          httpBad++;
          firstProblem ??= `http: ${n} records at ${snapshot.lastSyncId}, expected ${options.records} at ${head}`;
        }
        bytes = JSON.stringify(snapshot).length;
      } catch (err) {
        httpBad++;
        firstProblem ??= `http: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
  };
  env.progress.start('bootstrap', () => `http bootstraps ${http.count}`);
  await Promise.all(Array.from({ length: options.httpClients }, lane));

  const ws = await withPool(env, async (pool) => {
    const spec = await target.connectionSpec(0, [scope]);
    const specs = Array.from({ length: options.wsClients }, () => ({ ...spec }));
    const started = performance.now();
    const opened = await pool.open(specs, { measureLatency: false, timeoutMs: 60_000 });
    const elapsed = performance.now() - started;
    const snapshot = await pool.snapshot();
    return { opened, elapsed, snapshot };
  });
  env.progress.stop();
  const wsRecordsOk = ws.snapshot.bootstrapRecords === options.records * options.wsClients;
  if (!wsRecordsOk)
    firstProblem ??= `ws: ${ws.snapshot.bootstrapRecords} records in ${ws.snapshot.bootstrapFrames} frames`;

  return {
    scenario: 'bootstrap',
    target: target.name,
    startedAt: startedAt.toISOString(),
    durationMs: performance.now() - t0,
    options: { ...options },
    metrics: {
      seed_ms: gauge(seedMs, 'ms'),
      seed_failures: counter(seed.failures),
      bootstrap_http_ms: trend(http.summary()),
      bootstrap_bytes: gauge(bytes, 'B'),
      bootstrap_ws_all_ready_ms: gauge(ws.elapsed, 'ms'),
      bootstrap_ws_frames: counter(ws.snapshot.bootstrapFrames),
    },
    checks: [
      check(
        'seeded every record',
        seed.failures === 0 && head === options.records,
        `head ${head}${seed.firstFailure ? `, ${seed.firstFailure}` : ''}`,
      ),
      check(
        'every HTTP bootstrap holds all records at the head',
        httpBad === 0 && http.count > 0,
        firstProblem ?? `${http.count} bootstraps`,
      ),
      check(
        'every WebSocket client got the full bootstrap',
        ws.opened.ready === options.wsClients && wsRecordsOk,
        firstProblem ?? `${ws.opened.ready}/${options.wsClients}`,
      ),
    ],
  };
}
