import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { type Pool, readHeads } from '@openagents/sync-server-kit';
import { createTestDatabase, type TestDatabase } from './pg';
import { freePort } from './ports';
import { type RedisServer, startRedisServer, uniqueChannelPrefix } from './redis';
import {
  assertStatesMatch,
  assertStreamsComplete,
  diffStates,
  type ScopeState,
  type SyncProbe,
  stateFromModels,
  waitForHeads,
} from './sync-client-probe';
import { TEST_JWT_SECRET, tokenFor } from './tokens';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export type ServiceName = 'api' | 'delta' | 'gateway' | 'standalone';

export interface ServiceProcess {
  name: ServiceName;
  port: number;
  url: string;
  env: Record<string, string>;
  proc: ChildProcess;
  /** Lines the process wrote (stdout and stderr), for assertions and post-mortems. */
  output: string[];
  /** Sends a signal and waits for exit. SIGKILL simulates a crash. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Starts one service as its own Node process (`services/<name>/src/main.ts`), exactly as
 * `npm run start:<name>` would, and waits until its `/readyz` answers 200.
 */
export async function startService(
  name: ServiceName,
  options: { port: number; env: Record<string, string>; readyTimeoutMs?: number; waitReady?: boolean },
): Promise<ServiceProcess> {
  const env = { ...process.env, LOG_LEVEL: 'warn', ...options.env, PORT: String(options.port) };
  const proc = spawn(process.execPath, ['--import', 'tsx', `services/${name}/src/main.ts`], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line) output.push(line);
    if (output.length > 5000) output.splice(0, output.length - 5000);
  };
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const service: ServiceProcess = {
    name,
    port: options.port,
    url: `http://127.0.0.1:${options.port}`,
    env: options.env,
    proc,
    output,
    exited,
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
  };
  if (options.waitReady !== false) await waitReady(service, options.readyTimeoutMs ?? 30_000);
  return service;
}

