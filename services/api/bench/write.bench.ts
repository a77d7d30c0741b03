/**
 * `npm run bench:write` — write throughput and latency of the mutation workers.
 *
 * A fresh database; the API served on a real HTTP port (@hono/node-server) with the in-process
 * bus and with a Redis bus; 16 and 64 concurrent clients each creating messages in a loop, half
 * of them on a few hot agents (contended scope heads) and half spread over many. As a baseline,
 * the same SQL transaction (insert the message, append its event) issued directly with `pg` at
 * the same concurrency and pool size. Writes its table to docs/benchmarks.md (section `write`).
 *
 * Environment: BENCH_SECONDS (default 4 per run).
 */
import { randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { serve } from '@hono/node-server';
import {
  appendEvents,
  type Bus,
  createLogger,
  createMemoryBus,
  createPool,
  createRedisBus,
  createRegistry,
  inTransaction,
  type Pool,
} from '@openagents/sync-server-kit';
import { Hono } from 'hono';
import { markdownTable, percentile, updateBenchmarkSection } from '../../../test/support/bench';
import { createTestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { TEST_REDIS_URL, uniqueChannelPrefix } from '../../../test/support/redis';
import { testAuth, tokenFor } from '../../../test/support/tokens';
import { createApiApp } from '../src/index';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const CONCURRENCY = [16, 64];
const HOT_AGENTS = 4;
const COLD_AGENTS = 400;
const POOL_MAX = 20;

interface RunResult {
  setup: string;
  clients: number;
  ok: number;
  errors: number;
  seconds: number;
  latenciesMs: number[];
}

const db = await createTestDatabase('bench_write');
const log = createLogger({ name: 'bench', level: 'silent' });

// Agents to write messages to: a few hot ones everybody hits, many cold ones.
const seedPool = db.pool;
const agents: string[] = [];
for (let i = 0; i < HOT_AGENTS + COLD_AGENTS; i++) agents.push(randomUUID());
await seedPool.query(
  `INSERT INTO agents (id, org_id, name) SELECT a, $2, 'bench' FROM unnest($1::uuid[]) AS a`,
  [agents, randomUUID()],
);
const pickAgent = () =>
  Math.random() < 0.5
    ? agents[Math.floor(Math.random() * HOT_AGENTS)]!
    : agents[HOT_AGENTS + Math.floor(Math.random() * COLD_AGENTS)]!;
const content = 'x'.repeat(200);

/** Runs `clients` loops of `once` for SECONDS; each loop awaits its previous call. */
async function drive(
  setup: string,
  clients: number,
  once: () => Promise<boolean>,
  seconds = SECONDS,
): Promise<RunResult> {
  const latenciesMs: number[] = [];
  let ok = 0;
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        let success = false;
        try {
          success = await once();
        } catch {
          success = false;
        }
        latenciesMs.push(performance.now() - t);
        if (success) ok++;
        else errors++;
      }
    }),
  );
  return { setup, clients, ok, errors, seconds: (performance.now() - started) / 1000, latenciesMs };
}

/**
 * The HTTP load generator, in a worker thread so the API's event loop serves requests and
 * nothing else (plain JS: the worker evaluates it as a string).
 */
const LOAD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { url, headers, agents, hot, seconds, clients, content } = workerData;
const target = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
const pick = () => Math.random() < 0.5 ? agents[Math.floor(Math.random() * hot)]
  : agents[hot + Math.floor(Math.random() * (agents.length - hot))];
const post = (body) => new Promise((resolve, reject) => {
  const req = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent,
    headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
    res.on('data', () => {});
    res.on('end', () => resolve(res.statusCode));
  });
  req.on('error', reject);
  req.end(body);
});
(async () => {
  const latencies = [];
  let ok = 0, errors = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < deadline) {
      const t = performance.now();
      try {
        const status = await post(JSON.stringify({ agent_id: pick(), role: 'assistant', content }));
        if (status === 201) ok++; else errors++;
      } catch { errors++; }
      latencies.push(performance.now() - t);
    }
  }));
  agent.destroy();
  parentPort.postMessage({ ok, errors, latencies, seconds: (performance.now() - started) / 1000 });
})();
`;

function driveHttp(
  setup: string,
  clients: number,
  url: string,
  headers: Record<string, string>,
  seconds = SECONDS,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(LOAD_WORKER, {
      eval: true,
      execArgv: [],
      workerData: { url, headers, agents, hot: HOT_AGENTS, seconds, clients, content },
    });
    worker.once('error', reject);
    worker.once('message', (m: { ok: number; errors: number; latencies: number[]; seconds: number }) => {
      void worker.terminate();
      resolve({ setup, clients, ok: m.ok, errors: m.errors, seconds: m.seconds, latenciesMs: m.latencies });
    });
  });
}

/** Sum and count of the sync_commit_mutations histogram: writes and transactions so far. */
async function commitCounts(
  registry: ReturnType<typeof createRegistry>,
): Promise<{ sum: number; count: number }> {
  const { values } = await registry.getSingleMetric('sync_commit_mutations')!.get();
  const pick = (suffix: string) =>
    values.find((v) => (v as { metricName?: string }).metricName === `sync_commit_mutations_${suffix}`)
      ?.value ?? 0;
  return { sum: pick('sum'), count: pick('count') };
}

async function benchApi(setup: string, bus: Bus, groupMax: number): Promise<RunResult[]> {
  const pool = createPool({ url: db.url, max: POOL_MAX });
  const registry = createRegistry('bench', { defaultMetrics: false });
  const app = createApiApp({
    pool,
    bus,
    auth: testAuth,
    log,
    registry,
    config: { RATE_LIMIT_PER_SECOND: 0, WRITE_GROUP_MAX: groupMax },
  });
  const port = await freePort();
  const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
  const url = `http://127.0.0.1:${port}/api/messages`;
  const headers = {
    authorization: `Bearer ${await tokenFor(['*'], 'bench')}`,
    'content-type': 'application/json',
  };
  const results: RunResult[] = [];
  try {
    await driveHttp(`${setup} (warm-up)`, 8, url, headers, 1);
    for (const clients of CONCURRENCY) {
      const before = await commitCounts(registry);
      const result = await driveHttp(setup, clients, url, headers);
      const after = await commitCounts(registry);
      const perTxn = (after.sum - before.sum) / Math.max(1, after.count - before.count);
      results.push({ ...result, setup: `${setup} (${perTxn.toFixed(1)} writes/txn)` });
    }
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await bus.close();
    await pool.end();
  }
  return results;
}

