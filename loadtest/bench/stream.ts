/**
 * `npm run bench:stream`: how many agent replies streaming at 30 tokens/s, 3 viewers each, this
 * machine sustains with everything on it (Postgres, a private Redis, ONE mutation worker, two
 * gateways, the delta service and the load driver), and the same for whole-text PATCH per token.
 *
 * Steps up the number of concurrent replies; a step passes when every check of the stream
 * scenario holds (every viewer ends with the writer's text, every event once, in order), token →
 * viewer p99 ≤ 50 ms, token → durable p99 ≤ 100 ms, and Postgres commits ≤ 100/s per worker —
 * all over the steady window, which leaves out each reply's first second (its stream opening,
 * reported apart). Per step it prints CPU per 1,000 tokens for each tier (from /proc, over the
 * steady window), the CPU share of the machine, the ceiling that CPU cost implies, and the
 * binding constraint. One step with the client package's stream writer (`upload: client`)
 * shows what the driver's own upload saves. Writes its section into docs/benchmarks.md.
 * Bounded: steps that would not fit the time budget are skipped, and a watchdog ends it.
 *
 * Env: STREAM_STEPS (e.g. "100,300,500"), PATCH_STEPS, CLIENT_STEPS (each "none" to skip),
 * STREAM_TOKENS (per reply, default 300), STREAM_VIEWERS (3), STREAM_TPS (30),
 * STREAM_BUDGET_S (steps start only if expected to end within it, default 540), BENCH_NO_DOC.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg } from 'node:os';
import pg from 'pg';
import { markdownTable, updateBenchmarkSection } from '../../test/support/bench';
import { silentProgress } from '../driver/progress';
import { passed, type ScenarioResult } from '../driver/result';
import { runStream, STREAM_DEFAULTS } from '../driver/scenarios/stream';
import { formatSummary } from '../driver/summary';
import { createSyncTarget } from '../driver/sync-target';
import { type LocalStack, startLocalStack } from './local-stack';
import { readCpuSeconds } from './rss';

function steps(name: string, fallback: number[]): number[] {
  const raw = process.env[name] ?? '';
  if (raw === 'none') return [];
  const list = raw.split(',').filter(Boolean).map(Number);
  if (list.some((n) => !Number.isInteger(n) || n <= 0))
    throw new Error(`${name}: whole numbers > 0, comma-separated`);
  return list.length > 0 || raw !== '' ? list : fallback;
}
const APPEND_STEPS = steps('STREAM_STEPS', [50, 100, 200, 300, 400, 500]);
const PATCH_STEPS = steps('PATCH_STEPS', [25, 50, 100]);
const CLIENT_STEPS = steps('CLIENT_STEPS', [100]);
const TOKENS = Number(process.env.STREAM_TOKENS ?? 300);
const VIEWERS = Number(process.env.STREAM_VIEWERS ?? 3);
const TPS = Number(process.env.STREAM_TPS ?? 30);
const BUDGET_MS = Number(process.env.STREAM_BUDGET_S ?? 540) * 1000;
/** The budget decides which steps start; the watchdog only catches a step that hangs. */
const WATCHDOG_MS = BUDGET_MS + 5 * 60_000;
const DRIVER_THREADS = Math.max(2, availableParallelism());
const CORES = cpus().length;
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
  // The driver's process: its main thread (writers) and its worker threads (viewers).
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

/** How a step writes: append through the driver's upload or the client's writer, or PATCH. */
type Writing = 'append' | 'append (client writer)' | 'patch';

interface StepFigures {
  writing: Writing;
  replies: number;
  ok: boolean;
  why: string;
  binding: string;
  tokensPerSecond: number;
  viewerP50: number;
  viewerP99: number;
  durableP99: number;
  openingViewerP99: number;
  openingDurableP99: number;
  pgCommitsPerSecond: number;
  cpuPerKiloToken: Record<Tier, number>;
  /** CPU of every tier over the steady window, as a share of the machine's cores. */
  cpuShare: number;
  wallMs: number;
  result: ScenarioResult;
}