/** Polls `/readyz` until it answers 200; throws with the process output if it exits or times out. */
export async function waitReady(service: ServiceProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (service.proc.exitCode !== null || service.proc.signalCode !== null) {
      throw new Error(
        `${service.name} exited (${service.proc.exitCode}):\n${service.output.slice(-30).join('\n')}`,
      );
    }
    try {
      const res = await fetch(`${service.url}/readyz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${service.name} not ready after ${timeoutMs} ms:\n${service.output.slice(-30).join('\n')}`,
  );
}

/** Starts a killed (or stopped) service again as a new process on the same port with the same env. */
export function restartService(
  service: ServiceProcess,
  options: { readyTimeoutMs?: number; waitReady?: boolean } = {},
): Promise<ServiceProcess> {
  return startService(service.name, { port: service.port, env: service.env, ...options });
}

/** The last `lines` lines of each service's output, headed by its name and port, for failure messages. */
export function outputTails(services: readonly ServiceProcess[], lines = 25): string {
  return services
    .map((s) => {
      const state = s.proc.exitCode !== null || s.proc.signalCode !== null ? ' (exited)' : '';
      return `--- ${s.name}:${s.port}${state} ---\n${s.output.slice(-lines).join('\n') || '(no output)'}`;
    })
    .join('\n');
}

/* A whole multi-node stack ------------------------------------------------------------------- */

export interface SyncStackOptions {
  /** Number of mutation workers (default 2). */
  apiWorkers?: number;
  /** Number of gateways (default 2). */
  gateways?: number;
  /** Extra environment of every gateway, e.g. `HEAD_CHECK_INTERVAL_MS`. */
  gatewayEnv?: Record<string, string>;
  /** Extra environment of every mutation worker. */
  apiEnv?: Record<string, string>;
  /** Extra environment of the delta service. */
  deltaEnv?: Record<string, string>;
  /** Names the test database. */
  label?: string;
}

/**
 * Real processes wired as in production: one migrated test database, a private redis-server (so a
 * test can restart it), mutation workers, one delta service and gateways, all sharing a channel
 * prefix unique to this run and the test JWT secret.
 */
export interface SyncStack {
  db: TestDatabase;
  redis: RedisServer;
  channelPrefix: string;
  apis: ServiceProcess[];
  delta: ServiceProcess;
  /** Current gateway processes; `restartGateway` replaces an entry. */
  gateways: ServiceProcess[];
  /** `ws://127.0.0.1:<port>/sync` of each gateway, stable across restarts. */
  gatewayUrls: string[];
  /** `http://127.0.0.1:<port>` of each mutation worker. */
  apiUrls: string[];
  /** Every current process. */
  services(): ServiceProcess[];
  /** Starts gateway `index` again on its port (after a kill) and waits until it is ready. */
  restartGateway(index: number): Promise<ServiceProcess>;
  /** Output tails of every process, for failure messages. */
  tails(lines?: number): string;
  /** Stops every process, Redis, and drops the database. */
  stop(): Promise<void>;
}

export async function startSyncStack(options: SyncStackOptions = {}): Promise<SyncStack> {
  const db = await createTestDatabase(options.label ?? 'stack');
  const started: ServiceProcess[] = [];
  let redis: RedisServer | undefined;
  try {
    redis = await startRedisServer();
    const channelPrefix = uniqueChannelPrefix();
    const common = { SYNC_JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'warn' };
    const deltaPort = await freePort();
    const apiPorts = await Promise.all(Array.from({ length: options.apiWorkers ?? 2 }, () => freePort()));
    const gatewayPorts = await Promise.all(Array.from({ length: options.gateways ?? 2 }, () => freePort()));
    const track = async (p: Promise<ServiceProcess>) => {
      const s = await p;
      started.push(s);
      return s;
    };
    const spawnAll = <T>(ports: number[], start: (port: number) => Promise<T>) =>
      Promise.all(ports.map(start));
    // Start everything, then wait for readiness together: tsx start-up dominates and overlaps.
    const deltaP = track(
      startService('delta', {
        port: deltaPort,
        env: { ...common, DATABASE_URL: db.url, ...options.deltaEnv },
        waitReady: false,
      }),
    );
    const apisP = spawnAll(apiPorts, (port) =>
      track(
        startService('api', {
          port,
          env: {
            ...common,
            DATABASE_URL: db.url,
            REDIS_URL: redis!.url,
            REDIS_CHANNEL_PREFIX: channelPrefix,
            MIGRATE_ON_START: 'false',
            RATE_LIMIT_PER_SECOND: '0',
            ...options.apiEnv,
          },
          waitReady: false,
        }),
      ),
    );
    const gatewaysP = spawnAll(gatewayPorts, (port) =>
      track(
        startService('gateway', {
          port,
          env: {
            ...common,
            REDIS_URL: redis!.url,
            REDIS_CHANNEL_PREFIX: channelPrefix,
            DELTA_URL: `http://127.0.0.1:${deltaPort}`,
            ...options.gatewayEnv,
          },
          waitReady: false,
        }),
      ),
    );
    const [delta, apis, gateways] = await Promise.all([deltaP, apisP, gatewaysP]);
    await Promise.all([delta, ...apis, ...gateways].map((s) => waitReady(s, 45_000)));
    const stack: SyncStack = {
      db,
      redis,
      channelPrefix,
      apis,
      delta,
      gateways,
      gatewayUrls: gatewayPorts.map((p) => `ws://127.0.0.1:${p}/sync`),
      apiUrls: apis.map((a) => a.url),
      services: () => [...stack.apis, stack.delta, ...stack.gateways],
      async restartGateway(index) {
        const old = stack.gateways[index]!;
        await old.kill('SIGKILL');
        const fresh = await restartService(old, { readyTimeoutMs: 30_000 });
        stack.gateways[index] = fresh;
        return fresh;
      },
      tails: (lines = 25) => outputTails(stack.services(), lines),
      async stop() {
        await Promise.all(stack.services().map((s) => s.kill('SIGKILL')));
        await redis!.stop();
        await db.drop();
      },
    };
    return stack;
  } catch (err) {
    const tails = outputTails(started, 30);
    await Promise.all(started.map((s) => s.kill('SIGKILL')));
    await redis?.stop();
    await db.drop();
    throw new Error(`stack failed to start: ${(err as Error).message}\n${tails}`);
  }
}

/* Writes against a running stack ------------------------------------------------------------- */

/** An HTTP error answered by a mutation worker. */
export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what} -> ${status}: ${body.slice(0, 300)}`);
    this.name = 'ApiCallError';
  }
}

export interface WriteAnswer {
  data: Record<string, unknown>;
  scope: string;
  syncId: number;
}

/**
 * Writes through the REST API of the mutation workers, round-robin or on a chosen worker. Every
 * call carries an `Idempotency-Key`, so a retry after a lost answer or a 503 cannot write twice;
 * 429/503 and connection errors are retried a few times with backoff.
 */
export class ApiWriter {
  readonly #urls: readonly string[];
  readonly #token: string;
  #next = 0;
  #keys = 0;
  readonly #keyPrefix = randomBytes(4).toString('hex');
  /** Calls that needed a retry (503, 429 or a connection error). */
  retries = 0;

  constructor(urls: readonly string[], token: string) {
    this.#urls = urls;
    this.#token = token;
  }

  create(path: string, body: Record<string, unknown>, worker?: number): Promise<WriteAnswer> {
    return this.#call('POST', `/api/${path}`, body, worker);
  }

  update(path: string, id: string, body: Record<string, unknown>, worker?: number): Promise<WriteAnswer> {
    return this.#call('PATCH', `/api/${path}/${id}`, body, worker);
  }

  remove(path: string, id: string, worker?: number): Promise<WriteAnswer> {
    return this.#call('DELETE', `/api/${path}/${id}`, undefined, worker);
  }

  async #call(method: string, path: string, body: unknown, worker?: number): Promise<WriteAnswer> {
    const key = `${this.#keyPrefix}-${++this.#keys}`;
    const base = this.#urls[(worker ?? this.#next++) % this.#urls.length]!;
    for (let attempt = 0; ; attempt++) {
      let status = 0;
      let text = '';
      try {
        const res = await fetch(base + path, {
          method,
          headers: {
            authorization: `Bearer ${this.#token}`,
            'idempotency-key': key,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? null : JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
        status = res.status;
        text = await res.text();
        if (res.ok) return JSON.parse(text) as WriteAnswer;
      } catch (err) {
        text = (err as Error).message;
      }
      const retryable = status === 0 || status === 429 || status === 503;
      if (!retryable || attempt >= 8) throw new ApiCallError(status, text, `${method} ${base}${path}`);
      this.retries++;
      await new Promise((r) => setTimeout(r, 50 * 2 ** Math.min(attempt, 4)));
    }
  }
}

/**
 * Fetches a scope's state from the delta service (`GET /sync/bootstrap`), following `nextCursor`
 * through every page (contract v1.1) and merging them; retries a 429 after its `Retry-After`.
 */
export async function fetchBootstrap(
  deltaUrl: string,
  token: string,
  scope: string,
): Promise<{ scope: string; models: Record<string, Record<string, unknown>[]>; lastSyncId: number }> {
  const models: Record<string, Record<string, unknown>[]> = {};
  let cursor: string | undefined;
  for (;;) {
    const query = new URLSearchParams({ scope, ...(cursor ? { cursor } : {}) });
    const res = await fetch(`${deltaUrl}/sync/bootstrap?${query}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (res.status === 429) {
      await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get('retry-after') ?? 1)));
      continue;
    }
    if (!res.ok) throw new ApiCallError(res.status, text, `GET bootstrap ${scope}`);
    const page = JSON.parse(text) as {
      models: Record<string, Record<string, unknown>[]>;
      lastSyncId: number;
      nextCursor?: string;
    };
    for (const [model, records] of Object.entries(page.models)) {
      models[model] = [...(models[model] ?? []), ...records];
    }
    cursor = page.nextCursor;
    if (!cursor) return { scope, models, lastSyncId: page.lastSyncId };
  }
}

/* A write workload over many scopes ---------------------------------------------------------- */

/** A seeded PRNG (mulberry32): a failing run can be replayed with the seed it printed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Orgs and agents with ids chosen up front, so clients can subscribe before anything exists. */
export interface ScopePlan {
  orgIds: string[];
  agents: { id: string; org_id: string }[];
  /** `org:<id>` of every org, then `agent:<id>` of every agent. */
  scopes: string[];
}

export function planScopes(orgs: number, agents: number): ScopePlan {
  const orgIds = Array.from({ length: orgs }, () => randomUUID());
  const planned = Array.from({ length: agents }, (_, i) => ({ id: randomUUID(), org_id: orgIds[i % orgs]! }));
  return {
    orgIds,
    agents: planned,
    scopes: [...orgIds.map((id) => `org:${id}`), ...planned.map((a) => `agent:${a.id}`)],
  };
}

const AGENT_STATUSES = ['idle', 'running', 'error', 'stopped'] as const;
const ROLES = ['user', 'assistant', 'system', 'tool'] as const;

/**
 * Random writes over a scope plan through the REST API: messages created, edited and deleted in
 * agent scopes, agents created and edited in org scopes. Loop `i` writes through worker
 * `i % workers`, so every worker writes at once. A record is never written by two loops at the
 * same time, so every write is expected to succeed.
 */
export class SyncWorkload {
  readonly counts = { agents: 0, messages: 0, updates: 0, deletes: 0, agentUpdates: 0 };
  readonly #writer: ApiWriter;
  readonly #plan: ScopePlan;
  readonly #random: () => number;
  readonly #idle = new Map<string, string[]>();
  readonly #workers: number;

  constructor(writer: ApiWriter, plan: ScopePlan, options: { seed: number; workers: number }) {
    this.#writer = writer;
    this.#plan = plan;
    this.#random = seededRandom(options.seed);
    this.#workers = options.workers;
    for (const agent of plan.agents) this.#idle.set(agent.id, []);
  }

  /** Creates every planned agent (an insert in its org scope). */
  async createAgents(concurrency = 6): Promise<void> {
    const queue = [...this.#plan.agents];
    await Promise.all(
      Array.from({ length: concurrency }, async (_, loop) => {
        for (let agent = queue.shift(); agent; agent = queue.shift()) {
          await this.#writer.create(
            'agents',
            { id: agent.id, org_id: agent.org_id, name: `agent ${agent.id.slice(0, 8)}` },
            loop % this.#workers,
          );
          this.counts.agents++;
        }
      }),
    );
  }

  /** Runs `ops` random writes over `concurrency` loops, or until `stop()` says so. */
  async run(options: { ops?: number; concurrency?: number; stop?: () => boolean; contentBytes?: number }) {
    let remaining = options.ops ?? Number.POSITIVE_INFINITY;
    const stop = options.stop ?? (() => false);
    await Promise.all(
      Array.from({ length: options.concurrency ?? 6 }, async (_, loop) => {
        while (remaining-- > 0 && !stop()) await this.#step(loop % this.#workers, options.contentBytes ?? 64);
      }),
    );
  }

  /** Writes `count` messages of `contentBytes` characters into one agent scope, `concurrency` at a time. */
  async burst(agentId: string, count: number, contentBytes: number, concurrency = 4): Promise<void> {
    let remaining = count;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, loop) => {
        while (remaining-- > 0) await this.#createMessage(agentId, loop % this.#workers, contentBytes);
      }),
    );
  }

  async #step(worker: number, contentBytes: number): Promise<void> {
    const agent = this.#plan.agents[Math.floor(this.#random() * this.#plan.agents.length)]!;
    const idle = this.#idle.get(agent.id)!;
    const r = this.#random();
    if (r < 0.5 || idle.length === 0) {
      await this.#createMessage(agent.id, worker, contentBytes);
    } else if (r < 0.72) {
      const id = idle.splice(Math.floor(this.#random() * idle.length), 1)[0]!;
      await this.#writer.update('messages', id, { content: this.#text(contentBytes) }, worker);
      this.counts.updates++;
      idle.push(id);
    } else if (r < 0.85) {
      const id = idle.splice(Math.floor(this.#random() * idle.length), 1)[0]!;
      await this.#writer.remove('messages', id, worker);
      this.counts.deletes++;
    } else {
      const status = AGENT_STATUSES[Math.floor(this.#random() * AGENT_STATUSES.length)]!;
      await this.#writer.update('agents', agent.id, { status }, worker);
      this.counts.agentUpdates++;
    }
  }

  async #createMessage(agentId: string, worker: number, contentBytes: number): Promise<void> {
    const role = ROLES[Math.floor(this.#random() * ROLES.length)]!;
    const answer = await this.#writer.create(
      'messages',
      { agent_id: agentId, role, content: this.#text(contentBytes) },
      worker,
    );
    this.counts.messages++;
    this.#idle.get(agentId)!.push(String(answer.data.id));
  }

  #text(bytes: number): string {
    const word = Math.floor(this.#random() * 1e9).toString(36);
    return word.repeat(Math.ceil(bytes / word.length)).slice(0, bytes);
  }
}

/* Checking a quiescent stack against its tables ----------------------------------------------- */

/**
 * The records of a scope read straight from the domain tables, shaped as the wire carries them
 * (timestamps as ISO strings): the truth a client's state must equal.
 */
export async function readScopeTables(
  pool: Pool,
  scope: string,
): Promise<Record<string, Record<string, unknown>[]>> {
  const [kind, id] = [scope.slice(0, scope.indexOf(':')), scope.slice(scope.indexOf(':') + 1)];
  const tables: [string, string, string][] =
    kind === 'org'
      ? [
          ['Agent', 'agents', 'org_id'],
          ['Payment', 'payments', 'org_id'],
        ]
      : [
          ['Message', 'messages', 'agent_id'],
          ['CodeChange', 'code_changes', 'agent_id'],
          ['ReasoningStep', 'reasoning_steps', 'agent_id'],
        ];
  const models: Record<string, Record<string, unknown>[]> = {};
  for (const [model, table, column] of tables) {
    // table and column come from the list above, never from input
    const { rows } = await pool.query(`SELECT * FROM ${table} WHERE ${column} = $1`, [id]);
    models[model] = rows.map((row: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v])),
    );
  }
  return models;
}

/**
 * Waits until the stack is quiescent for `probes` (every cursor at its scope's head in the log),
 * then asserts the guarantee: every stream contiguous with no duplicate, gap or reordering, every
 * probe's state equal to the tables, and the delta service's bootstrap equal to both. Returns the
 * heads it checked against.
 */
export async function verifyGuarantee(
  stack: SyncStack,
  probes: readonly SyncProbe[],
  options: { timeoutMs?: number } = {},
): Promise<Map<string, number>> {
  const scopes = [...new Set(probes.flatMap((p) => [...p.scopes.keys()]))];
  const heads = await readHeads(stack.db.pool, scopes);
  await waitForHeads(probes, heads, options.timeoutMs ?? 20_000);
  assertStreamsComplete(probes, heads);
  const token = await tokenFor(['*'], 'verifier');
  const truth = new Map<string, ScopeState>();
  const problems: string[] = [];
  for (const scope of scopes) {
    const tables = stateFromModels(await readScopeTables(stack.db.pool, scope));
    truth.set(scope, tables);
    const bootstrap = await fetchBootstrap(stack.delta.url, token, scope);
    if (bootstrap.lastSyncId !== heads.get(scope)) {
      problems.push(`bootstrap of ${scope} at ${bootstrap.lastSyncId}, head ${heads.get(scope)}`);
    }
    problems.push(
      ...diffStates(stateFromModels(bootstrap.models), tables).map((d) => `bootstrap ${scope}: ${d}`),
    );
  }
  if (problems.length > 0)
    throw new Error(`delta bootstrap differs from the tables:\n  ${problems.slice(0, 20).join('\n  ')}`);
  assertStatesMatch(probes, truth);
  return heads;
}

/** Polls `condition` every 20 ms; throws naming `what` after `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Sum of the samples of a metric on a service's `/metrics` (every label set, or only those
 * carrying all of `labels`); 0 when absent.
 */
export async function readMetric(
  service: ServiceProcess,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const res = await fetch(`${service.url}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name} `) && !line.startsWith(`${name}{`)) continue;
    if (wanted.some((label) => !line.includes(label))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
