/**
 * `npm run bench:stream`: how many agent replies streaming at 30 tokens/s, 3 viewers each, this
 * machine sustains with everything on it (Postgres, a private Redis, ONE mutation worker, two
 * gateways, the delta service and the load driver), and the same for whole-text PATCH per token.
 *
 * Steps up the number of concurrent replies; a step passes when every check of the stream
 * scenario holds (every viewer ends with the writer's text, every event once, in order), append →
 * viewer p99 ≤ 50 ms, token → durable p99 ≤ 100 ms, and the worker's Postgres transactions ≤ 100/s (its /metrics) —
 * all over the steady window, which leaves out each reply's first second (its stream opening,
 * reported apart). Per step it prints CPU per 1,000 tokens for each tier (from /proc, over the
 * steady window), the CPU share of the machine, the ceiling that CPU cost implies, and the
 * binding constraint. One step with the client package's stream writer (`upload: client`)
 * shows what the driver's own upload saves. Writes its section into docs/benchmarks.md.
 * Bounded: steps that would not fit the time budget are skipped, and a watchdog ends it.
 *
 * Configurations: STREAM_CONFIGS lists the stacks to run the append ladder on, `;`-separated, each
 * a `,`-separated list of `coalesce=<ms>` (the worker's STREAM_COALESCE_MS), `pieces=<n>`
 * (STREAM_COALESCE_PIECES) and `ws=<mode>` (the gateways' WS_COMPRESSION), e.g.
 * "coalesce=0,ws=dedicated-8kb;coalesce=40"; default one stack with the worker's defaults. Each
 * configuration gets a fresh stack; the client-writer and PATCH ladders run on the first only.
 *
 * Latency breakdown: the worker traces one reply in STREAM_TRACE_EVERY (8) through its stages
 * (STREAM_TRACE_FILE, services/api/src/stream-trace.ts) and a tap process subscribed to the run's
 * Redis channels (bus-tap.ts) marks when each traced event reached a subscriber; joined with the
 * driver's generation time of every token, that gives, per step, each stage's time since the
 * token was generated and each stage's own time, p50 and p99 (STREAM_TRACE=off leaves it out).
 *
 * Env: STREAM_STEPS (e.g. "100,300,500"), PATCH_STEPS, CLIENT_STEPS (each "none" to skip),
 * STREAM_TOKENS (per reply, default 300), STREAM_VIEWERS (3), STREAM_TPS (30), STREAM_WARMUP_REPLIES
 * and STREAM_WARMUP_TOKENS (the unreported warm-up step; default the first step's size),
 * STREAM_BUDGET_S (steps start only if expected to end within it, default 540), BENCH_NO_DOC.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { markdownTable, updateBenchmarkSection } from '../../test/support/bench';
import { silentProgress } from '../driver/progress';
import { passed, type ScenarioResult } from '../driver/result';
import { runStream, STREAM_DEFAULTS, type WrittenReply } from '../driver/scenarios/stream';
import { openingTokens } from '../driver/stream-text';
import { formatSummary } from '../driver/summary';
import { createSyncTarget } from '../driver/sync-target';
import { type LocalStack, startLocalStack } from './local-stack';
import { readCpuSeconds } from './rss';
import {
  breakdown,
  parseStackConfigs,
  parseTrace,
  type StackConfig,
  type StageFigures,
  TRACE_STAGES,
} from './stream-breakdown';

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
/**
 * The unreported warm-up step: by default as many replies as the first step, each as long as the
 * steps' (STREAM_WARMUP_REPLIES, STREAM_WARMUP_TOKENS). A lighter one (20 replies × 90 tokens, the
 * default before 2026-12-02) left the first measured step failing 5 runs of 5 at 100–125 replies
 * (p99 62–147 ms) in a slow window where the step after it passed 2 runs of 4; after a full-size
 * warm-up the first step passed 1 run of 2 (p99 39 and 58 ms). Fresh processes JIT their hot
 * paths at the load they first meet; the first measured step should not pay for that.
 */
