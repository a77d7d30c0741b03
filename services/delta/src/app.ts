import { unreachable } from '@openagents/sync-protocol';
import {
  AppError,
  type Auth,
  bearerToken,
  corsFor,
  createOpsRoutes,
  createRateLimiter,
  type DeltaSource,
  type DependencyCheck,
  type Logger,
  type Principal,
  type ReadinessCheck,
  type Registry,
  toAppError,
} from '@openagents/sync-server-kit';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { routePath } from 'hono/route';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { type DeltaMetrics, deltaMetricsFor, type ReadResult } from './metrics';
import { parseBootstrapQuery, parseDeltaQuery, parseHeadsBody, parseHeadsQuery } from './query-params';
import { createReadGate, type ReadGate } from './read-gate';
import { acceptedAgeMs, createReadSharing, type SharedAnswer } from './read-sharing';

export interface DeltaAppOptions {
  reader: DeltaSource;
  auth: Auth;
  log: Logger;
  registry: Registry;
  config?: DeltaAppConfig;
  /** Checks of this process alone for `/readyz`; ready when omitted. */
  readiness?: ReadinessCheck;
  /** Shared dependencies (the database), exported as `sync_dependency_up`, not readiness. */
  dependencies?: DependencyCheck;
  /** True once the service drains: `/readyz` turns 503 so the load balancer stops routing here. */
  isDraining?: () => boolean;
  /**
   * The gate bootstrap pages pass through; by default one of `maxConcurrentBootstraps` slots and
   * 32× as many places in line (room for a subscribe storm from several gateways, each of which
   * sends at most its DELTA_BOOTSTRAP_CONCURRENCY at once). Passed in by tests that need to see
   * its line fill.
   */
  bootstrapGate?: ReadGate;
}

export interface DeltaAppConfig {
  /** Largest `POST /sync/heads` body in bytes (default 256 KiB, room for 1000 long scopes). */
  maxHeadsBodyBytes?: number;
  /** Oldest shared answer handed to a request asking `Cache-Control: max-age` (default 10 s; 0: never). */
  readShareMaxAgeMs?: number;
  /** Bound of the shared answers' JSON, in bytes (default 64 MiB). */
  readShareCacheBytes?: number;
  /** Browser origins allowed to call (CORS, `ALLOWED_ORIGINS`); none by default. */
  allowedOrigins?: readonly string[];
  /**
   * Sustained reads per second per token subject (READ_RATE_PER_SECOND, 20 in the service's
   * config; omitted or 0: no limit).
   * Service tokens (`use: service`: the gateways' own, which read for all their clients) are not
   * limited.
   */
  readRatePerSecond?: number;
  /** Reads a subject may make at once before the sustained rate applies (READ_BURST; default 100). */
  readBurst?: number;
  /** Bootstrap pages read at once in this process (MAX_CONCURRENT_BOOTSTRAPS; default 4). */
  maxConcurrentBootstraps?: number;
}

/**
 * The delta service's HTTP face (contract section 6), tested through `app.request` without a port:
 *
 * - `GET /sync/bootstrap?scope=S[&cursor=C]` → `{ scope, models, lastSyncId, nextCursor? }`: one
 *   page of at most `BOOTSTRAP_PAGE_BYTES` of records; `nextCursor` until the last (reader.ts).
 * - `GET /sync/delta?scope=S&lastSyncId=N[&limit=L]` → `{ scope, events, latestSyncId, hasMore }`;
 *   410 `reset_required` when the cursor is older than the retained log or ahead of it.
 * - `GET /sync/heads?scope=a&scope=b…` (or `POST /sync/heads` `{ "scopes": [...] }` for long lists)
 *   → `{ heads: { [scope]: lastId } }`, for gateways' periodic checks that nothing was missed.
 * - `/healthz`, `/readyz`, `/metrics`.
 *
 * Every sync request needs `Authorization: Bearer <jwt>` (401) whose scopes cover each scope asked
 * about (403); bad parameters are 400 `bad_request` with details naming them. Reads are limited
 * per token subject (429 `rate_limited` with `Retry-After`), and bootstrap pages per process
 * (`maxConcurrentBootstraps` at once, a short line, then 503 `unavailable` with `Retry-After`). Responses carry
 * `Cache-Control: no-store` so no proxy keeps them. A bootstrap or delta request that sends
 * `Cache-Control: max-age=N` accepts an answer read for another request up to N seconds ago (see
 * `read-sharing.ts`); such an answer carries an `Age` header. Gateways ask for it on resumes.
 */
