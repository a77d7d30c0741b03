import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../bench/local-stack';
import { silentProgress } from './progress';
import type { ScenarioResult } from './result';
import { BOOTSTRAP_DEFAULTS, runBootstrap } from './scenarios/bootstrap';
import { FANOUT_DEFAULTS, runFanout } from './scenarios/fanout';
import { MUTATIONS_DEFAULTS, runMutations } from './scenarios/mutations';
import { RECONNECT_STORM_DEFAULTS, runReconnectStorm } from './scenarios/reconnect-storm';
import { runSoak, SOAK_DEFAULTS } from './scenarios/soak';
import { runStream, STREAM_DEFAULTS } from './scenarios/stream';
import { createSyncTarget, type SyncTarget } from './sync-target';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const env = { workers: 2, progress: silentProgress };

/** Every failed check with its detail, so a failure names what the stack got wrong. */
function failures(result: ScenarioResult): string[] {
  return result.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail ?? ''}`);
}

// The driver's scenarios, tiny, against a real multi-node stack (1 api worker, 2 gateways,
// delta, Postgres, a private Redis): correctness only, never timings.
describe('load driver against the stack', () => {
  let stack: LocalStack;
  let target: SyncTarget;

  beforeAll(async () => {
    // Small bootstrap pages, so the bootstrap scenario's 600 records come in several pages (v1.1).
    stack = await startLocalStack({
      apiWorkers: 1,
      gateways: 2,
      env: { BOOTSTRAP_PAGE_BYTES: String(32 * 1024) },
    });
    target = createSyncTarget({
      apiUrls: stack.apiUrls,
      gatewayUrls: stack.gatewayUrls,
      deltaUrl: stack.deltaUrl,
      secret: stack.secret,
    });
  }, 90_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('fanout: every subscriber on either gateway gets every event once, in order', async () => {
    const result = await runFanout(
      target,
      {
        ...FANOUT_DEFAULTS,
        connections: 20,
        scopes: 4,
        eventsPerSecond: 20,
        durationMs: 3000,
        settleMs: 15_000,
      },
      env,
    );
    expect(failures(result)).toEqual([]);
    expect(result.metrics.events_lost).toMatchObject({ value: 0 });
  }, 60_000);

  it('mutations: every write is acknowledged and the log holds exactly those', async () => {
    const result = await runMutations(
      target,
      { ...MUTATIONS_DEFAULTS, scopes: 3, vus: 4, durationMs: 2000 },
      env,
    );
    expect(failures(result)).toEqual([]);
  }, 60_000);

  it('mutations in batches: one transaction per request, ids still 1..N', async () => {
    const result = await runMutations(
      target,
      { ...MUTATIONS_DEFAULTS, scopes: 2, vus: 2, durationMs: 1000, batch: 5 },
      env,
    );
    expect(failures(result)).toEqual([]);
  }, 60_000);

  it('stream (append): every viewer ends with the writer text, every token durable', async () => {
    const result = await runStream(
      target,
      {
        ...STREAM_DEFAULTS,
        replies: 4,
        tokens: 40,
        tokensPerSecond: 100,
        viewers: 2,
        // Replies start within 100 ms and open for 100 ms (10 tokens): a steady window follows.
        startSpreadMs: 100,
        openingMs: 100,
      },
      env,
    );
    expect(failures(result)).toEqual([]);
    expect(result.metrics.tokens_written).toMatchObject({ value: 160 });
    // Every token reached both viewers of its reply, and each of them was counted once: the
    // first 10 of each reply as its opening, the other 30 as the steady state.
    expect(result.metrics.tokens_to_viewers).toMatchObject({ value: 320 });
    expect(result.metrics.opening_token_to_viewer_ms).toMatchObject({ count: 80 });
    expect(result.metrics.token_to_viewer_ms).toMatchObject({ count: 240 });
    expect(result.metrics.opening_token_durable_ms).toMatchObject({ count: 40 });
    expect(result.metrics.token_durable_ms).toMatchObject({ count: 120 });
    // One streaming upload per reply.
    expect(result.metrics.write_requests).toMatchObject({ value: 4 });
    expect((result.metrics.steady_tokens_written as { value: number }).value).toBeGreaterThan(0);
    expect((result.metrics.api_commits as { value: number }).value).toBeGreaterThan(0);
  }, 60_000);

  it('stream (append through the client package writer): checked the same way', async () => {
    const result = await runStream(
      target,
      { ...STREAM_DEFAULTS, replies: 2, tokens: 20, tokensPerSecond: 100, viewers: 2, upload: 'client' },
      env,
    );
    expect(failures(result)).toEqual([]);
    expect(result.metrics.tokens_to_viewers).toMatchObject({ value: 80 });
  }, 60_000);

  it('stream (patch): the whole-text way is checked the same way', async () => {
    const result = await runStream(
      target,
      { ...STREAM_DEFAULTS, replies: 2, tokens: 20, tokensPerSecond: 100, viewers: 2, mode: 'patch' },
      env,
    );
    expect(failures(result)).toEqual([]);
    expect(result.metrics.write_requests).toMatchObject({ value: 40 });
    expect(result.metrics.tokens_to_viewers).toMatchObject({ value: 80 });
  }, 60_000);

  it('reconnect-storm: every client resumes from its cursor and catches up', async () => {
    const result = await runReconnectStorm(
      target,
      { ...RECONNECT_STORM_DEFAULTS, connections: 20, scopes: 4, eventsWhileAway: 3, settleMs: 20_000 },
      env,
    );
    expect(failures(result)).toEqual([]);
    expect(result.metrics.resume_pairs).toMatchObject({ value: 4 });
    expect(result.metrics.delta_requests?.kind).toBe('counter');
    // Both gateways resume each (scope, cursor); the delta service reads each from Postgres once.
    const queries = result.metrics.delta_queries;
    expect(queries?.kind).toBe('counter');
    const count = queries?.kind === 'counter' ? queries.value : Number.NaN;
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThanOrEqual(4);
  }, 60_000);

  it('bootstrap: HTTP and WebSocket snapshots hold every record at the head', async () => {
    const result = await runBootstrap(
      target,
      { ...BOOTSTRAP_DEFAULTS, records: 600, httpClients: 2, iterations: 1, wsClients: 2 },
      env,
    );
    expect(failures(result)).toEqual([]);
    expect((result.metrics.bootstrap_ws_frames as { value: number }).value).toBeGreaterThan(2 * 2);
  }, 60_000);

  it('soak: clients ramp up, some drop and resume while events flow, all end with every event', async () => {
    const result = await runSoak(
      target,
      {
        ...SOAK_DEFAULTS,
        connections: 20,
        scopes: 4,
        eventsPerSecond: 20,
        durationMs: 4000,
        rampMs: 1000,
        rampSteps: 4,
        // 300 % a minute: one of the 20 clients leaves every second, back half a second later.
        churnPerMinute: 3,
        churnAwayMs: 500,
        sampleMs: 500,
        settleMs: 15_000,
      },
      env,
    );
    expect(failures(result)).toEqual([]);
    expect(result.metrics.churn_reconnects).toMatchObject({ kind: 'counter' });
    const churned = result.metrics.churn_reconnects;
    expect(churned?.kind === 'counter' ? churned.value : 0).toBeGreaterThan(0);
    for (const name of ['gateway_rss_hold_start', 'gateway_rss_end', 'gateway_rss_slope']) {
      expect(result.metrics[name]?.kind, name).toBe('gauge');
    }
    expect(result.metrics.sync_delivery_p99_last_third?.kind).toBe('gauge');
    expect(result.samples?.every((s) => typeof s.rssBytes === 'number')).toBe(true);
  }, 60_000);

  it('the CLI runs a scenario and writes a JSON result', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        'loadtest/driver/main.ts',
        'mutations',
        '--api-url',
        stack.apiUrls.join(','),
        '--gateway-url',
        stack.gatewayUrls.join(','),
        '--delta-url',
        stack.deltaUrl,
        '--secret',
        stack.secret,
        '--vus',
        '2',
        '--scopes',
        '2',
        '--duration',
        '1',
        '--workers',
        '1',
        '--json',
      ],
      { cwd: ROOT, timeout: 45_000 },
    );
    const result = JSON.parse(stdout) as ScenarioResult;
    expect(result.scenario).toBe('mutations');
    expect(failures(result)).toEqual([]);
  }, 60_000);

  it('the CLI refuses bad arguments with usage and exit code 2', async () => {
    const run = promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'loadtest/driver/main.ts', 'nope'],
      {
        cwd: ROOT,
        timeout: 20_000,
      },
    );
    await expect(run).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('usage:') });
  }, 30_000);
});
