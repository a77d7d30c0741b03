import { randomUUID } from 'node:crypto';
import type {
  BootstrapResponse,
  DeltaResponse,
  MutationBatchResult,
  WriteResult,
} from '@openagents/sync-protocol';
import { createAuth } from '@openagents/sync-server-kit';
import { type LoadTarget, type PublishAck, requestJson, sumMetric, toWebSocketUrl } from './target';
import type { ConnectionSpec } from './worker-messages';

export interface SyncTargetOptions {
  /** Mutation workers (POST /api/...), used round-robin. Behind a load balancer: the base URL. */
  apiUrls: string[];
  /** Gateways (WebSocket /sync and /metrics), connections spread round-robin. */
  gatewayUrls: string[];
  /** Delta service (GET /sync/bootstrap, /sync/delta). */
  deltaUrl: string;
  /** Signs tokens when given; otherwise `token` is used as is. */
  secret?: string;
  token?: string;
  /** Where the gateways' Prometheus metrics are; defaults to the gateway URLs. */
  metricsUrls?: string[];
}

/** The sync stack as a load target: scopes are agents, a publish is a Message write. */
export interface SyncTarget extends LoadTarget {
  /** The bearer token the driver reads with. */
  token(): Promise<string>;
  /** A writer's token: writes rotate over several subjects, as many users would. */
  writerToken(): Promise<string>;
  /** The next mutation worker, round-robin. */
  apiUrl(): string;
  readonly apiUrls: readonly string[];
  /**
   * Commits (Postgres transactions) the mutation workers made so far: `sync_commit_duration_seconds`
   * counts summed over every worker's /metrics; undefined when one cannot be read.
   */
  apiCommits(): Promise<number | undefined>;
  readonly deltaUrl: string;
  /** GET /sync/bootstrap?scope= — every page, merged (`nextCursor` followed to the last). */
  bootstrap(scope: string): Promise<BootstrapResponse>;
  /** GET /sync/delta?scope=&lastSyncId=&limit= */
  delta(scope: string, lastSyncId: number, limit?: number): Promise<DeltaResponse>;
  /** Creates an agent in a fresh org; its scope is `agent:<id>`. */
  createAgent(): Promise<string>;
}

const WRITER_SUBJECTS = 32;