/** The floor of the HTTP path itself: the same requests answered by an empty Hono handler. */
async function benchEmptyHandler(): Promise<RunResult[]> {
  const app = new Hono();
  app.post('/api/messages', async (c) => {
    await c.req.arrayBuffer();
    return c.json({ ok: true }, 201);
  });
  const port = await freePort();
  const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
  const url = `http://127.0.0.1:${port}/api/messages`;
  const results: RunResult[] = [];
  try {
    for (const clients of CONCURRENCY) {
      results.push(
        await driveHttp('empty Hono handler (HTTP floor)', clients, url, {
          'content-type': 'application/json',
        }),
      );
    }
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return results;
}

/** The API's transaction without the API: insert the message, append its event, commit. */
async function benchDirect(): Promise<RunResult[]> {
  const pool: Pool = createPool({ url: db.url, max: POOL_MAX });
  const once = async () => {
    const agentId = pickAgent();
    const id = randomUUID();
    await inTransaction(pool, async (client) => {
      const { rows } = await client.query(
        `INSERT INTO messages (id, agent_id, role, content) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING RETURNING id, agent_id, role, content, created_at, updated_at`,
        [id, agentId, 'assistant', content],
      );
      await appendEvents(client, `agent:${agentId}`, [
        { model: 'Message', model_id: id, action: 'insert', data: rows[0], mutationId: null },
      ]);
    });
    return true;
  };
  const results: RunResult[] = [];
  try {
    await drive('direct (warm-up)', 8, once, 1);
    for (const clients of CONCURRENCY) results.push(await drive('direct pg transaction', clients, once));
  } finally {
    await pool.end();
  }
  return results;
}

const load = loadavg()[0]!.toFixed(1);
const direct = await benchDirect();
const floor = await benchEmptyHandler();
const grouped = Number(process.env.BENCH_GROUP ?? 32);
const ungrouped = 1;
const memory = [
  ...(await benchApi('API, memory bus, one transaction per write', createMemoryBus(), ungrouped)),
  ...(await benchApi('API, memory bus, group commit', createMemoryBus(), grouped)),
];
const redis = await benchApi(
  'API, Redis bus, group commit',
  createRedisBus({ url: TEST_REDIS_URL, channelPrefix: uniqueChannelPrefix() }),
  grouped,
);
const { rows } = await db.pool.query<{ events: number; messages: number }>(
  'SELECT (SELECT count(*) FROM sync_events)::int AS events, (SELECT count(*) FROM messages)::int AS messages',
);
await db.drop();

const rate = (r: RunResult) => r.ok / r.seconds;
const directAt = (clients: number) => direct.find((r) => r.clients === clients)!;
const table = markdownTable(
  ['setup', 'clients', 'mutations/s', 'p50 ms', 'p99 ms', 'errors', 'vs direct (rate)', 'vs direct (p50)'],
  [...direct, ...floor, ...memory, ...redis].map((r) => [
    r.setup,
    r.clients,
    rate(r).toFixed(0),
    percentile(r.latenciesMs, 50).toFixed(1),
    percentile(r.latenciesMs, 99).toFixed(1),
    r.errors,
    (rate(r) / rate(directAt(r.clients))).toFixed(2),
    (percentile(r.latenciesMs, 50) / percentile(directAt(r.clients).latenciesMs, 50)).toFixed(2),
  ]),
);

const markdown = `## Write path (\`npm run bench:write\`)

Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus().length} shared cores (1-minute load
average ${load} when the run started, other work running). ${SECONDS} s per run. Each client loops
\`POST /api/messages\` (200-character content) over keep-alive HTTP (\`node:http\` client in a worker thread, so the API's
event loop only serves); half the writes go to ${HOT_AGENTS} hot agents, half to ${COLD_AGENTS} others. "direct" is the same transaction (insert message + \`appendEvents\`) sent with \`pg\`
from the same process at the same concurrency, pool size ${POOL_MAX}. Ratios are API / direct at the same client count.
After the runs: ${rows[0]!.messages} messages and ${rows[0]!.events} events (one per committed write).

${table}`;
updateBenchmarkSection('write', markdown);
process.stdout.write(`${markdown}\n`);
process.exit(0);