const WARMUP_REPLIES = Number(process.env.STREAM_WARMUP_REPLIES ?? APPEND_STEPS[0] ?? 20);
const WARMUP_TOKENS = Number(process.env.STREAM_WARMUP_TOKENS ?? TOKENS);
/** The budget decides which steps start; the watchdog only catches a step that hangs. */
const WATCHDOG_MS =
  BUDGET_MS + 5 * 60_000 * Math.max(1, (process.env.STREAM_CONFIGS ?? '').split(';').filter(Boolean).length);
const DRIVER_THREADS = Math.max(2, availableParallelism());
const CORES = cpus().length;
/** Targets of issue #14. */
const VIEWER_P99_MS = 50;
const DURABLE_P99_MS = 100;
const COMMITS_PER_WORKER = 100;
const TRACE = process.env.STREAM_TRACE !== 'off';
const TRACE_EVERY = Number(process.env.STREAM_TRACE_EVERY ?? 8);
const CONFIGS = parseStackConfigs(process.env.STREAM_CONFIGS);

const began = Date.now();
const loadAtStart = loadavg()[0]!;
const log = (line: string) =>
  process.stderr.write(`[bench:stream ${((Date.now() - began) / 1000).toFixed(0)}s] ${line}\n`);
let stack: LocalStack | undefined;
let tap: ChildProcess | undefined;
const stopStack = async () => {
  tap?.kill('SIGKILL');
  tap = undefined;
  await stack?.stop();
  stack = undefined;
};
const watchdog = setTimeout(() => {
  log('watchdog: out of time; stopping');
  void stopStack().finally(() => process.exit(1));
}, WATCHDOG_MS);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void stopStack().finally(() => process.exit(130)));
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
  config: string;
  writing: Writing;
  replies: number;
  ok: boolean;
  why: string;
  binding: string;
  tokensPerSecond: number;
  viewerP50: number;
  viewerP99: number;
  /** Per append: its newest token's generation (when the writer sent it) to a viewer. */
  appendViewerP50: number;
  appendViewerP99: number;
  durableP99: number;
  openingViewerP99: number;
  openingDurableP99: number;
  /** The worker's own transactions per second (its commit pipeline, from its /metrics). */
  pgCommitsPerSecond: number;
  /** Every transaction of the run's database per second (gateways' head checks, delta, the bench too). */
  dbCommitsPerSecond: number;
  cpuPerKiloToken: Record<Tier, number>;
  /** CPU of every tier over the steady window, as a share of the machine's cores. */
  cpuShare: number;
  wallMs: number;
  /** Event-loop delay p99 of the driver's writer thread and of its worst viewer thread, ms. */
  writerLoopP99: number;
  viewerLoopP99: number;
  /** Stage times of the traced replies over the steady window (undefined: not traced). */
  stages?: { traced: number; tokens: number; stages: StageFigures[] };
  result: ScenarioResult;
}

/** Where a stack's traces go: the worker's (STREAM_TRACE_FILE) and the bus tap's. */
interface Traces {
  worker: string;
  bus: string;
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
  f: Pick<StepFigures, 'appendViewerP99' | 'durableP99' | 'pgCommitsPerSecond' | 'cpuShare'>,
): string {
  const failed = result.checks.filter((c) => !c.ok).map((c) => c.name);
  if (failed.length > 0) return `checks: ${failed.join('; ')}`;
  const ratios: [string, number][] = [
    [
      `append→viewer p99 ${f.appendViewerP99.toFixed(0)}/${VIEWER_P99_MS} ms`,
      f.appendViewerP99 / VIEWER_P99_MS,
    ],
    [`token→durable p99 ${f.durableP99.toFixed(0)}/${DURABLE_P99_MS} ms`, f.durableP99 / DURABLE_P99_MS],
    [
      `worker PG commits ${f.pgCommitsPerSecond.toFixed(0)}/${COMMITS_PER_WORKER} per s`,
      f.pgCommitsPerSecond / COMMITS_PER_WORKER,
    ],
    [`CPU ${(f.cpuShare * 100).toFixed(0)}% of ${CORES} cores`, f.cpuShare],
  ];
  const [name, ratio] = ratios.reduce((a, b) => (b[1] > a[1] || !Number.isFinite(a[1]) ? b : a));
  return `${name} (${Number.isFinite(ratio) ? ratio.toFixed(2) : '–'}×)`;
}

