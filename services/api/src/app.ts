import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  IdempotencyKey,
  MODEL_REGISTRY,
  type ModelDef,
  type ModelRegistry,
  type MutationBatchResult,
} from '@openagents/sync-protocol';
import {
  AppError,
  type Auth,
  type Bus,
  bearerToken,
  corsFor,
  createOpsRoutes,
  createRateLimiter,
  type Logger,
  type Pool,
  type Principal,
  pingDatabase,
  type Registry,
  toAppError,
} from '@openagents/sync-server-kit';
import { type Context, Hono } from 'hono';
import { routePath } from 'hono/route';
import { APPEND_BATCHER_DEFAULTS, createAppendBatcher } from './append-batcher';
import type { MutationOutcome } from './commit';
import { DEFAULT_BODY_LIMIT_BYTES } from './config';
import { type AnswerAfter, COMMIT_PIPELINE_DEFAULTS, createCommitPipeline } from './group-commit';
import { createApiMetrics, type MutationResult } from './metrics';
import {
  type PlannedMutation,
  parsePathId,
  planAppend,
  planBatch,
  planCreate,
  planDelete,
  planUpdate,
} from './mutation-plan';
import { readJsonBody } from './read-body';
import { createStreamTracer } from './stream-trace';
import { APPEND_STREAM_DEFAULTS, type AppendStreamOptions, createAppendStreams } from './stream-upload';
import { createTokenCache } from './token-cache';

/** The knobs of the app itself (the rest of ApiConfig is about connections and ports). */
export interface ApiAppConfig {
  /** Largest accepted body in bytes; default 1 MiB. */
  BODY_LIMIT_BYTES?: number;
  /** Sustained requests per second per token subject; 0 turns the limit off. Default 200. */
  RATE_LIMIT_PER_SECOND?: number;
  /** Burst per subject. Default 400. */
  RATE_LIMIT_BURST?: number;
  /** Most concurrent requests joined into one transaction; 1 = off. Default 32. */
  WRITE_GROUP_MAX?: number;
  /** Browser origins allowed to call (CORS); none by default. */
  ALLOWED_ORIGINS?: readonly string[];
  /** Transactions of this worker in flight at once (the commit pipeline's depth). Default 2. */
  WRITE_PIPELINE_DEPTH?: number;
  /**
   * When an HTTP write is answered: once the bus acknowledged its publishes (`publish`, default)
   * or once it committed (`commit`; the publishes are already issued, acknowledged in the
   * background). Streamed appends always answer after the publish.
   */
  WRITE_ANSWER_AFTER?: AnswerAfter;
  /** Pieces after which a streamed reply's window commits without waiting out STREAM_COALESCE_MS; 0 = off (default). */
  STREAM_COALESCE_PIECES?: number;
  /** How long a streamed piece waits for more of its reply before it commits (ms). Default 0. */
  STREAM_COALESCE_MS?: number;
  /** Bench only: a file the streamed pieces' stage times are appended to (stream-trace.ts). */
  STREAM_TRACE_FILE?: string;
  /** Bench only: one record in this many is traced. Default 8. */
  STREAM_TRACE_EVERY?: number;
  /** Other limits of the streaming upload (stream-upload.ts), for tests and tuning. */
  APPEND_STREAM?: Partial<Omit<AppendStreamOptions, 'maxLineBytes'>>;
}

export interface ApiAppDeps {
  pool: Pool;
  bus: Bus;
  auth: Auth;
  log: Logger;
  registry: Registry;
  /** The models this API writes (routes, validation); default the built-in MODEL_REGISTRY. */
  models?: ModelRegistry;
  config?: ApiAppConfig;
  /** True while the owning service drains: /readyz answers 503. */
  isDraining?: () => boolean;
}

/** What @hono/node-server binds to a request (absent under `app.request` and other servers). */
export interface NodeBindings {
  incoming?: IncomingMessage;
  outgoing?: ServerResponse;
}

type Env = {
  Bindings: NodeBindings | undefined;
  Variables: {
    principal: Principal;
    mutationLabels: MutationLabel[];
    requestId: string;
    /** Ids of the records a write touched, for its log line. */
    recordIds: string[];
  };
};

/** A client-supplied request id is kept when it is short and printable, else one is made up. */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

