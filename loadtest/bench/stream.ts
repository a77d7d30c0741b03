/**
 * `npm run bench:stream`: how many agent replies streaming at 30 tokens/s, 3 viewers each, this
 * machine sustains with everything on it (Postgres, a private Redis, ONE mutation worker, two
 * gateways, the delta service and the load driver), and the same for whole-text PATCH per token.
 *
 * Steps up the number of concurrent replies; a step passes when every check of the stream
 * scenario holds (every viewer ends with the writer's text, every event once, in order), token →
 * viewer p99 ≤ 50 ms, token → durable p99 ≤ 100 ms, and Postgres commits ≤ 100/s per worker.
 * Per step it prints CPU seconds per 1,000 tokens for each tier, read from /proc. Writes its
 * section into docs/benchmarks.md. Bounded: a watchdog ends it.
 *
 * Env: STREAM_STEPS (e.g. "100,300,500"), PATCH_STEPS, STREAM_TOKENS (per reply, default 150),
 * STREAM_VIEWERS (3), STREAM_TPS (30).
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg } from 'node:os';
import pg from 'pg';
import { markdownTable, updateBenchmarkSection } from '../../test/support/bench';
import { silentProgress } from '../driver/progress';
import { passed, type ScenarioResult } from '../driver/result';
import { runStream, STREAM_DEFAULTS, type StreamOptions } from '../driver/scenarios/stream';
import { formatSummary } from '../driver/summary';
import { createSyncTarget } from '../driver/sync-target';
import { type LocalStack, startLocalStack } from './local-stack';
import { readCpuSeconds } from './rss';

function steps(name: string, fallback: number[]): number[] {
  const list = (process.env[name] ?? '').split(',').filter(Boolean).map(Number);
  if (list.some((n) => !Number.isInteger(n) || n <= 0))
    throw new Error(`${name}: whole numbers > 0, comma-separated`);
  return list.length > 0 ? list : fallback;
}
const APPEND_STEPS = steps('STREAM_STEPS', [100, 200, 300, 400, 500, 600]);
const PATCH_STEPS = steps('PATCH_STEPS', [25, 50, 100, 200]);
const TOKENS = Number(process.env.STREAM_TOKENS ?? 150);
const VIEWERS = Number(process.env.STREAM_VIEWERS ?? 3);
const TPS = Number(process.env.STREAM_TPS ?? 30);
const WATCHDOG_MS = 14 * 60_000;
/** Targets of issue #14. */
const VIEWER_P99_MS = 50;
const DURABLE_P99_MS = 100;
const COMMITS_PER_WORKER = 100;

const began = Date.now();
const loadAtStart = loadavg()[0]!;
const log = (line: string) =>
  process.stderr.write(`[bench:stream ${((Date.now() - began) / 1000).toFixed(0)}s] ${line}\n`);
let stack: LocalStack | undefined;
const watchdog = setTimeout(() => {
  log('watchdog: out of time; stopping');
  void (stack?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
}, WATCHDOG_MS);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void (stack?.stop() ?? Promise.resolve()).finally(() => process.exit(130)));
}

type Tier = 'postgres' | 'redis' | 'api' | 'gateways' | 'delta' | 'driver';
const TIERS: Tier[] = ['postgres', 'redis', 'api', 'gateways', 'delta', 'driver'];