async function step(
  s: LocalStack,
  config: StackConfig,
  traces: Traces | undefined,
  writing: Writing,
  replies: number,
  tokens = TOKENS,
): Promise<StepFigures> {
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
  let written: readonly WrittenReply[] = [];
  const result = await runStream(
    target,
    {
      ...STREAM_DEFAULTS,
      mode: writing === 'patch' ? 'patch' : 'append',
      upload: writing === 'append (client writer)' ? 'client' : 'driver',
      tokensPerAppend: config.tokensPerAppend,
      viewerTransport: config.viewerTransport,
      replies,
      tokens,
      viewers: VIEWERS,
      tokensPerSecond: TPS,
      onWritten: (list) => {
        written = list;
      },
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
  const stages = traces ? await readStages(traces, written, window0, window1) : undefined;
  const seconds = (window1 - window0) / 1000;
  const commits = commits1 - commits0;
  const steadyTokens = metric(result, 'steady_tokens_written', 'value');
  const cpuPerKiloToken = Object.fromEntries(
    TIERS.map((t) => [t, ((cpu1[t] - cpu0[t]) / steadyTokens) * 1e6]),
  ) as Record<Tier, number>;
  const cpuShare = TIERS.reduce((sum, t) => sum + (cpu1[t] - cpu0[t]), 0) / seconds / CORES;
  const viewerP99 = metric(result, 'token_to_viewer_ms', 'p99');
  // The target (issue #14): an append reaches its viewers within 50 ms at p99, and every token is
  // durable within 100 ms (its wait in the writer's batch included). Token→viewer is printed too.
  const appendViewerP99 = writing === 'patch' ? viewerP99 : metric(result, 'append_to_viewer_ms', 'p99');
  const durableP99 = metric(result, 'token_durable_ms', 'p99');
  // Commits over the steady window, per second, per worker.
  // The target counts the worker's transactions: its commit pipeline's, from its /metrics over the
  // same window. The database-wide count (pg_stat_database) also holds the gateways' head checks,
  // the delta service's reads and this bench's own queries; it is printed beside it.
  const dbCommitsPerSecond = commits / seconds / s.apiUrls.length;
  const pgCommitsPerSecond = metric(result, 'api_commits_per_worker_per_s', 'value');
  const problems: string[] = [];
  if (!passed(result)) problems.push('checks failed');
  if (!(appendViewerP99 <= VIEWER_P99_MS))
    problems.push(`append→viewer p99 ${appendViewerP99.toFixed(0)} ms`);
  if (!(durableP99 <= DURABLE_P99_MS)) problems.push(`durable p99 ${durableP99.toFixed(0)} ms`);
  if (!(pgCommitsPerSecond <= COMMITS_PER_WORKER))
    problems.push(`${pgCommitsPerSecond.toFixed(0)} commits/s`);
  const figures = {
    viewerP99,
    appendViewerP99,
    durableP99,
    pgCommitsPerSecond,
    dbCommitsPerSecond,
    cpuShare,
  };
  const binding = bindingConstraint(result, figures);
  const wallMs = Date.now() - stepBegan;
  log(
    `[${config.label}] ${writing} × ${replies}: ${problems.length ? problems.join(', ') : 'ok'}; binding: ${binding}; ` +
      `driver ${cpuPerKiloToken.driver.toFixed(0)} ms/1k tokens; step ${(wallMs / 1000).toFixed(0)} s\n${formatSummary(result)}`,
  );
  if (stages) log(`stages (${stages.traced} replies traced): ${formatStages(stages.stages)}`);
  return {
    config: config.label,
    writing,
    replies,
    ok: problems.length === 0,
    why: problems.join(', ') || 'ok',
    binding,
    tokensPerSecond: metric(result, 'steady_tokens_written', 'perSecond'),
    viewerP50: metric(result, 'token_to_viewer_ms', 'med'),
    appendViewerP50:
      writing === 'patch'
        ? metric(result, 'token_to_viewer_ms', 'med')
        : metric(result, 'append_to_viewer_ms', 'med'),
    ...figures,
    openingViewerP99: metric(result, 'opening_token_to_viewer_ms', 'p99'),
    openingDurableP99: metric(result, 'opening_token_durable_ms', 'p99'),
    cpuPerKiloToken,
    wallMs,
    writerLoopP99: metric(result, 'writer_loop_delay_p99_ms', 'value'),
    viewerLoopP99: metric(result, 'viewer_loop_delay_p99_ms', 'value'),
    ...(stages ? { stages } : {}),
    result,
  };
}

/** Reads both traces (after their writers' next flush) and joins them with the tokens written. */
async function readStages(
  traces: Traces,
  written: readonly WrittenReply[],
  from: number,
  to: number,
): Promise<StepFigures['stages']> {
  // The worker and the tap append what they buffered every 100 ms.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const read = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '');
  const lines = parseTrace([read(traces.worker), read(traces.bus)]);
  return breakdown(written, lines, {
    from,
    to,
    openingTokens: openingTokens(TPS, STREAM_DEFAULTS.openingMs),
  });
}

const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');

function formatStages(stages: readonly StageFigures[]): string {
  return stages.map((st) => `${st.stage} ${ms(st.since.med)}/${ms(st.since.p99)}`).join(', ');
}

/** Starts the bus tap of this stack: resolves once it is subscribed. */
async function startTap(s: LocalStack, file: string): Promise<ChildProcess> {
  const script = fileURLToPath(new URL('./bus-tap.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', script, s.redisUrl, s.channelPrefix, String(TRACE_EVERY), file],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', () => resolve());
    child.once('exit', (code) => reject(new Error(`bus tap exited (${code})`)));
  });
  return child;
}

/**
 * Runs `list` in order until `deadline`. A step starts only if, scaled from the previous one by
 * replies, it should end by then. Past a failing step it goes on only while the failures are
 * targets (latency, commits) rather than broken checks, and stops at the second in a row.
 */
async function ladder(
  s: LocalStack,
  config: StackConfig,
  traces: Traces | undefined,
  writing: Writing,
  list: number[],
  figures: StepFigures[],
  deadline: number,
): Promise<void> {
  let last: StepFigures | undefined;
  let failures = 0;
  for (const replies of list) {
    const expectedMs = last ? (last.wallMs * replies) / last.replies : 0;
    if (Date.now() + expectedMs > deadline) {
      log(`${writing} × ${replies}: skipped, ~${(expectedMs / 1000).toFixed(0)} s would pass the budget`);
      break;
    }
    const f = await step(s, config, traces, writing, replies);
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

/** One configuration: a fresh stack (and bus tap), a warm-up, the ladders, the stack stopped. */
async function runConfig(config: StackConfig, first: boolean, figures: StepFigures[], deadline: number) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-stream-'));
  const traces: Traces | undefined = TRACE
    ? { worker: join(dir, 'worker.ndjson'), bus: join(dir, 'bus.ndjson') }
    : undefined;
  try {
    stack = await startLocalStack({
      apiWorkers: 1,
      gateways: 2,
      // Reads are not what this measures: the run reads each scope's head once at the end.
      env: { READ_RATE_PER_SECOND: '0' },
      apiEnv: {
        ...config.apiEnv,
        ...(traces ? { STREAM_TRACE_FILE: traces.worker, STREAM_TRACE_EVERY: String(TRACE_EVERY) } : {}),
      },
      gatewayEnv: config.gatewayEnv,
    });
    if (traces) tap = await startTap(stack, traces.bus);
    log(
      `[${config.label}] stack up: api ${stack.apiUrls.join(',')}, gateways ${stack.gatewayUrls.join(',')}`,
    );
    // Not reported: fresh processes compile their TypeScript and JIT their hot paths first, which
    // would otherwise be charged to the first step.
    const warmUp = await step(stack, config, traces, 'append', WARMUP_REPLIES, WARMUP_TOKENS);
    log(`warm-up done (${warmUp.why})`);
    await ladder(stack, config, traces, 'append', APPEND_STEPS, figures, deadline);
    if (first) {
      await ladder(stack, config, traces, 'append (client writer)', CLIENT_STEPS, figures, deadline);
      await ladder(stack, config, traces, 'patch', PATCH_STEPS, figures, deadline);
    }
  } finally {
    await stopStack();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const figures: StepFigures[] = [];
  for (const [i, config] of CONFIGS.entries()) {
    // Each configuration gets an equal share of what is left of the budget.
    const left = began + BUDGET_MS - Date.now();
    await runConfig(config, i === 0, figures, Date.now() + left / (CONFIGS.length - i));
  }

  const best = (writing: Writing) =>
    figures.filter((f) => f.writing === writing && f.ok).reduce((m, f) => Math.max(m, f.replies), 0);
  const bestOf = (config: StackConfig) =>
    figures
      .filter((f) => f.writing === 'append' && f.config === config.label && f.ok)
      .reduce((m, f) => Math.max(m, f.replies), 0);
  const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const table = markdownTable(
    [
      'configuration',
      'writing',
      'replies',
      'tokens/s',
      'append→viewer p50 / p99 ms',
      'token→viewer p50 / p99 ms',
      'token→durable p99 ms',
      'opening: →viewer / →durable p99 ms',
      'PG commits/s per worker: worker / whole database',
      'driver loop delay p99 ms: writers / viewers',
      ...TIERS.map((t) => `${t} CPU ms/1k tok`),
      'all tiers ms/1k tok',
      'CPU ceiling (replies): all / without driver',
      'binding constraint',
      'result',
    ],
    figures.map((f) => [
      f.config,
      f.writing,
      f.replies,
      fmt(f.tokensPerSecond, 0),
      `${fmt(f.appendViewerP50)} / ${fmt(f.appendViewerP99)}`,
      `${fmt(f.viewerP50)} / ${fmt(f.viewerP99)}`,
      fmt(f.durableP99),
      `${fmt(f.openingViewerP99, 0)} / ${fmt(f.openingDurableP99, 0)}`,
      `${fmt(f.pgCommitsPerSecond)} / ${fmt(f.dbCommitsPerSecond)}`,
      `${fmt(f.writerLoopP99)} / ${fmt(f.viewerLoopP99)}`,
      ...TIERS.map((t) => fmt(f.cpuPerKiloToken[t], 0)),
      fmt(cpuTotal(f), 0),
      `${fmt(cpuCeiling(cpuTotal(f)), 0)} / ${fmt(cpuCeiling(cpuTotal(f, false)), 0)}`,
      f.binding,
      f.why,
    ]),
  );
  const traced = figures.filter((f) => f.stages && f.writing === 'append');
  const stageTable =
    traced.length === 0
      ? ''
      : `\n\n${markdownTable(
          [
            'configuration',
            'replies',
            'traced replies / tokens',
            ...TRACE_STAGES.map(([, name]) => `→${name}`),
            '→durable (ack at driver)',
            '→viewer',
          ],
          traced.map((f) => [
            f.config,
            f.replies,
            `${f.stages!.traced} / ${f.stages!.tokens}`,
            ...f.stages!.stages.map(
              (st) =>
                `${fmt(st.since.med)} / ${fmt(st.since.p99)} (+${fmt(st.own.med)} / ${fmt(st.own.p99)})`,
            ),
            `– / ${fmt(f.durableP99)}`,
            `${fmt(f.viewerP50)} / ${fmt(f.viewerP99)}`,
          ]),
        )}`;
  const client = figures.find((f) => f.writing === 'append (client writer)');
  const same =
    client &&
    figures.find((f) => f.writing === 'append' && f.config === client.config && f.replies === client.replies);
  const writerLine =
    client && same
      ? ` At ${client.replies} replies the driver costs ${fmt(same.cpuPerKiloToken.driver, 0)} ms of CPU per 1,000 tokens with its own upload and ${fmt(client.cpuPerKiloToken.driver, 0)} ms with the client package's stream writer (${fmt(client.cpuPerKiloToken.driver / same.cpuPerKiloToken.driver)}×).`
      : '';
  const header = `Measured ${new Date().toISOString().slice(0, 16)}Z on ${CORES} × ${cpus()[0]?.model.trim() ?? 'cpu'}, load average ${loadAtStart.toFixed(1)} at the start. Everything on this machine: Postgres 15, a private Redis, 1 mutation worker, 2 gateways, delta, the driver (${DRIVER_THREADS} viewer threads, with the driver's lean WebSocket client — the \`ws\` package offering permessage-deflate where the gateways compress; writers in its main thread, one timer for all, one streaming upload per reply with pre-serialised NDJSON lines). Each reply: ${TOKENS} tokens of 9 characters at ${TPS} tokens/s, ${VIEWERS} WebSocket viewers; replies start spread over ${STREAM_DEFAULTS.startSpreadMs / 1000} s. Configurations (each a fresh stack): ${CONFIGS.map((c) => c.label).join('; ')}.`;
  const summary = `**Sustained: ${CONFIGS.map((c) => `${bestOf(c)} concurrent replies with append (${bestOf(c) * TPS} tokens/s) at ${c.label}`).join('; ')}; ${best('patch')} with whole-text PATCH per token**. A step passes when every viewer ends with the writer's text, every event arrives once and in order, append→viewer p99 ≤ ${VIEWER_P99_MS} ms (an append's newest token's generation — the writer sends the append in that tick — to its arrival at a viewer; the issue's "append-to-viewer"), token→durable p99 ≤ ${DURABLE_P99_MS} ms (every token, its wait in the writer's batch included; token→viewer, also every token with that wait, is printed beside it) and the worker's Postgres transactions ≤ ${COMMITS_PER_WORKER}/s (its commit pipeline's, \`sync_commit_duration_seconds_count\` from its /metrics over the window; beside it every transaction of the run's database, pg_stat_database.xact_commit, which also holds the gateways' head checks, the delta service's reads and the bench's own queries). Latencies, commits and CPU are read over the **steady window**: from when every reply is past its first ${STREAM_DEFAULTS.openingMs / 1000} s (its stream opening: the upload's connection and first commit; those tokens' p99s are the "opening" column) to when the first reply writes its last token. Percentiles are exact to 0.1% (the driver's histogram); token times are the driver's \`Date.now()\` (whole ms), so a latency is ±1 ms. CPU per 1,000 tokens is from /proc (the driver's from its own process: writers and viewer threads); the CPU ceiling is the replies at ${TPS} tokens/s that ${CORES} cores would carry at that cost, with and without the driver's share. The driver's loop delay is its event loops' lateness (perf_hooks, 1 ms resolution) over the window: what the driver adds to its own measurement. The binding constraint is the target closest to (or furthest past) its limit, or the CPU share of the machine. Past a failing step the ladder goes on only while the failure is a target and time allows.${writerLine}`;
  const stageText =
    stageTable === ''
      ? ''
      : `\n\n**Where a token's time goes** (append steps): the worker traces one reply in ${TRACE_EVERY} (\`STREAM_TRACE_FILE\`, services/api/src/stream-trace.ts) — piece read off the upload, handed to commit (its coalescing window over), batcher round start, committed, publish issued — and a tap process subscribed to the run's Redis channels marks when each traced event reached a subscriber (what a gateway sees); joined with each token's generation time. Each cell: time since the token was generated, p50 / p99 ms, and in brackets the stage's own time from the previous one, p50 / p99 (a stage's p99s do not add up). From Redis to the viewer is the gateway (parse, one frame per scope per tick, fan-out) and the viewer's socket and thread.${stageTable}`;
  const markdown = `### Streaming replies (\`npm run bench:stream\`)\n\n${header}\n\n${summary}\n\n${table}${stageText}\n`;
  process.stdout.write(`\n${markdown}\n`);
  if (!process.env.BENCH_NO_DOC) updateBenchmarkSection('stream', markdown);
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await stopStack().catch(() => {});
    process.exit(1);
  },
);