const metric = (r: ScenarioResult, name: string, field: string) => {
  const v = (r.metrics[name] as Record<string, unknown> | undefined)?.[field];
  return typeof v === 'number' ? v : Number.NaN;
};

/** CPU ms per 1,000 tokens summed over tiers (optionally without the driver). */
function cpuTotal(f: Pick<StepFigures, 'cpuPerKiloToken'>, withDriver = true): number {
  return TIERS.reduce((t, tier) => t + (tier === 'driver' && !withDriver ? 0 : f.cpuPerKiloToken[tier]), 0);
}

/** Replies at TPS that the machine's cores would carry at this CPU cost per token. */
function cpuCeiling(msPerKiloToken: number): number {
  return (CORES * 1e6) / msPerKiloToken / TPS;
}

/**
 * The constraint closest to (or furthest past) its limit: a failed check first, then the largest
 * of p99s and commit rate over their targets and the CPU share of the machine.
 */
function bindingConstraint(
  result: ScenarioResult,
  f: Pick<StepFigures, 'viewerP99' | 'durableP99' | 'pgCommitsPerSecond' | 'cpuShare'>,
): string {
  const failed = result.checks.filter((c) => !c.ok).map((c) => c.name);
  if (failed.length > 0) return `checks: ${failed.join('; ')}`;
  const ratios: [string, number][] = [
    [`token→viewer p99 ${f.viewerP99.toFixed(0)}/${VIEWER_P99_MS} ms`, f.viewerP99 / VIEWER_P99_MS],
    [`token→durable p99 ${f.durableP99.toFixed(0)}/${DURABLE_P99_MS} ms`, f.durableP99 / DURABLE_P99_MS],
    [
      `PG commits ${f.pgCommitsPerSecond.toFixed(0)}/${COMMITS_PER_WORKER} per s`,
      f.pgCommitsPerSecond / COMMITS_PER_WORKER,
    ],
    [`CPU ${(f.cpuShare * 100).toFixed(0)}% of ${CORES} cores`, f.cpuShare],
  ];
  const [name, ratio] = ratios.reduce((a, b) => (b[1] > a[1] || !Number.isFinite(a[1]) ? b : a));
  return `${name} (${Number.isFinite(ratio) ? ratio.toFixed(2) : '–'}×)`;
}