/** The pids of each tier (Postgres: every process of the server's owner, i.e. the whole cluster). */
function tierPids(s: LocalStack): Record<Exclude<Tier, 'driver'>, number[]> {
  const pgrep = (args: string[]) => {
    try {
      return execFileSync('pgrep', args, { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const of = (name: string) => s.services.filter((p) => p.name === name).map((p) => p.proc.pid!);
  return {
    postgres: pgrep(['-u', 'postgres', 'postgres']),
    redis: pgrep(['-f', `redis-server .*:${s.redis.port}`]),
    api: of('api'),
    gateways: of('gateway'),
    delta: of('delta'),
  };
}

function cpuNow(pids: Record<Exclude<Tier, 'driver'>, number[]>): Record<Tier, number> {
  const sum = (list: number[]) => list.reduce((t, pid) => t + (readCpuSeconds(pid) || 0), 0);
  const self = process.cpuUsage();
  return {
    postgres: sum(pids.postgres),
    redis: sum(pids.redis),
    api: sum(pids.api),
    gateways: sum(pids.gateways),
    delta: sum(pids.delta),
    driver: (self.user + self.system) / 1e6,
  };
}

async function xactCommits(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const r = await client.query<{ n: string }>(
      'SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()',
    );
    return Number(r.rows[0]!.n);
  } finally {
    await client.end();
  }
}

interface StepFigures {
  mode: StreamOptions['mode'];
  replies: number;
  ok: boolean;
  why: string;
  tokensPerSecond: number;
  viewerP50: number;
  viewerP99: number;
  durableP99: number;
  pgCommitsPerSecond: number;
  cpuPerKiloToken: Record<Tier, number>;
  result: ScenarioResult;
}

const metric = (r: ScenarioResult, name: string, field: string) => {
  const v = (r.metrics[name] as Record<string, unknown> | undefined)?.[field];
  return typeof v === 'number' ? v : Number.NaN;
};

async function step(s: LocalStack, mode: StreamOptions['mode'], replies: number): Promise<StepFigures> {
  const target = createSyncTarget({
    apiUrls: s.apiUrls,
    gatewayUrls: s.gatewayUrls,
    deltaUrl: s.deltaUrl,
    secret: s.secret,
  });
  const pids = tierPids(s);
  // CPU and commits over the streaming window only: setup (agents, messages, the viewers'
  // bootstraps) and the end-of-run checks are not what a token costs.
  let cpu0 = cpuNow(pids);
  let cpu1 = cpu0;
  let commits0 = 0;
  let commits1 = 0;
  let window0 = 0;
  let window1 = 0;
  const marks: Promise<void>[] = [];
  const result = await runStream(
    target,
    {
      ...STREAM_DEFAULTS,
      mode,
      replies,
      tokens: TOKENS,
      viewers: VIEWERS,
      tokensPerSecond: TPS,
      onStreaming: (phase) => {
        if (phase === 'start') {
          cpu0 = cpuNow(pids);
          window0 = Date.now();
          marks.push(
            xactCommits(s.db.url).then((n) => {
              commits0 = n;
            }),
          );
        } else {
          cpu1 = cpuNow(pids);
          window1 = Date.now();
          marks.push(
            xactCommits(s.db.url).then((n) => {
              commits1 = n;
            }),
          );
        }
      },
    },
    { workers: Math.max(2, availableParallelism()), progress: silentProgress },
  );
  await Promise.all(marks);
  const seconds = (window1 - window0) / 1000;
  const commits = commits1 - commits0;
  const tokens = metric(result, 'tokens_written', 'value');
  const cpuPerKiloToken = Object.fromEntries(
    TIERS.map((t) => [t, ((cpu1[t] - cpu0[t]) / tokens) * 1000]),
  ) as Record<Tier, number>;
  const viewerP99 = metric(result, 'token_to_viewer_ms', 'p99');
  const durableP99 = metric(result, 'token_durable_ms', 'p99');
  // Commits over the streaming window, per second, per worker.
  const pgCommitsPerSecond = commits / seconds / s.apiUrls.length;
  const problems: string[] = [];
  if (!passed(result)) problems.push('checks failed');
  if (!(viewerP99 <= VIEWER_P99_MS)) problems.push(`viewer p99 ${viewerP99.toFixed(0)} ms`);
  if (!(durableP99 <= DURABLE_P99_MS)) problems.push(`durable p99 ${durableP99.toFixed(0)} ms`);
  if (!(pgCommitsPerSecond <= COMMITS_PER_WORKER))
    problems.push(`${pgCommitsPerSecond.toFixed(0)} commits/s`);
  log(`${mode} × ${replies}: ${problems.length ? problems.join(', ') : 'ok'}\n${formatSummary(result)}`);
  return {
    mode,
    replies,
    ok: problems.length === 0,
    why: problems.join(', ') || 'ok',
    tokensPerSecond: metric(result, 'tokens_written', 'perSecond'),
    viewerP50: metric(result, 'token_to_viewer_ms', 'med'),
    viewerP99,
    durableP99,
    pgCommitsPerSecond,
    cpuPerKiloToken,
    result,
  };
}

async function main(): Promise<void> {
  stack = await startLocalStack({
    apiWorkers: 1,
    gateways: 2,
    // Reads are not what this measures: the run reads each scope's head once at the end.
    env: { READ_RATE_PER_SECOND: '0' },
  });
  log(`stack up: api ${stack.apiUrls.join(',')}, gateways ${stack.gatewayUrls.join(',')}`);
  const figures: StepFigures[] = [];
  for (const [mode, list] of [
    ['append', APPEND_STEPS],
    ['patch', PATCH_STEPS],
  ] as const) {
    for (const replies of list) {
      const f = await step(stack, mode, replies);
      figures.push(f);
      // Past the first failing step the machine is saturated: larger steps only take longer.
      if (!f.ok) break;
    }
  }
  await stack.stop();
  stack = undefined;

  const best = (mode: string) =>
    figures.filter((f) => f.mode === mode && f.ok).reduce((m, f) => Math.max(m, f.replies), 0);
  const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const table = markdownTable(
    [
      'writing',
      'replies',
      'tokens/s',
      'token→viewer p50 / p99 ms',
      'token→durable p99 ms',
      'PG commits/s per worker',
      ...TIERS.map((t) => `${t} CPU ms/1k tok`),
      'result',
    ],
    figures.map((f) => [
      f.mode,
      f.replies,
      fmt(f.tokensPerSecond, 0),
      `${fmt(f.viewerP50)} / ${fmt(f.viewerP99)}`,
      fmt(f.durableP99),
      fmt(f.pgCommitsPerSecond),
      ...TIERS.map((t) => fmt(f.cpuPerKiloToken[t] * 1000, 0)),
      f.why,
    ]),
  );
  const header = `Measured ${new Date().toISOString().slice(0, 16)}Z on ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, load average ${loadAtStart.toFixed(1)} at the start. Everything on this machine: Postgres 15, a private Redis, 1 mutation worker, 2 gateways, delta, the driver (${Math.max(2, availableParallelism())} threads). Each reply: ${TOKENS} tokens of 9 characters at ${TPS} tokens/s, ${VIEWERS} WebSocket viewers.`;
  const summary = `**Sustained: ${best('append')} concurrent replies with append** (${best('append') * TPS} tokens/s), **${best('patch')} with whole-text PATCH per token**. A step passes when every viewer ends with the writer's text, every event arrives once and in order, token→viewer p99 ≤ ${VIEWER_P99_MS} ms, token→durable p99 ≤ ${DURABLE_P99_MS} ms and Postgres commits ≤ ${COMMITS_PER_WORKER}/s per worker (pg_stat_database.xact_commit of the run's database while the replies stream). CPU per 1,000 tokens (from /proc) is also read over the streaming window only: creating agents and messages and the viewers' bootstraps are outside it. Steps stop at the first that fails.`;
  const markdown = `### Streaming replies (\`npm run bench:stream\`)\n\n${header}\n\n${summary}\n\n${table}\n`;
  process.stdout.write(`\n${markdown}\n`);
  if (!process.env.BENCH_NO_DOC) updateBenchmarkSection('stream', markdown);
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await stack?.stop().catch(() => {});
    process.exit(1);
  },
);