export function createSyncTarget(options: SyncTargetOptions): SyncTarget {
  const auth = options.secret ? createAuth({ secret: options.secret }) : undefined;
  if (!auth && !options.token) throw new Error('the sync target needs a secret or a token');
  // Writes rotate over several subjects: the api rate-limits per subject, and a load test is many
  // users, not one. With a ready-made token every request uses that token.
  const tokens = new Map<number, Promise<string>>();
  const tokenOf = (n: number) => {
    let t = tokens.get(n);
    if (!t) {
      t = auth
        ? auth.sign({ sub: `loadtest-${n}`, scopes: ['*'] }, 4 * 3600)
        : Promise.resolve(options.token!);
      tokens.set(n, t);
    }
    return t;
  };
  const token = () => tokenOf(0);
  let nextWriter = 0;
  const writerToken = () => tokenOf(nextWriter++ % WRITER_SUBJECTS);
  let nextApi = 0;
  const apiUrl = () => options.apiUrls[nextApi++ % options.apiUrls.length]!;
  const orgId = randomUUID();

  const createAgent = async () => {
    const created = await requestJson<WriteResult>(`${apiUrl()}/api/agents`, {
      body: { org_id: orgId, name: `loadtest ${randomUUID().slice(0, 8)}` },
      token: await token(),
    });
    return `agent:${String(created.data.id)}`;
  };

  return {
    name: 'sync',
    token,
    writerToken,
    apiUrl,
    apiUrls: options.apiUrls,
    async apiCommits() {
      const readings = await Promise.all(
        options.apiUrls.map((url) =>
          fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })
            .then((r) => r.text())
            .then((text) => sumMetric(text, 'sync_commit_duration_seconds_count'))
            .catch(() => undefined),
        ),
      );
      if (readings.some((r) => r === undefined)) return undefined;
      return readings.reduce((sum: number, r) => sum + r!, 0);
    },
    deltaUrl: options.deltaUrl,
    createAgent,
    async prepareScopes(count) {
      const scopes: string[] = [];
      let started = 0;
      const lane = async () => {
        while (started < count) {
          started++;
          scopes.push(await createAgent());
        }
      };
      await Promise.all(Array.from({ length: Math.min(8, count) }, lane));
      return scopes;
    },
    async connectionSpec(index, scopes): Promise<ConnectionSpec> {
      const gateway = options.gatewayUrls[index % options.gatewayUrls.length]!;
      return {
        url: `${toWebSocketUrl(gateway)}/sync?token=${encodeURIComponent(await token())}`,
        protocol: 'sync',
        scopes,
      };
    },
    async publish(scope, count, contentBytes): Promise<PublishAck> {
      const agentId = scope.slice('agent:'.length);
      const content = 'x'.repeat(contentBytes);
      if (count === 1) {
        const result = await requestJson<WriteResult>(`${apiUrl()}/api/messages`, {
          body: { agent_id: agentId, role: 'user', content },
          token: await writerToken(),
        });
        return { first: result.syncId, last: result.syncId };
      }
      const mutations = Array.from({ length: count }, () => ({
        model: 'Message',
        action: 'insert',
        data: { agent_id: agentId, role: 'user', content },
      }));
      const batch = await requestJson<MutationBatchResult>(`${apiUrl()}/api/mutations`, {
        body: { mutations },
        token: await writerToken(),
      });
      const ids = batch.results.map((r) => r.syncId);
      return { first: Math.min(...ids), last: Math.max(...ids) };
    },
    async deltaRequests() {
      let total: Record<string, number> | undefined;
      for (const url of options.metricsUrls ?? options.gatewayUrls) {
        const text = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) }).then((r) =>
          r.text(),
        );
        for (const kind of ['delta', 'bootstrap', 'heads']) {
          const value = sumMetric(text, 'sync_gateway_delta_requests_total', { kind });
          if (value === undefined) continue;
          total ??= {};
          total[kind] = (total[kind] ?? 0) + value;
        }
      }
      // What reached Postgres: the delta service shares one read among gateways that accept it.
      const deltaText = await fetch(`${options.deltaUrl}/metrics`, { signal: AbortSignal.timeout(5000) })
        .then((r) => r.text())
        .catch(() => '');
      const queries = sumMetric(deltaText, 'sync_delta_reads_total', { kind: 'delta', source: 'postgres' });
      if (queries !== undefined && total) total.postgres_delta = queries;
      return total;
    },
    async gatewayRssBytes() {
      const readings = await Promise.all(
        (options.metricsUrls ?? options.gatewayUrls).map((url) =>
          fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })
            .then((r) => r.text())
            .then((text) => sumMetric(text, 'sync_process_resident_memory_bytes'))
            .catch(() => undefined),
        ),
      );
      // A sum missing one gateway would read as a drop in memory: all of them or nothing.
      if (readings.some((r) => r === undefined)) return undefined;
      return readings.reduce((sum: number, r) => sum + r!, 0);
    },
    async bootstrap(scope) {
      // Every page (contract v1.1: bounded answers), merged as a client would apply them.
      const base = `${options.deltaUrl}/sync/bootstrap?scope=${encodeURIComponent(scope)}`;
      let page = await requestJson<BootstrapResponse>(base, { token: await token(), timeoutMs: 60_000 });
      const models: BootstrapResponse['models'] = { ...page.models };
      while (page.nextCursor !== undefined) {
        page = await requestJson<BootstrapResponse>(`${base}&cursor=${encodeURIComponent(page.nextCursor)}`, {
          token: await token(),
          timeoutMs: 60_000,
        });
        for (const model of Object.keys(page.models) as (keyof typeof models)[]) {
          models[model] = [...(models[model] ?? []), ...page.models[model]];
        }
      }
      return { ...page, models };
    },
    async delta(scope, lastSyncId, limit) {
      const q = `scope=${encodeURIComponent(scope)}&lastSyncId=${lastSyncId}${limit ? `&limit=${limit}` : ''}`;
      return requestJson<DeltaResponse>(`${options.deltaUrl}/sync/delta?${q}`, { token: await token() });
    },
  };
}