interface MutationLabel {
  model: string;
  action: string;
}

/**
 * The mutation workers' HTTP app: `POST /api/<path>`, `PATCH|DELETE /api/<path>/:id`,
 * `POST /api/mutations`, and `/healthz`, `/readyz`, `/metrics`. Opens no port; serve it with
 * `@hono/node-server`, mount it in another Hono app, or call `app.request(...)` in tests.
 *
 * @example
 *   const app = createApiApp({ pool, bus, auth, log, registry });
 *   const res = await app.request('/api/agents', {
 *     method: 'POST',
 *     headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
 *     body: JSON.stringify({ org_id, name: 'Scout' }),
 *   });
 */
export function createApiApp(deps: ApiAppDeps): Hono<Env> {
  const { pool, bus, auth, log, registry } = deps;
  const models = deps.models ?? MODEL_REGISTRY;
  const bodyLimit = deps.config?.BODY_LIMIT_BYTES ?? DEFAULT_BODY_LIMIT_BYTES;
  const metrics = createApiMetrics(registry);
  const limiter = createRateLimiter({
    perSecond: deps.config?.RATE_LIMIT_PER_SECOND ?? 200,
    burst: deps.config?.RATE_LIMIT_BURST ?? 400,
  });
  const trace = deps.config?.STREAM_TRACE_FILE
    ? createStreamTracer(deps.config.STREAM_TRACE_FILE, deps.config.STREAM_TRACE_EVERY ?? 8)
    : undefined;
  const commitDeps = { pool, bus, log, metrics, trace };
  const pipeline = createCommitPipeline(commitDeps, {
    ...COMMIT_PIPELINE_DEFAULTS,
    maxGroup: deps.config?.WRITE_GROUP_MAX ?? COMMIT_PIPELINE_DEFAULTS.maxGroup,
    depth: deps.config?.WRITE_PIPELINE_DEPTH ?? COMMIT_PIPELINE_DEFAULTS.depth,
  });
  const answerAfter = deps.config?.WRITE_ANSWER_AFTER ?? 'publish';
  const verifyToken = createTokenCache(auth);
  const app = new Hono<Env>();
  // CORS first, so a preflight is answered before authentication (see server-kit cors.ts).
  app.use('*', corsFor(deps.config?.ALLOWED_ORIGINS ?? []));

  // Access log and request metrics: one line per request, labelled by the matched route pattern.
  // A write's line is its audit record: request id (echoed as X-Request-Id), the token's subject
  // and the ids of the records it wrote (the log table keeps the subject of each event as well).
  app.use('*', async (c, next) => {
    const started = performance.now();
    const given = c.req.header('x-request-id');
    const requestId = given !== undefined && REQUEST_ID.test(given) ? given : randomUUID();
    c.set('requestId', requestId);
    // Set before the handler builds its response: a header added to a finished response makes
    // Hono rebuild it as a web-stream Response (about a third of a write's worker CPU in the
    // bench profile, see docs/benchmarks.md), while one set here is part of the response from
    // the start and @hono/node-server writes it straight to the socket.
    c.header('X-Request-Id', requestId);
    await next();
    const seconds = (performance.now() - started) / 1000;
    const pattern = routePath(c, -1);
    const route = pattern === '*' || pattern === '/*' ? '(unmatched)' : pattern;
    const status = c.res.status;
    metrics.http.requestDuration.observe({ route, method: c.req.method, status: String(status) }, seconds);
    if (!route.startsWith('/api')) return;
    log.info(
      {
        requestId,
        method: c.req.method,
        route,
        status,
        sub: c.get('principal')?.sub ?? null,
        recordIds: c.get('recordIds') ?? [],
        ms: Math.round(seconds * 10_000) / 10,
      },
      'request',
    );
  });

  app.onError((err, c) => {
    const appError = toAppError(err);
    if (appError.status >= 500) {
      log.error(
        { err, code: appError.code, route: routePath(c, -1), requestId: c.get('requestId') },
        'request failed',
      );
    }
    countMutations(c, resultOf(appError));
    if (appError.code === 'rate_limited') {
      const retry = (appError.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
      if (retry !== undefined) c.header('Retry-After', String(retry));
    }
    return c.json(appError.toBody(), appError.status as 400);
  });
  app.notFound((c) => c.json(new AppError('not_found', 'No such route').toBody(), 404));

  /** Counts a failed request's mutations (labelled when the model/action became known). */
  const countMutations = (c: Context<Env>, result: MutationResult) => {
    for (const label of c.get('mutationLabels') ?? []) {
      metrics.mutations.inc({ model: label.model, action: label.action, result });
    }
  };

  app.route(
    '/',
    createOpsRoutes({
      registry,
      isDraining: deps.isDraining ?? (() => false),
      // Postgres and Redis are shared by every worker: reported, never a reason for 503 (§8).
      // An in-process bus (standalone) is this process's own, so it stays a readiness check.
      readiness: async (): Promise<Record<string, boolean>> =>
        bus.kind === 'memory' ? { bus: bus.isHealthy() } : {},
      dependencies: async () => ({
        postgres: await pingDatabase(pool),
        ...(bus.kind === 'redis' ? { redis: bus.isHealthy() } : {}),
      }),
    }),
  );

  /** Authenticates, then charges the subject's rate limit. */
  const authenticate = async (c: Context<Env>): Promise<Principal> => {
    const principal = await verifyToken(bearerToken(c.req.header('authorization')));
    const decision = limiter.take(principal.sub);
    if (!decision.allowed) {
      metrics.rateLimited.inc();
      throw new AppError('rate_limited', 'Too many requests; retry later', {
        details: { retryAfterSeconds: decision.retryAfterSeconds },
      });
    }
    c.set('principal', principal);
    return principal;
  };

  const idempotencyKey = (c: Context<Env>): string | null => {
    const header = c.req.header('idempotency-key');
    if (header === undefined) return null;
    const parsed = IdempotencyKey.safeParse(header);
    if (!parsed.success) {
      throw new AppError('bad_request', 'Invalid Idempotency-Key header', {
        details: [{ path: 'Idempotency-Key', message: parsed.error.issues[0]?.message ?? 'invalid' }],
      });
    }
    return parsed.data;
  };

  const modelOf = (c: Context<Env>, action: string): ModelDef => {
    const model = models.forPath(c.req.param('model') ?? '');
    if (!model) {
      throw new AppError('not_found', `Unknown model path /api/${c.req.param('model')}`, {
        details: { known: models.models.map((m) => m.path) },
      });
    }
    c.set('mutationLabels', [{ model: model.name, action }]);
    return model;
  };

  /** Every write goes through the commit pipeline, which may share its transaction with others. */
  const commitAndAnswer = async (c: Context<Env>, principal: Principal, plans: PlannedMutation[]) => {
    c.set(
      'recordIds',
      plans.map((p) => p.id),
    );
    const outcomes = await pipeline.commit({ principal, mutations: plans }, undefined, answerAfter);
    countOutcomes(plans, outcomes);
    return outcomes;
  };

  const commitOne = async (c: Context<Env>, principal: Principal, plan: PlannedMutation) =>
    (await commitAndAnswer(c, principal, [plan]))[0]!;

  const countOutcomes = (plans: PlannedMutation[], outcomes: MutationOutcome[]) => {
    outcomes.forEach((outcome, i) => {
      const plan = plans[i]!;
      if (outcome.replayed) metrics.idempotentReplays.inc();
      metrics.mutations.inc({
        model: plan.model,
        action: plan.action,
        result: outcome.replayed ? 'replayed' : 'ok',
      });
    });
  };

  const answerOne = (c: Context<Env>, outcome: MutationOutcome) => {
    if (outcome.replayed) c.header('Idempotent-Replayed', 'true');
    return c.json(outcome.body, outcome.status);
  };

  // The streaming upload of appends (stream-upload.ts): one request per reply, one commit per window.
  const appendStreams = createAppendStreams(
    {
      commit: createAppendBatcher((member, onCommitted) => pipeline.commit(member, onCommitted), {
        ...APPEND_BATCHER_DEFAULTS,
        trace,
      }),
      charge: (sub) => limiter.take(sub),
      count: (model, result) => metrics.mutations.inc({ model, action: 'append', result }),
      log,
      isDraining: deps.isDraining ?? (() => false),
      trace,
    },
    {
      ...APPEND_STREAM_DEFAULTS,
      coalesceMs: deps.config?.STREAM_COALESCE_MS ?? APPEND_STREAM_DEFAULTS.coalesceMs,
      coalescePieces: deps.config?.STREAM_COALESCE_PIECES ?? APPEND_STREAM_DEFAULTS.coalescePieces,
      ...deps.config?.APPEND_STREAM,
      maxLineBytes: bodyLimit,
    },
  );
  app.post('/api/:model/:id/append-stream', async (c) => {
    const model = modelOf(c, 'append');
    const principal = await authenticate(c);
    const id = parsePathId(c.req.param('id'));
    c.set('recordIds', [id]);
    // Counted per commit by the stream itself, not per request.
    c.set('mutationLabels', []);
    return appendStreams.open(c.req.raw, principal, model, id, c.env?.incoming, c.env?.outgoing);
  });

  // The batch route comes first so `mutations` is never taken for a model path.
  app.post('/api/mutations', async (c) => {
    const principal = await authenticate(c);
    const body = await readJsonBody(c.req.raw, bodyLimit);
    labelBatch(c, body, models.names);
    const plans = planBatch(body, models);
    const outcomes = await commitAndAnswer(c, principal, plans);
    const replayedAll = outcomes.every((o) => o.replayed);
    if (replayedAll) c.header('Idempotent-Replayed', 'true');
    return c.json({ results: outcomes.map((o) => o.body) } satisfies MutationBatchResult, 200);
  });

  app.post('/api/:model', async (c) => {
    const model = modelOf(c, 'insert');
    const principal = await authenticate(c);
    const key = idempotencyKey(c);
    const body = await readJsonBody(c.req.raw, bodyLimit);
    const plan = planCreate(model, body, { key, method: 'POST', path: `/api/${model.path}` });
    return answerOne(c, await commitOne(c, principal, plan));
  });

  // Contract v1.1: a piece of streamed text, offset-checked in UTF-16 code units.
  app.post('/api/:model/:id/append', async (c) => {
    const model = modelOf(c, 'append');
    const principal = await authenticate(c);
    const id = parsePathId(c.req.param('id'));
    const key = idempotencyKey(c);
    const body = await readJsonBody(c.req.raw, bodyLimit);
    const plan = planAppend(model, id, body, {
      key,
      method: 'POST',
      path: `/api/${model.path}/${id}/append`,
    });
    return answerOne(c, await commitOne(c, principal, plan));
  });

  app.patch('/api/:model/:id', async (c) => {
    const model = modelOf(c, 'update');
    const principal = await authenticate(c);
    const id = parsePathId(c.req.param('id'));
    const key = idempotencyKey(c);
    const body = await readJsonBody(c.req.raw, bodyLimit);
    const plan = planUpdate(model, id, body, {
      key,
      method: 'PATCH',
      path: `/api/${model.path}/${id}`,
    });
    return answerOne(c, await commitOne(c, principal, plan));
  });

  app.delete('/api/:model/:id', async (c) => {
    const model = modelOf(c, 'delete');
    const principal = await authenticate(c);
    const id = parsePathId(c.req.param('id'));
    const key = idempotencyKey(c);
    const plan = planDelete(model, id, { key, method: 'DELETE', path: `/api/${model.path}/${id}` });
    return answerOne(c, await commitOne(c, principal, plan));
  });

  return app;
}

/** Labels a batch's entries for `sync_mutations_total` before validation can fail. */
function labelBatch(c: Context<Env>, body: unknown, modelNames: readonly string[]): void {
  const entries = (body as { mutations?: unknown } | null)?.mutations;
  if (!Array.isArray(entries)) {
    c.set('mutationLabels', [{ model: 'unknown', action: 'unknown' }]);
    return;
  }
  const known = (value: unknown, allowed: readonly string[]) =>
    typeof value === 'string' && allowed.includes(value) ? value : 'unknown';
  c.set(
    'mutationLabels',
    entries.slice(0, 500).map((entry) => ({
      model: known(entry?.model, modelNames),
      action: known(entry?.action, ['insert', 'update', 'delete', 'append']),
    })),
  );
}

function resultOf(error: AppError): MutationResult {
  if (error.code === 'conflict' || error.code === 'idempotency_conflict') return 'conflict';
  return error.status < 500 ? 'client_error' : 'error';
}