async function step(s: LocalStack, writing: Writing, replies: number, tokens = TOKENS): Promise<StepFigures> {
  const stepBegan = Date.now();
  const target = createSyncTarget({
    apiUrls: s.apiUrls,
    gatewayUrls: s.gatewayUrls,
    deltaUrl: s.deltaUrl,
    secret: s.secret,
  });
  const pids = tierPids(s);
  // CPU and commits over the steady window only: setup (agents, messages, the viewers'
  // bootstraps), each reply's stream opening and the end-of-run checks are not what a token costs.
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
      mode: writing === 'patch' ? 'patch' : 'append',
      upload: writing === 'append (client writer)' ? 'client' : 'driver',
      replies,
      tokens,
      viewers: VIEWERS,
      tokensPerSecond: TPS,
      onStreaming: (phase) => {
        if (phase === 'steady') {
          cpu0 = cpuNow(pids);
          window0 = Date.now();
          marks.push(
            xactCommits(s.db.url).then((n) => {
              commits0 = n;
            }),
          );
        } else if (phase === 'steady-end') {
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
    { workers: DRIVER_THREADS, progress: silentProgress },
  );
  await Promise.all(marks);
  const seconds = (window1 - window0) / 1000;
  const commits = commits1 - commits0;
  const steadyTokens = metric(result, 'steady_tokens_written', 'value');
  const cpuPerKiloToken = Object.fromEntries(
    TIERS.map((t) => [t, ((cpu1[t] - cpu0[t]) / steadyTokens) * 1e6]),
  ) as Record<Tier, number>;
  const cpuShare = TIERS.reduce((sum, t) => sum + (cpu1[t] - cpu0[t]), 0) / seconds / CORES;
  const viewerP99 = metric(result, 'token_to_viewer_ms', 'p99');
  const durableP99 = metric(result, 'token_durable_ms', 'p99');
  // Commits over the steady window, per second, per worker.
  const pgCommitsPerSecond = commits / seconds / s.apiUrls.length;
  const problems: string[] = [];
  if (!passed(result)) problems.push('checks failed');
  if (!(viewerP99 <= VIEWER_P99_MS)) problems.push(`viewer p99 ${viewerP99.toFixed(0)} ms`);
  if (!(durableP99 <= DURABLE_P99_MS)) problems.push(`durable p99 ${durableP99.toFixed(0)} ms`);
  if (!(pgCommitsPerSecond <= COMMITS_PER_WORKER))
    problems.push(`${pgCommitsPerSecond.toFixed(0)} commits/s`);
  const figures = {
    viewerP99,
    durableP99,
    pgCommitsPerSecond,
    cpuShare,
  };
  const binding = bindingConstraint(result, figures);
  const wallMs = Date.now() - stepBegan;
  log(
    `${writing} × ${replies}: ${problems.length ? problems.join(', ') : 'ok'}; binding: ${binding}; ` +
      `driver ${cpuPerKiloToken.driver.toFixed(0)} ms/1k tokens; step ${(wallMs / 1000).toFixed(0)} s\n${formatSummary(result)}`,
  );
  return {
    writing,
    replies,
    ok: problems.length === 0,
    why: problems.join(', ') || 'ok',
    binding,
    tokensPerSecond: metric(result, 'steady_tokens_written', 'perSecond'),
    viewerP50: metric(result, 'token_to_viewer_ms', 'med'),
    ...figures,
    openingViewerP99: metric(result, 'opening_token_to_viewer_ms', 'p99'),
    openingDurableP99: metric(result, 'opening_token_durable_ms', 'p99'),
    cpuPerKiloToken,
    wallMs,
    result,
  };
}

/**
 * Runs `list` in order while the budget lasts. A step starts only if, scaled from the previous
 * one by replies, it should end within the budget. Past a failing step it goes on only while the
 * failures are targets (latency, commits) rather than broken checks, and stops at the second in
 * a row.
 */
async function ladder(
  s: LocalStack,
  writing: Writing,
  list: number[],
  figures: StepFigures[],
): Promise<void> {
  let last: StepFigures | undefined;
  let failures = 0;
  for (const replies of list) {
    const expectedMs = last ? (last.wallMs * replies) / last.replies : 0;
    if (Date.now() + expectedMs > began + BUDGET_MS) {
      log(`${writing} × ${replies}: skipped, ~${(expectedMs / 1000).toFixed(0)} s would pass the budget`);
      break;
    }
    const f = await step(s, writing, replies);
    figures.push(f);
    last = f;
    if (f.ok) {
      failures = 0;
      continue;
    }
    failures++;
    if (!passed(f.result) || failures >= 2) break;
  }
}

async function main(): Promise<void> {
  stack = await startLocalStack({
    apiWorkers: 1,
    gateways: 2,
    // Reads are not what this measures: the run reads each scope's head once at the end.
    env: { READ_RATE_PER_SECOND: '0' },
  });
  log(`stack up: api ${stack.apiUrls.join(',')}, gateways ${stack.gatewayUrls.join(',')}`);
  // Not reported: fresh processes compile their TypeScript and JIT their hot paths first, which
  // would otherwise be charged to the first step.
  const warmUp = await step(stack, 'append', Math.min(20, APPEND_STEPS[0] ?? 20), 90);
  log(`warm-up done (${warmUp.why})`);
  const figures: StepFigures[] = [];
  await ladder(stack, 'append', APPEND_STEPS, figures);
  await ladder(stack, 'append (client writer)', CLIENT_STEPS, figures);
  await ladder(stack, 'patch', PATCH_STEPS, figures);
  await stack.stop();
  stack = undefined;

  const best = (writing: Writing) =>
    figures.filter((f) => f.writing === writing && f.ok).reduce((m, f) => Math.max(m, f.replies), 0);
  const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const table = markdownTable(
    [
      'writing',
      'replies',
      'tokens/s',
      'token→viewer p50 / p99 ms',
      'token→durable p99 ms',
      'opening: →viewer / →durable p99 ms',
      'PG commits/s per worker',
      ...TIERS.map((t) => `${t} CPU ms/1k tok`),
      'all tiers ms/1k tok',
      'CPU ceiling (replies): all / without driver',
      'binding constraint',
      'result',
    ],
    figures.map((f) => [
      f.writing,
      f.replies,
      fmt(f.tokensPerSecond, 0),
      `${fmt(f.viewerP50)} / ${fmt(f.viewerP99)}`,
      fmt(f.durableP99),
      `${fmt(f.openingViewerP99, 0)} / ${fmt(f.openingDurableP99, 0)}`,
      fmt(f.pgCommitsPerSecond),
      ...TIERS.map((t) => fmt(f.cpuPerKiloToken[t], 0)),
      fmt(cpuTotal(f), 0),
      `${fmt(cpuCeiling(cpuTotal(f)), 0)} / ${fmt(cpuCeiling(cpuTotal(f, false)), 0)}`,
      f.binding,
      f.why,
    ]),
  );
  const client = figures.find((f) => f.writing === 'append (client writer)');
  const same = client && figures.find((f) => f.writing === 'append' && f.replies === client.replies);
  const writerLine =
    client && same
      ? ` At ${client.replies} replies the driver costs ${fmt(same.cpuPerKiloToken.driver, 0)} ms of CPU per 1,000 tokens with its own upload and ${fmt(client.cpuPerKiloToken.driver, 0)} ms with the client package's stream writer (${fmt(client.cpuPerKiloToken.driver / same.cpuPerKiloToken.driver)}×).`
      : '';
  const header = `Measured ${new Date().toISOString().slice(0, 16)}Z on ${CORES} × ${cpus()[0]?.model.trim() ?? 'cpu'}, load average ${loadAtStart.toFixed(1)} at the start. Everything on this machine: Postgres 15, a private Redis, 1 mutation worker, 2 gateways, delta, the driver (${DRIVER_THREADS} viewer threads; writers in its main thread, one timer for all, one streaming upload per reply with pre-serialised NDJSON lines). Each reply: ${TOKENS} tokens of 9 characters at ${TPS} tokens/s, ${VIEWERS} WebSocket viewers; replies start spread over ${STREAM_DEFAULTS.startSpreadMs / 1000} s.`;
  const summary = `**Sustained: ${best('append')} concurrent replies with append** (${best('append') * TPS} tokens/s), **${best('patch')} with whole-text PATCH per token**. A step passes when every viewer ends with the writer's text, every event arrives once and in order, token→viewer p99 ≤ ${VIEWER_P99_MS} ms, token→durable p99 ≤ ${DURABLE_P99_MS} ms and Postgres commits ≤ ${COMMITS_PER_WORKER}/s per worker (pg_stat_database.xact_commit of the run's database). Latencies, commits and CPU are read over the **steady window**: from when every reply is past its first ${STREAM_DEFAULTS.openingMs / 1000} s (its stream opening: the upload's connection and first commit; those tokens' p99s are the "opening" column) to when the first reply writes its last token. CPU per 1,000 tokens is from /proc (the driver's from its own process: writers and viewer threads); the CPU ceiling is the replies at ${TPS} tokens/s that ${CORES} cores would carry at that cost, with and without the driver's share. The binding constraint is the target closest to (or furthest past) its limit, or the CPU share of the machine. Past a failing step the ladder goes on only while the failure is a target and time allows.${writerLine}`;
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
