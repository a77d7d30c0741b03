import { randomUUID } from 'node:crypto';
import {
  type Bus,
  createLogger,
  createMemoryBus,
  createRegistry,
  type Logger,
  type Pool,
  type Registry,
} from '@openagents/sync-server-kit';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { testAuth, tokenFor } from '../../../test/support/tokens';
import { type ApiAppConfig, createApiApp } from '../src/index';

/** Row counts of everything a write can touch; a rejected request must leave them unchanged. */
export interface Counts {
  agents: number;
  messages: number;
  payments: number;
  code_changes: number;
  reasoning_steps: number;
  sync_events: number;
  sync_scopes: number;
  idempotency_keys: number;
}

export interface ApiHarness {
  db: TestDatabase;
  app: ReturnType<typeof createApiApp>;
  registry: Registry;
  bus: Bus;
  /** A token granting every scope. */
  token: string;
  request: SendRequest;
  /** A second app over the same database and bus with other settings (limits, rate). */
  withConfig(config: ApiAppConfig): SendRequest;
  counts(): Promise<Counts>;
  /** Events of a scope, ascending. */
  events(scope: string): Promise<Record<string, unknown>[]>;
  /** Creates an agent (and returns it) through the API. */
  createAgent(orgId?: string): Promise<{ id: string; org_id: string }>;
  createMessage(agentId: string): Promise<{ id: string; agent_id: string }>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export type SendRequest = (
  method: string,
  path: string,
  body?: unknown,
  init?: RequestOptions,
) => Promise<Response>;

export interface RequestOptions {
  token?: string | null;
  headers?: Record<string, string>;
  /** Sent as-is instead of JSON.stringify(body). */
  raw?: BodyInit;
}

/** A fresh database and an API app over it (memory bus unless given), driven by `app.request`. */
export async function createApiHarness(
  options: { bus?: Bus; config?: ApiAppConfig; pool?: Pool; label?: string; log?: Logger } = {},
): Promise<ApiHarness> {
  const db = await createTestDatabase(options.label ?? 'api');
  const registry = createRegistry('api-test', { defaultMetrics: false });
  const bus = options.bus ?? createMemoryBus();
  const log = options.log ?? createLogger({ name: 'api-test', level: 'silent' });
  const build = (config: ApiAppConfig | undefined) =>
    createApiApp({
      pool: options.pool ?? db.pool,
      bus,
      auth: testAuth,
      log,
      registry,
      config: { RATE_LIMIT_PER_SECOND: 0, ...config },
    });
  const app = build(options.config);
  const token = await tokenFor(['*']);
  const sender =
    (target: ReturnType<typeof createApiApp>): SendRequest =>
    async (method, path, body, init = {}) => {
      const headers: Record<string, string> = { ...init.headers };
      const bearer = init.token === undefined ? token : init.token;
      if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
      const hasType = Object.keys(headers).some((k) => k.toLowerCase() === 'content-type');
      if ((body !== undefined || init.raw !== undefined) && !hasType)
        headers['content-type'] = 'application/json';
      const requestInit: RequestInit & { duplex?: 'half' } = { method, headers };
      if (init.raw !== undefined) {
        requestInit.body = init.raw;
        if (init.raw instanceof ReadableStream) requestInit.duplex = 'half';
      } else if (body !== undefined) requestInit.body = JSON.stringify(body);
      return target.request(path, requestInit);
    };

  const harness: ApiHarness = {
    db,
    app,
    registry,
    bus,
    token,
    request: sender(app),
    withConfig: (config) => sender(build(config)),
    async counts() {
      const { rows } = await db.pool.query<Counts>(
        `SELECT (SELECT count(*) FROM agents)::int AS agents, (SELECT count(*) FROM messages)::int AS messages,
                (SELECT count(*) FROM payments)::int AS payments, (SELECT count(*) FROM code_changes)::int AS code_changes,
                (SELECT count(*) FROM reasoning_steps)::int AS reasoning_steps,
                (SELECT count(*) FROM sync_events)::int AS sync_events,
                (SELECT coalesce(sum(last_id), 0) FROM sync_scopes)::int AS sync_scopes,
                (SELECT count(*) FROM idempotency_keys)::int AS idempotency_keys`,
      );
      return rows[0]!;
    },
    async events(scope) {
      const { rows } = await db.pool.query(
        'SELECT id, scope, model, model_id, action, data, mutation_id FROM sync_events WHERE scope = $1 ORDER BY id',
        [scope],
      );
      return rows;
    },
    async createAgent(orgId = randomUUID()) {
      const res = await harness.request('POST', '/api/agents', { org_id: orgId, name: 'Agent' });
      if (res.status !== 201) throw new Error(`createAgent: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { data: { id: string; org_id: string } }).data;
    },
    async createMessage(agentId) {
      const res = await harness.request('POST', '/api/messages', {
        agent_id: agentId,
        role: 'user',
        content: 'hi',
      });
      if (res.status !== 201) throw new Error(`createMessage: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { data: { id: string; agent_id: string } }).data;
    },
    async metric(name, labels = {}) {
      const metric = registry.getSingleMetric(name);
      if (!metric) return 0;
      const { values } = await metric.get();
      return values
        .filter((v) =>
          Object.entries(labels).every(
            ([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want,
          ),
        )
        .filter(
          (v) =>
            !('metricName' in v) || !String((v as { metricName?: string }).metricName).endsWith('_bucket'),
        )
        .reduce((sum, v) => sum + v.value, 0);
    },
    async close() {
      await bus.close();
      await db.drop();
    },
  };
  return harness;
}
