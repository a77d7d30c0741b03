import { publishEach } from '../publisher';
import { check, counter, gauge, type ScenarioResult } from '../result';
import type { LoadTarget } from '../target';
import { connectionSpecs, describeErrors, errorCount, type RunEnv, withPool } from './run-env';

export interface ReconnectStormOptions {
  connections: number;
  scopes: number;
  /** Events published into each scope before the drop (so cursors are not 0). */
  eventsBefore: number;
  /** Events published into each scope while every client is away. */
  eventsWhileAway: number;
  /** The longest the storm may take to catch up before the run gives up. */
  settleMs: number;
}

export const RECONNECT_STORM_DEFAULTS: ReconnectStormOptions = {
  connections: 2000,
  scopes: 50,
  eventsBefore: 2,
  eventsWhileAway: 5,
  settleMs: 30_000,
};

/**
 * Every client drops at once (a load balancer restart, a network blip), events are written while
 * they are away, then every client reconnects at once and resumes each scope from its cursor.
 * Measures the time until the last client has every event, and how many delta queries the
 * gateways made for it: with coalescing, at most one per distinct (scope, cursor) pair.
 */
export async function runReconnectStorm(
  target: LoadTarget,
  options: ReconnectStormOptions,
  env: RunEnv,
): Promise<ScenarioResult> {
  const startedAt = new Date();
  const t0 = performance.now();
  const scopes = await target.prepareScopes(options.scopes);
  const specs = await connectionSpecs(target, scopes, options.connections);
  return withPool(env, async (pool) => {
    const connectStarted = Date.now();
    const opened = await pool.open(specs, { measureLatency: false, timeoutMs: 90_000 });
    // The cold start for comparison: every client connecting and bootstrapping its scope.
    const initialConnectMs = Date.now() - connectStarted;
    const before = await publishEach(target, scopes, options.eventsBefore, {
      batch: Math.max(1, options.eventsBefore),
      contentBytes: 64,
      concurrency: 8,
    });
    await pool.expect(before.heads);
    const warm = await pool.waitCaughtUp(20_000);

    await pool.drop();
    const away = await publishEach(target, scopes, options.eventsWhileAway, {
      batch: Math.max(1, options.eventsWhileAway),
      contentBytes: 64,
      concurrency: 8,
    });
    const heads = new Map(before.heads);
    for (const [scope, head] of away.heads) heads.set(scope, Math.max(head, heads.get(scope) ?? 0));
    const dropped = await pool.snapshot();
    await pool.expect(heads);
    const deltaBefore = await target.deltaRequests().catch(() => undefined);

    env.progress.start(`reconnect-storm[${target.name}]`, async () => {
      const s = await pool.snapshot();
      return `open ${s.open}/${s.connections}  caught up ${s.caughtUp}  behind ${s.behind}`;
    });
    const resumedAt = Date.now();
    await pool.resume();
    // Poll until every client caught up, noting when all were connected again: the gap between
    // the two is the replay, the rest is handshakes.
    const deadline = Date.now() + options.settleMs;
    let reconnectedAt: number | null = null;
    let settled = await pool.snapshot();
    for (;;) {
      if (reconnectedAt === null && settled.open === settled.connections) reconnectedAt = Date.now();
      if (settled.caughtUpAt !== null || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 50));
      settled = await pool.snapshot();
    }
    env.progress.stop();
    // Delta counters are read once the storm settled; a request still in flight would add later.
    const deltaAfter = await target.deltaRequests().catch(() => undefined);

    const catchUpMs = settled.caughtUpAt === null ? Number.NaN : settled.caughtUpAt - resumedAt;
    const byKind = (kind: string) =>
      deltaBefore === undefined || deltaAfter === undefined
        ? undefined
        : (deltaAfter[kind] ?? 0) - (deltaBefore[kind] ?? 0);
    const deltaRequests = byKind('delta');
    const otherReads =
      byKind('bootstrap') === undefined ? undefined : (byKind('bootstrap') ?? 0) + (byKind('heads') ?? 0);
    // Distinct (scope, cursor) pairs over all clients, and per node: each gateway has to read a
    // pair once for its own clients, so the per-node count is the floor with several gateways.
    const pairs = new Set(dropped.resumePairs.map((p) => p.slice(p.indexOf('|') + 1))).size;
    const pairsPerNode = dropped.resumePairs.length;
    const errors = errorCount(settled.errors);
    const metrics: ScenarioResult['metrics'] = {
      connections_ready: gauge(opened.ready),
      initial_connect_ms: gauge(initialConnectMs, 'ms'),
      storm_catch_up_ms: gauge(catchUpMs, 'ms'),
      storm_reconnected_ms: gauge(reconnectedAt === null ? Number.NaN : reconnectedAt - resumedAt, 'ms'),
      clients_caught_up: gauge(settled.caughtUp),
      events_behind: counter(settled.behind),
      events_lost: counter(settled.lost),
      events_duplicated: counter(settled.duplicates),
      resume_pairs: gauge(pairs),
      resume_pairs_per_node: gauge(pairsPerNode),
      reconnect_retries: counter(settled.reconnects),
      ws_errors: counter(errors),
    };
    if (deltaRequests !== undefined) metrics.delta_requests = counter(deltaRequests);
    const deltaQueries = byKind('postgres_delta');
    if (deltaQueries !== undefined) metrics.delta_queries = counter(deltaQueries);
    if (otherReads !== undefined) metrics.delta_other_reads = counter(otherReads);
    return {
      scenario: 'reconnect-storm',
      target: target.name,
      startedAt: startedAt.toISOString(),
      durationMs: performance.now() - t0,
      options: { ...options },
      metrics,
      checks: [
        check(
          'every connection subscribed',
          opened.ready === options.connections,
          `${opened.ready}/${options.connections}`,
        ),
        check(
          'caught up before the drop',
          warm.caughtUpAt !== null,
          `${warm.caughtUp}/${options.connections}`,
        ),
        check(
          'events were written while away',
          away.failures === 0 && away.events > 0,
          `${away.events} events, ${away.failures} failures`,
        ),
        check(
          'every client caught up after the storm',
          settled.caughtUpAt !== null,
          `${settled.caughtUp}/${options.connections}, ${settled.behind} events behind`,
        ),
        check('no lost events (ids contiguous)', settled.lost === 0, `${settled.lost} lost`),
        check('no duplicate events', settled.duplicates === 0, `${settled.duplicates} duplicates`),
        check(
          'no error frames (transport retries aside)',
          (settled.errors.transport ?? 0) === errors,
          describeErrors(settled.errors) || 'none',
        ),
      ],
    };
  });
}
