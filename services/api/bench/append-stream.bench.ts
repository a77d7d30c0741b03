/**
 * `npm run bench:append-stream` — what one mutation worker pays for streamed replies: N replies
 * writing 30 tokens/s each through the streaming upload (`POST …/append-stream`), the worker a
 * real process (`services/api/src/main.ts`, real Postgres, Redis bus), the load a separate
 * process (append-stream-driver.ts) that also listens on the bus like a gateway.
 *
 * Per row: worker CPU ms per 1,000 tokens and Postgres CPU ms per 1,000 tokens (the bench
 * database's backends, both from /proc, over the measuring window only), Postgres commits/s (the worker's `sync_commit_duration_seconds_count`), events and bytes
 * published per token, and token → durable (ack) and token → published (on the bus) p50/p99.
 *
 * Baselines in the same run: one `POST …/append` per token (the contract's append, no upload), and
 * with BENCH_BASELINE_ROOT=<checkout> the streaming upload as another checkout's worker runs it
 * (e.g. `git archive main | tar -x -C /tmp/base` with a `node_modules` symlink to this one's):
 * the before/after of a change, measured side by side. The baseline's worker writes to its own
 * database, migrated by that checkout's migrations (so a change of `sync_commit` is compared too).
 *
 * Env: APPEND_STREAM_N (replies per row, default "100,500"), APPEND_STREAM_POST_N (per-token POST
 * rows, default "100"), BENCH_TPS (30), BENCH_SECONDS (8, after 3 s of warm-up), BENCH_POLICIES
 * (coalescing settings to compare, `;`-separated env sets like "STREAM_COALESCE_MS=70"),
 * BENCH_PROFILE=<dir> (the worker writes a V8 CPU profile there), BENCH_SEED_CHARS (each reply's
 * field already holds this many characters when the row starts: the cost in the middle of a long
 * reply, default 0), BENCH_WRITE_DOC=1 (rewrite the `append-stream` section of docs/benchmarks.md).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { markdownTable, percentile, updateBenchmarkSection } from '../../../test/support/bench';
import type { TestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { TEST_REDIS_URL, uniqueChannelPrefix } from '../../../test/support/redis';
import { TEST_JWT_SECRET, tokenFor } from '../../../test/support/tokens';
import type { DriverInput, DriverResult } from './append-stream-driver';
import {
  backendCpuBetween,
  backendCpuMs,
  createBenchDatabase,
  processCpuMs,
  ROOT,
  replyText,
} from './bench-db';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const list = (name: string, fallback: string) =>
  (process.env[name] ?? fallback).split(',').filter(Boolean).map(Number);
const STREAM_N = list('APPEND_STREAM_N', '100,500');
const POST_N = list('APPEND_STREAM_POST_N', '100');
const TPS = Number(process.env.BENCH_TPS ?? 30);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WARMUP = 3;
const POLICIES = (process.env.BENCH_POLICIES ?? '')
  .split(';')
  .filter(Boolean)
  // Split at the first `=` only: a value may hold one (NODE_OPTIONS=--max-semi-space-size=64).
  .map((set) =>
    Object.fromEntries(
      set.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    ),
  );
const BASELINE_ROOT = process.env.BENCH_BASELINE_ROOT;
const SEED_CHARS = Number(process.env.BENCH_SEED_CHARS ?? 0);
const began = Date.now();
const progress = (line: string) =>
  process.stderr.write(`[bench:append-stream ${((Date.now() - began) / 1000).toFixed(0)}s] ${line}\n`);

const CURRENT = 'upload';
const BASELINE = 'upload (baseline checkout)';

interface Row {
  setup: string;
  replies: number;
  result: DriverResult;
  cpuMs: number;
  /** CPU of the bench database's Postgres backends over the window. */
  pgCpuMs: number;
  commits: number;
  seconds: number;
}

/* Worker process --------------------------------------------------------------------------------- */

interface Worker {
  url: string;
  child: ChildProcess;
}