export function createDeltaApp(options: DeltaAppOptions): Hono {
  const { reader, auth, log } = options;
  const metrics = deltaMetricsFor(options.registry);
  const sharing = createReadSharing({
    reader,
    metrics,
    maxAgeCapMs: options.config?.readShareMaxAgeMs ?? 10_000,
    cacheBytes: options.config?.readShareCacheBytes ?? 64 * 1024 * 1024,
  });
  const limiter = createRateLimiter({
    perSecond: options.config?.readRatePerSecond ?? 0,
    burst: options.config?.readBurst ?? 100,
  });
  const concurrency = options.config?.maxConcurrentBootstraps ?? 4;
  const bootstraps = options.bootstrapGate ?? createReadGate({ concurrency, queue: concurrency * 32 });
  /** Authenticates and takes one read from the subject's bucket (429 `rate_limited` when empty). */
  const authorizeRead = async (c: Context): Promise<Principal> => {
    const principal = await authenticate(auth, c);
    if (principal.use === 'service') return principal;
    const decision = limiter.take(principal.sub);
    if (!decision.allowed) {
      throw new AppError('rate_limited', 'Too many reads; retry later', {
        details: { retryAfterSeconds: decision.retryAfterSeconds },
      });
    }
    return principal;
  };
  const app = new Hono();
  // CORS first, so a preflight is answered before authentication (see server-kit cors.ts).
  app.use('*', corsFor(options.config?.allowedOrigins ?? []));

  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    const route = routePath(c, -1);
    metrics.http.requestDuration.observe(
      { route, method: c.req.method, status: String(c.res.status) },
      seconds,
    );
    if (c.req.path.startsWith('/sync')) {
      c.header('Cache-Control', 'no-store');
      // Paths only, never query strings: they carry scopes, and nothing here should leak a token.
      log.info(
        { method: c.req.method, route, status: c.res.status, ms: Math.round(seconds * 1000) },
        'request',
      );
    }
  });

  app.route(
    '/',
    createOpsRoutes({
      registry: options.registry,
      ...(options.readiness ? { readiness: options.readiness } : {}),
      ...(options.dependencies ? { dependencies: options.dependencies } : {}),
      isDraining: options.isDraining ?? (() => false),
    }),
  );

  app.get('/sync/bootstrap', (c) =>
    measured(metrics, 'bootstrap', async () => {
      const principal = await authorizeRead(c);
      const { scope, cursor } = parseBootstrapQuery(c.req.queries());
      auth.assertScope(principal, scope);
      const answer = await bootstraps.run(() =>
        sharing.bootstrap(scope, cursor, acceptedAgeMs(c.req.header('cache-control'))),
      );
      metrics.bootstrapRecords.observe(answer.items);
      return answered(c, answer);
    }),
  );

  app.get('/sync/delta', (c) =>
    measured(metrics, 'delta', async () => {
      const principal = await authorizeRead(c);
      const { scope, lastSyncId, limit } = parseDeltaQuery(c.req.queries());
      auth.assertScope(principal, scope);
      const answer = await sharing.delta(
        scope,
        lastSyncId,
        limit,
        acceptedAgeMs(c.req.header('cache-control')),
      );
      metrics.deltaEventsReturned.observe(answer.items);
      return answered(c, answer);
    }),
  );

  const answerHeads = async (c: Context, principal: Principal, scopes: readonly string[]) => {
    for (const scope of scopes) auth.assertScope(principal, scope);
    const heads = await reader.heads(scopes);
    return c.json({ heads: Object.fromEntries(heads) });
  };

  app.get('/sync/heads', (c) =>
    measured(metrics, 'heads', async () => {
      const principal = await authorizeRead(c);
      const { scope } = parseHeadsQuery(c.req.queries());
      return answerHeads(c, principal, scope);
    }),
  );

  app.post(
    '/sync/heads',
    bodyLimit({
      maxSize: options.config?.maxHeadsBodyBytes ?? 256 * 1024,
      onError: (c) => c.json(new AppError('payload_too_large', 'Body too large').toBody(), 413),
    }),
    (c) =>
      measured(metrics, 'heads', async () => {
        const principal = await authorizeRead(c);
        const type = c.req.header('content-type') ?? '';
        if (!/^application\/json\s*(;|$)/i.test(type)) {
          throw new AppError('unsupported_media_type', 'Send the body as application/json');
        }
        const body = await c.req.json<unknown>().catch((err: unknown) => {
          throw new AppError('bad_request', 'Body is not valid JSON', { cause: err });
        });
        return answerHeads(c, principal, parseHeadsBody(body));
      }),
  );

  app.notFound((c) => c.json(new AppError('not_found', 'No such route').toBody(), 404));

  app.onError((err, c) => {
    const error = toAppError(err);
    if (error.status >= 500) log.error({ err, code: error.code, route: routePath(c, -1) }, 'request failed');
    if (error.code === 'unauthorized') c.header('WWW-Authenticate', 'Bearer');
    const retry = (error.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
    if (typeof retry === 'number') c.header('Retry-After', String(retry));
    return c.json(error.toBody(), error.status as ContentfulStatusCode);
  });

  return app;
}

/** Sends an answer's JSON; a shared one is marked with `Age` (whole seconds, RFC 9111 §5.1). */
function answered(c: Context, answer: SharedAnswer): Response {
  if (answer.source !== 'postgres') c.header('Age', String(Math.floor(answer.ageMs / 1000)));
  c.header('Content-Type', 'application/json');
  return c.body(answer.json, 200);
}

async function authenticate(auth: Auth, c: Context): Promise<Principal> {
  return auth.verify(bearerToken(c.req.header('authorization')));
}

/**
 * Runs one read endpoint and records its outcome: count by result, duration by result. Errors
 * are rethrown as AppErrors for `onError` to answer.
 */
async function measured(
  metrics: DeltaMetrics,
  endpoint: 'bootstrap' | 'delta' | 'heads',
  work: () => Promise<Response>,
): Promise<Response> {
  const started = performance.now();
  let result: ReadResult = 'ok';
  try {
    return await work();
  } catch (err) {
    const error = toAppError(err);
    result = resultOf(error);
    throw error;
  } finally {
    const seconds = (performance.now() - started) / 1000;
    switch (endpoint) {
      case 'bootstrap':
        metrics.bootstrapRequests.inc({ result });
        metrics.bootstrapDuration.observe({ result }, seconds);
        break;
      case 'delta':
        metrics.deltaRequests.inc({ result });
        metrics.deltaDuration.observe({ result }, seconds);
        break;
      case 'heads':
        metrics.headsRequests.inc({ result });
        break;
      default:
        unreachable(endpoint);
    }
  }
}

function resultOf(error: AppError): ReadResult {
  if (error.code === 'reset_required') return 'reset';
  return error.status < 500 ? 'client_error' : 'error';
}