async function startWorker(db: TestDatabase, prefix: string, root: string, env: Record<string, string>) {
  const port = await freePort();
  const profile = process.env.BENCH_PROFILE
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`]
    : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', 'services/api/src/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_CHANNEL_PREFIX: prefix,
      SYNC_JWT_SECRET: TEST_JWT_SECRET,
      RATE_LIMIT_PER_SECOND: '0',
      LOG_LEVEL: 'warn',
      MIGRATE_ON_START: 'false',
      PG_POOL_MAX: '10',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {}
    if (i > 300) throw new Error('worker did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child } satisfies Worker;
}

async function stopWorker(worker: Worker): Promise<void> {
  const exited = new Promise((r) => worker.child.once('exit', r));
  worker.child.kill('SIGTERM');
  await exited;
}

async function commitsSoFar(worker: Worker): Promise<number> {
  try {
    const text = await (await fetch(`${worker.url}/metrics`)).text();
    return Number(/^sync_commit_duration_seconds_count(?:\{[^}]*\})? (\S+)/m.exec(text)?.[1] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}

/* One row ----------------------------------------------------------------------------------------- */

async function seedReplies(db: TestDatabase, n: number): Promise<{ ids: string[]; scopes: string[] }> {
  const org = randomUUID();
  const agents = Array.from({ length: n }, () => randomUUID());
  const ids = Array.from({ length: n }, () => randomUUID());
  await db.pool.query(
    `INSERT INTO agents (id, org_id, name) SELECT a, $2, 'bench' FROM unnest($1::uuid[]) AS a`,
    [agents, org],
  );
  await db.pool.query(
    `INSERT INTO messages (id, agent_id, role, content)
       SELECT m, a, 'assistant', $3 FROM unnest($1::uuid[], $2::uuid[]) AS t(m, a)`,
    [ids, agents, replyText(SEED_CHARS)],
  );
  return { ids, scopes: ['agent:*'] };
}

async function runRow(
  db: TestDatabase,
  setup: string,
  mode: DriverInput['mode'],
  replies: number,
  root: string,
  env: Record<string, string>,
): Promise<Row> {
  const prefix = uniqueChannelPrefix();
  progress(`${setup}, ${replies} replies: seeding`);
  const { ids, scopes } = await seedReplies(db, replies);
  const worker = await startWorker(db, prefix, root, env);
  progress('worker ready; driving');
  try {
    const input: DriverInput = {
      url: worker.url,
      token: await tokenFor(scopes, 'bench-agent'),
      mode,
      ids,
      tokensPerSecond: TPS,
      warmupSeconds: WARMUP,
      seconds: SECONDS,
      redisUrl: TEST_REDIS_URL,
      channelPrefix: prefix,
      startOffset: replyText(SEED_CHARS).length,
    };
    const driver = spawn(
      process.execPath,
      ['--import', 'tsx', `${HERE}append-stream-driver.ts`, JSON.stringify(input)],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    let window: { cpu: number; pg: Map<number, number>; commits: number; at: number } | undefined;
    let measured: { cpuMs: number; pgCpuMs: number; commits: number; seconds: number } | undefined;
    const sample = async () => ({
      cpu: processCpuMs(worker.child.pid!),
      pg: await backendCpuMs(db.pool),
      commits: await commitsSoFar(worker),
      at: performance.now(),
    });
    const samples: Promise<void>[] = [];
    driver.stdout!.setEncoding('utf8');
    driver.stdout!.on('data', (text: string) => {
      out += text;
      if (text.includes('window-start'))
        samples.push(
          sample().then((s) => {
            window = s;
          }),
        );
      if (text.includes('window-end'))
        samples.push(
          (async () => {
            const end = await sample();
            await samples[0];
            measured = {
              cpuMs: end.cpu - window!.cpu,
              pgCpuMs: backendCpuBetween(window!.pg, end.pg),
              commits: end.commits - window!.commits,
              seconds: (end.at - window!.at) / 1000,
            };
          })(),
        );
    });
    const code = await new Promise<number | null>((r) => driver.once('exit', r));
    await Promise.all(samples);
    if (code !== 0 || !measured) throw new Error(`driver exited with ${code}`);
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as DriverResult;
    return { setup, replies, result, ...measured };
  } finally {
    await stopWorker(worker);
  }
}

/* Cost split --------------------------------------------------------------------------------------- */

interface CostFit {
  /** CPU µs per token (the worker's: read, parse, check, queue). */
  perToken: number;
  /** CPU µs per event (the worker's: member, commit, publish, acknowledgement; Postgres: the append). */
  perEvent: number;
}

/**
 * Splits the worker's CPU into a part per token and a part per event by least squares over rows
 * of one code version with different tokens per event (cpuMs = a·tokens + b·events): how many
 * tokens an event carries depends on the window AND on how loaded the machine is (a slow commit
 * lets more pieces gather), so CPU per token alone is not comparable between rows.
 */
function fitCost(rows: Row[], cpuMs: (row: Row) => number = (row) => row.cpuMs): CostFit | undefined {
  let tt = 0;
  let te = 0;
  let ee = 0;
  let tc = 0;
  let ec = 0;
  for (const r of rows) {
    const t = r.result.tokens;
    const e = r.result.events;
    const c = cpuMs(r) * 1000;
    tt += t * t;
    te += t * e;
    ee += e * e;
    tc += t * c;
    ec += e * c;
  }
  const det = tt * ee - te * te;
  // Rows of nearly the same tokens per event leave the split to noise (negative parts and all).
  const perEvent = rows.map((r) => r.result.tokens / Math.max(1, r.result.events));
  if (rows.length < 2 || Math.max(...perEvent) < 1.3 * Math.min(...perEvent)) return undefined;
  if (Math.abs(det) < 1e-6 * tt * ee) return undefined;
  return { perToken: (tc * ee - ec * te) / det, perEvent: (tt * ec - te * tc) / det };
}

/* Report -------------------------------------------------------------------------------------------- */

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');

function describe(row: Row): (string | number)[] {
  const r = row.result;
  const perK = (row.cpuMs / r.tokens) * 1000;
  return [
    row.setup,
    row.replies,
    r.tokens,
    fmt(perK, 1),
    fmt((row.pgCpuMs / r.tokens) * 1000, 1),
    fmt(row.commits / row.seconds),
    fmt(r.tokens / Math.max(1, r.events), 1),
    fmt(r.eventBytes / Math.max(1, r.events)),
    fmt(r.eventBytes / r.tokens, 0),
    fmt((row.cpuMs * 1000) / Math.max(1, r.events), 0),
    fmt((row.pgCpuMs * 1000) / Math.max(1, r.events), 0),
    `${fmt(percentile(r.durableMs, 50))} / ${fmt(percentile(r.durableMs, 99))}`,
    `${fmt(percentile(r.publishedMs, 50))} / ${fmt(percentile(r.publishedMs, 99))}`,
    r.unacked + r.errors.length,
  ];
}

const HEADER = [
  'setup',
  'replies',
  'tokens',
  'api CPU ms / 1k tokens',
  'Postgres CPU ms / 1k tokens',
  'commits/s',
  'tokens / event',
  'bytes / event',
  'event bytes / token',
  'api CPU µs / event',
  'Postgres CPU µs / event',
  'durable p50 / p99 ms',
  'published p50 / p99 ms',
  'unacked + errors',
];

async function main(): Promise<void> {
  const load = loadavg()[0]!;
  const db = await createBenchDatabase(ROOT, 'append_stream_bench');
  const baseDb = BASELINE_ROOT ? await createBenchDatabase(BASELINE_ROOT, 'append_stream_bench') : undefined;
  const rows: Row[] = [];
  const show = (row: Row) => {
    rows.push(row);
    process.stderr.write(`${describe(row).join('  ')}\n`);
    for (const e of row.result.errors.slice(0, 3)) process.stderr.write(`  error: ${e}\n`);
  };
  try {
    const policies = POLICIES.length > 0 ? POLICIES : [{}];
    for (const n of STREAM_N) {
      for (const env of policies) {
        const label = Object.entries(env)
          .map(([k, v]) => ` ${k}=${v}`)
          .join('');
        if (BASELINE_ROOT && baseDb)
          show(await runRow(baseDb, `${BASELINE}${label}`, 'stream', n, BASELINE_ROOT, env));
        show(await runRow(db, `${CURRENT}${label}`, 'stream', n, ROOT, env));
      }
    }
    for (const n of POST_N) show(await runRow(db, 'POST /append per token', 'post', n, ROOT, {}));
  } finally {
    await db.drop();
    await baseDb?.drop();
  }
  const table = markdownTable(HEADER, rows.map(describe));
  const ratios: string[] = [];
  for (const [tier, cpuMs] of [
    ['the worker', (row: Row) => row.cpuMs],
    ['Postgres', (row: Row) => row.pgCpuMs],
  ] as const) {
    const fits = [CURRENT, ...(BASELINE_ROOT ? [BASELINE] : [])].map((code) => ({
      code,
      fit: fitCost(
        rows.filter((r) =>
          code === CURRENT
            ? !r.setup.startsWith(BASELINE) && r.setup.startsWith(CURRENT)
            : r.setup.startsWith(BASELINE),
        ),
        cpuMs,
      ),
    }));
    for (const { code, fit } of fits) {
      ratios.push(
        fit
          ? `${tier}, ${code}: ${fmt(fit.perToken, 1)} µs per token + ${fmt(fit.perEvent, 0)} µs per event → ${fmt(fit.perToken + fit.perEvent / 2, 1)} ms per 1k tokens at 2 tokens per event, ${fmt(fit.perToken + fit.perEvent / 3, 1)} at 3`
          : `${tier}, ${code}: too few rows with different tokens per event to split the cost`,
      );
    }
    const [now, before] = fits;
    if (now?.fit && before?.fit) {
      const at = (f: CostFit, k: number) => f.perToken + f.perEvent / k;
      ratios.push(
        `at 2 tokens per event ${tier} spends ${fmt(at(before.fit, 2) / at(now.fit, 2), 2)}× less CPU per token than the baseline (${fmt(at(before.fit, 3) / at(now.fit, 3), 2)}× at 3)`,
      );
    }
  }
  const summary = [
    `Measured ${new Date().toISOString().slice(0, 16)}Z, ${cpus().length} cores, load average ${load.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end; ${TPS} tokens/s per reply, ${SECONDS} s window after ${WARMUP} s warm-up${SEED_CHARS > 0 ? `, each reply's field ${SEED_CHARS} characters long at the start` : ''}.`,
    '',
    table,
    '',
    ...ratios,
  ].join('\n');
  process.stdout.write(`${summary}\n`);
  if (process.env.BENCH_WRITE_DOC === '1') updateBenchmarkSection('append-stream', summary);
}

await main();
