/**
 * `npm run bench:write` — write throughput and latency of the mutation workers, against what
 * Postgres itself does with the same work, measured in the same run.
 *
 * Baseline: pgbench (`runuser -u postgres -- pgbench`, shipped with the PostgreSQL server) in a
 * throwaway database with our schema, running the sync mutation as one transaction — bump the
 * scope's head, insert the message, append its event, store the idempotency key with its answer
 * (what the API's transaction writes for a keyed create) — over 100 scopes, `-M prepared`, 16 and
 * 64 clients. Then the API: real worker processes (`services/api/src/main.ts`, Redis bus) on a
 * fresh database, 16 and 64 keep-alive HTTP clients (in a worker thread of this process) each
 * creating messages in a loop with an Idempotency-Key on every request, half of them on 4 hot
 * agents and half over 96 others: one worker, two workers, and hot-scope-only (every client on
 * one agent, beside pgbench on one scope). Prints the rows, the ratios API / pgbench and p99,
 * and writes them to docs/benchmarks.md (section `write`).
 *
 * Every measured run (pgbench's and the API's) starts after a CHECKPOINT, so no run pays for the
 * dirty buffers of the one before it: without it, the first API row ran while Postgres still wrote
 * out pgbench's 64-client runs and came out below the rows after it.
 *
 * Environment: BENCH_SECONDS (default 5 per run), BENCH_DEPTH / BENCH_GROUP (pipeline settings;
 * without BENCH_DEPTH the one-worker rows are also run at WRITE_PIPELINE_DEPTH=1),
 * BENCH_ONLY=mixed (only the 100-scope and one-worker rows), BENCH_PROFILE=<dir> (worker CPU profiles),
 * BENCH_CLIENTS=16,64 (client counts), BENCH_AB=<variants> (an interleaved A/B of worker settings
 * instead of the full bench, see `runAb`; e.g. `BENCH_AB="commit:WRITE_ANSWER_AFTER=commit;two:WORKERS=2"`).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { markdownTable, percentile, updateBenchmarkSection } from '../../../test/support/bench';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { TEST_REDIS_URL, uniqueChannelPrefix } from '../../../test/support/redis';
import { TEST_JWT_SECRET, tokenFor } from '../../../test/support/tokens';
import { backendCpuBetween, backendCpuMs, processCpuMs } from './bench-db';

const run = promisify(execFile);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = process.env.BENCH_CLIENTS ? process.env.BENCH_CLIENTS.split(',').map(Number) : [16, 64];
const SCOPES = 100;
const HOT_AGENTS = 4;
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

interface RunResult {
  setup: string;
  clients: number;
  ok: number;
  errors: number;
  seconds: number;
  latenciesMs: number[];
  /** Writes per transaction, when the run could count them. */
  perTxn?: number;
  /** CPU milliseconds the worker processes spent per acknowledged write. */
  cpuMsPerWrite?: number;
  /** CPU milliseconds of the Postgres backends serving the run, per write (or pgbench transaction). */
  dbCpuMsPerWrite?: number;
  /** CPU milliseconds of the load generator (HTTP clients, or pgbench itself), per write. */
  clientCpuMsPerWrite?: number;
  /** Mean time of one commit statement (a group) as the worker saw it, ms. */
  txnMs?: number;
  /** Context switches (voluntary + involuntary) of the worker processes per write. */
  switchesPerWrite?: number;
}

/** Agent ids 1..100 as uuids pgbench can compute from a number. */
const agentId = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const agents = Array.from({ length: SCOPES }, (_, i) => agentId(i + 1));

async function seed(db: TestDatabase): Promise<void> {
  await db.pool.query(
    `INSERT INTO agents (id, org_id, name) SELECT a, $2, 'bench' FROM unnest($1::uuid[]) AS a`,
    [agents, randomUUID()],
  );
}

/* CPU accounting --------------------------------------------------------------------------------- */

/** Context switches (voluntary + involuntary) of a process so far, from /proc; 0 once it is gone. */
function processSwitches(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return [...status.matchAll(/ctxt_switches:\s+(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  } catch {
    return 0;
  }
}

/* pgbench -------------------------------------------------------------------------------------- */

/**
 * The sync mutation as pgbench runs it: the rows the API's transaction writes for one keyed create,
 * in the same order. The head first (its new id is the message's created_sync_id and the event's
 * id, as in sync_commit, which locks the heads before it writes), then the message, its event
 * (the wire record as data, the key as mutation_id) and the idempotency row holding the stored
 * answer. The API writes that row twice (a claim before the record, the answer at the end of the
 * group); pgbench writes it once, with its answer, and lets the primary key refuse a duplicate:
 * the leanest transaction that gives the same guarantees, so the baseline errs in its own favour.
 * Each statement is a round trip (the API makes one per group).
 */
function pgbenchScript(hotOnly: boolean, withKey = true): string {
  const agent = `('00000000-0000-4000-8000-' || lpad(:a::text, 12, '0'))`;
  const record = `jsonb_build_object('id', :mid::text, 'agent_id', ${agent}, 'role', 'assistant',
      'content', repeat('x', 200), 'created_at', :ts::text, 'updated_at', :ts::text, 'created_sync_id', :lid::bigint)`;
  return `${hotOnly ? '\\set a 1' : `\\set a random(1, ${SCOPES})`}
BEGIN;
INSERT INTO sync_scopes AS s (scope, last_id) VALUES ('agent:' || ${agent}, 1)
  ON CONFLICT (scope) DO UPDATE SET last_id = s.last_id + 1, updated_at = now() RETURNING last_id AS lid \\gset
INSERT INTO messages (id, agent_id, role, content, created_at, updated_at, created_sync_id)
  VALUES (gen_random_uuid(), ${agent}::uuid, 'assistant', repeat('x', 200), clock_timestamp(), clock_timestamp(), :lid)
  RETURNING id AS mid, created_at AS ts \\gset
INSERT INTO sync_events (scope, id, model, model_id, action, data, mutation_id, actor)
  VALUES ('agent:' || ${agent}, :lid, 'Message', :mid, 'insert', ${record}, 'k-' || :mid, 'bench');
${
  withKey
    ? `INSERT INTO idempotency_keys (principal, key, request_hash, response)
  VALUES ('bench', 'k-' || :mid, md5(:mid::text) || md5(:mid::text), jsonb_build_object('status', 201,
    'body', jsonb_build_object('data', ${record}, 'scope', 'agent:' || ${agent}, 'syncId', :lid::bigint)));
`
    : ''
}END;
`;
}

/** Write out every dirty buffer before a measured run (see the header). */
async function checkpoint(db: TestDatabase): Promise<void> {
  await db.pool.query('CHECKPOINT');
}

async function pgbench(
  db: TestDatabase,
  clients: number,
  hotOnly: boolean,
  label: string,
  withKey = true,
): Promise<RunResult> {
  const dbName = new URL(db.url).pathname.slice(1);
  const dir = mkdtempSync(join(tmpdir(), 'pgbench-'));
  chmodSync(dir, 0o777);
  const script = join(dir, 'sync-mutation.sql');
  writeFileSync(script, pgbenchScript(hotOnly, withKey));
  chmodSync(script, 0o644);
  await checkpoint(db);
  try {
    const running = run(
      'runuser',
      [
        '-u',
        'postgres',
        '--',
        'pgbench',
        '-h',
        '127.0.0.1',
        '-U',
        'postgres',
        '-n',
        '-M',
        'prepared',
        '-c',
        String(clients),
        '-j',
        '2',
        '-T',
        String(SECONDS),
        '-l',
        `--log-prefix=${join(dir, 'log')}`,
        '-f',
        script,
        dbName,
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    // CPU of pgbench and of its backends over a window inside the run (backends exit with
    // pgbench, so the window closes before the end); divided by the transactions that ended in it.
    const sample = async () => {
      const client = Number(
        readFileSync(`/proc/${running.child.pid}/task/${running.child.pid}/children`, 'utf8').trim() || 0,
      );
      return {
        at: Date.now(),
        client: client ? processCpuMs(client) || 0 : 0,
        backends: await backendCpuMs(db.pool, 'pgbench'),
      };
    };
    const windowStart = new Promise<Awaited<ReturnType<typeof sample>>>((resolve, reject) =>
      setTimeout(() => sample().then(resolve, reject), Math.min(1000, SECONDS * 200)),
    );
    const windowEnd = new Promise<Awaited<ReturnType<typeof sample>>>((resolve, reject) =>
      setTimeout(() => sample().then(resolve, reject), SECONDS * 1000 - 400),
    );
    const [{ stdout, stderr }, w1, w2] = await Promise.all([running, windowStart, windowEnd]);
    const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? Number.NaN);
    if (Number.isNaN(tps))
      process.stderr.write(`pgbench (${label}, ${clients} clients) gave no rate:\n${stdout}\n${stderr}\n`);
    const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
    const latenciesMs: number[] = [];
    let inWindow = 0;
    for (const file of readdirSync(dir).filter((f) => f.startsWith('log'))) {
      for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
        // client_id transaction_no latency_us script_no end_epoch_s end_us
        const fields = line.split(' ');
        const us = Number(fields[2]);
        if (Number.isFinite(us) && line) latenciesMs.push(us / 1000);
        const endMs = Number(fields[4]) * 1000 + Number(fields[5]) / 1000;
        if (endMs >= w1.at && endMs < w2.at) inWindow++;
      }
    }
    // Too few transactions in the window (a collapsed run) make the quotient meaningless.
    const perTxn = (ms: number) => (inWindow >= 100 ? ms / inWindow : undefined);
    return {
      setup: label,
      clients,
      ok: Math.round(tps * SECONDS),
      errors: failed,
      seconds: SECONDS,
      latenciesMs,
      dbCpuMsPerWrite: perTxn(backendCpuBetween(w1.backends, w2.backends)),
      clientCpuMsPerWrite: perTxn(w2.client - w1.client),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/* API worker processes ------------------------------------------------------------------------- */

interface WorkerProcess {
  url: string;
  child: ChildProcess;
}

async function startWorker(
  databaseUrl: string,
  channelPrefix: string,
  depth = process.env.BENCH_DEPTH,
  extraEnv: Record<string, string> = {},
): Promise<WorkerProcess> {
  const port = await freePort();
  // BENCH_PROFILE=<dir>: each worker writes a V8 CPU profile there when it exits.
  const profile = process.env.BENCH_PROFILE
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`]
    : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', MAIN], {
    env: {
      ...process.env,
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_CHANNEL_PREFIX: channelPrefix,
      SYNC_JWT_SECRET: TEST_JWT_SECRET,
      RATE_LIMIT_PER_SECOND: '0',
      LOG_LEVEL: 'warn',
      MIGRATE_ON_START: 'false',
      ...(depth ? { WRITE_PIPELINE_DEPTH: depth } : {}),
      ...(process.env.BENCH_GROUP ? { WRITE_GROUP_MAX: process.env.BENCH_GROUP } : {}),
      ...extraEnv,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {}
    if (i > 200) throw new Error('worker did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child };
}

async function stopWorker(worker: WorkerProcess): Promise<void> {
  const exited = new Promise((r) => worker.child.once('exit', r));
  worker.child.kill('SIGTERM');
  await exited;
}

/** Writes and transactions so far (sync_commit_mutations) and CPU seconds of a worker. */
async function commitCounts(
  worker: WorkerProcess,
): Promise<{ sum: number; count: number; cpu: number; seconds: number }> {
  const text = await (await fetch(`${worker.url}/metrics`)).text();
  const pick = (name: string) =>
    Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? 0);
  return {
    sum: pick('sync_commit_mutations_sum'),
    count: pick('sync_commit_mutations_count'),
    cpu: pick('sync_process_cpu_seconds_total'),
    seconds: pick('sync_commit_duration_seconds_sum'),
  };
}

/**
 * The HTTP load generator, in a worker thread so this process's event loop stays free (plain JS:
 * the worker evaluates it as a string). Client i talks to urls[i % urls.length] over its own
 * keep-alive HTTP/1.1 connection, one request at a time (closed loop, no pipelining), like wrk:
 * the request is written as bytes and the answer read up to its Content-Length (or the chunked
 * terminator) and its status checked. node:http's client cost as much CPU per request as the
 * worker serving it (1-2 ms under load), and it runs on the same two cores, so it was charged to
 * the API's side of the comparison; pgbench, the baseline, is a lean C client.
 */
const LOAD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const { randomUUID } = require('node:crypto');
const { urls, token, agents, hot, hotOnly, seconds, clients, content } = workerData;
const targets = urls.map((u) => new URL(u));
const pick = () => hotOnly ? agents[0] : Math.random() < 0.5 ? agents[Math.floor(Math.random() * hot)]
  : agents[hot + Math.floor(Math.random() * (agents.length - hot))];
const HEAD_END = Buffer.from('\\r\\n\\r\\n');
const CHUNKED_END = Buffer.from('0\\r\\n\\r\\n');
/** One keep-alive connection; send(body) resolves with the status once the whole answer is in. */
function connection(target) {
  let socket = null;
  let pending = null;
  let buffered = Buffer.alloc(0);
  const open = () => {
    const own = net.connect(Number(target.port), target.hostname);
    socket = own;
    own.setNoDelay(true);
    own.on('data', (chunk) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const head = buffered.indexOf(HEAD_END);
      if (head < 0 || !pending) return;
      const headers = buffered.subarray(0, head).toString('latin1');
      const status = Number(headers.slice(9, 12));
      const length = /\\r\\ncontent-length: *(\\d+)/i.exec(headers);
      let end;
      if (length) end = head + 4 + Number(length[1]);
      else if (/\\r\\ntransfer-encoding: *chunked/i.test(headers)) {
        const at = buffered.indexOf(CHUNKED_END, head + 4);
        end = at < 0 ? Infinity : at + CHUNKED_END.length;
      } else end = head + 4;
      if (buffered.length < end) return;
      buffered = buffered.subarray(end);
      const done = pending;
      pending = null;
      done.resolve(status);
    });
    const fail = (err) => {
      if (socket !== own) return;
      socket = null;
      buffered = Buffer.alloc(0);
      const done = pending;
      pending = null;
      if (done) done.reject(err);
    };
    own.on('error', fail);
    own.on('close', () => fail(new Error('connection closed')));
  };
  const prefix = 'POST /api/messages HTTP/1.1\\r\\nHost: ' + target.host + '\\r\\nAuthorization: Bearer ' + token +
    '\\r\\nContent-Type: application/json\\r\\nIdempotency-Key: ';
  return {
    send(body) {
      if (!socket) open();
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
        socket.write(prefix + randomUUID() + '\\r\\nContent-Length: ' + Buffer.byteLength(body) + '\\r\\n\\r\\n' + body);
      });
    },
    close() { if (socket) socket.destroy(); },
  };
}
(async () => {
  const latencies = [];
  let ok = 0, errors = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const conns = [];
  await Promise.all(Array.from({ length: clients }, async (_, i) => {
    const conn = connection(targets[i % targets.length]);
    conns.push(conn);
    while (performance.now() < deadline) {
      const t = performance.now();
      try {
        const status = await conn.send(JSON.stringify({ agent_id: pick(), role: 'assistant', content }));
        if (status === 201) ok++; else errors++;
      } catch { errors++; }
      latencies.push(performance.now() - t);
    }
  }));
  for (const conn of conns) conn.close();
  parentPort.postMessage({ ok, errors, latencies, seconds: (performance.now() - started) / 1000 });
})();
`;

function driveHttp(
  setup: string,
  clients: number,
  urls: string[],
  token: string,
  hotOnly: boolean,
  seconds = SECONDS,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(LOAD_WORKER, {
      eval: true,
      execArgv: [],
      workerData: {
        urls,
        token,
        agents,
        hot: HOT_AGENTS,
        hotOnly,
        seconds,
        clients,
        content: 'x'.repeat(200),
      },
    });
    worker.once('error', reject);
    worker.once('message', (m: { ok: number; errors: number; latencies: number[]; seconds: number }) => {
      void worker.terminate();
      resolve({ setup, clients, ok: m.ok, errors: m.errors, seconds: m.seconds, latenciesMs: m.latencies });
    });
  });
}

async function benchApi(
  db: TestDatabase,
  setup: string,
  workers: number,
  hotOnly: boolean,
  depth?: string,
  extraEnv: Record<string, string> = {},
): Promise<RunResult[]> {
  const prefix = uniqueChannelPrefix();
  const procs: WorkerProcess[] = [];
  for (let i = 0; i < workers; i++) procs.push(await startWorker(db.url, prefix, depth, extraEnv));
  const urls = procs.map((p) => p.url);
  const token = await tokenFor(['*'], 'bench');
  const results: RunResult[] = [];
  try {
    await driveHttp(`${setup} (warm-up)`, 16, urls, token, hotOnly, 1);
    for (const clients of CONCURRENCY) {
      await checkpoint(db);
      const before = await Promise.all(procs.map(commitCounts));
      const dbBefore = await backendCpuMs(db.pool, 'sync-api');
      const switchesBefore = procs.map((p) => processSwitches(p.child.pid!));
      const clientBefore = process.cpuUsage();
      const result = await driveHttp(setup, clients, urls, token, hotOnly);
      const clientCpu = process.cpuUsage(clientBefore);
      const switches = procs.reduce((n, p, i) => n + processSwitches(p.child.pid!) - switchesBefore[i]!, 0);
      const dbAfter = await backendCpuMs(db.pool, 'sync-api');
      const after = await Promise.all(procs.map(commitCounts));
      const writes = after.reduce((n, a, i) => n + a.sum - before[i]!.sum, 0);
      const txns = after.reduce((n, a, i) => n + a.count - before[i]!.count, 0);
      const cpu = after.reduce((n, a, i) => n + a.cpu - before[i]!.cpu, 0);
      const inCommit = after.reduce((n, a, i) => n + a.seconds - before[i]!.seconds, 0);
      results.push({
        ...result,
        perTxn: writes / Math.max(1, txns),
        cpuMsPerWrite: (cpu * 1000) / Math.max(1, result.ok),
        dbCpuMsPerWrite: backendCpuBetween(dbBefore, dbAfter) / Math.max(1, result.ok),
        // This process is idle while the load generator's thread runs: its CPU is the clients'.
        clientCpuMsPerWrite: (clientCpu.user + clientCpu.system) / 1000 / Math.max(1, result.ok),
        txnMs: (inCommit * 1000) / Math.max(1, txns),
        switchesPerWrite: switches / Math.max(1, result.ok),
      });
    }
  } finally {
    await Promise.all(procs.map(stopWorker));
  }
  return results;
}

/* The run -------------------------------------------------------------------------------------- */

/* Interleaved A/B (BENCH_AB) -------------------------------------------------------------------- */

/**
 * BENCH_AB="name:VAR=value,VAR=value;name2:..." compares worker settings interleaved in one run
 * instead of the full bench: per round (BENCH_AB_ROUNDS, default 3) pgbench (100 scopes) and then
 * one fresh worker per variant beside the default (mixed load, BENCH_WORKERS workers, default 1),
 * the order rotating each round, each row with the 1-minute load average when it ended. Prints
 * the rows and the median of each variant; writes nothing to docs/benchmarks.md.
 */
async function runAb(spec: string): Promise<void> {
  const defaultWorkers = Number(process.env.BENCH_WORKERS ?? 1);
  const variants = [
    { name: 'default', env: {} as Record<string, string>, workers: defaultWorkers },
    ...spec.split(';').map((part) => {
      const [name, assignments = ''] = part.split(':');
      const env: Record<string, string> = {};
      for (const a of assignments.split(',').filter(Boolean)) {
        const at = a.indexOf('=');
        env[a.slice(0, at)] = a.slice(at + 1);
      }
      // WORKERS=<n> is the variant's number of worker processes, not an environment variable.
      const workers = env.WORKERS === undefined ? defaultWorkers : Number(env.WORKERS);
      delete env.WORKERS;
      return { name: name!, env, workers };
    }),
  ];
  const rounds = Number(process.env.BENCH_AB_ROUNDS ?? 3);
  const pgDb = await createTestDatabase('bench_ab_pgbench');
  await seed(pgDb);
  const apiDb = await createTestDatabase('bench_ab_write');
  await seed(apiDb);
  const rows: { variant: string; load: number; r: RunResult }[] = [];
  const line = (variant: string, load: number, r: RunResult) =>
    `${variant.padEnd(12)} ${String(r.clients).padStart(3)} clients  ${(r.ok / r.seconds).toFixed(0).padStart(5)}/s  p50 ${percentile(r.latenciesMs, 50).toFixed(1)}  p99 ${percentile(r.latenciesMs, 99).toFixed(1)} ms  writes/txn ${r.perTxn?.toFixed(1) ?? '-'}  worker ${r.cpuMsPerWrite?.toFixed(2) ?? '-'}  pg ${r.dbCpuMsPerWrite?.toFixed(2) ?? '-'} ms/write  switches/write ${r.switchesPerWrite?.toFixed(2) ?? '-'}  load ${load.toFixed(1)}`;
  try {
    for (let round = 0; round < rounds; round++) {
      const order = [
        ...variants.slice(round % variants.length),
        ...variants.slice(0, round % variants.length),
      ];
      for (const clients of CONCURRENCY) {
        const r = await pgbench(pgDb, clients, false, 'pgbench');
        rows.push({ variant: 'pgbench', load: loadavg()[0]!, r });
        process.stdout.write(`${line('pgbench', loadavg()[0]!, r)}\n`);
      }
      for (const v of order) {
        for (const r of await benchApi(apiDb, v.name, v.workers, false, undefined, v.env)) {
          rows.push({ variant: v.name, load: loadavg()[0]!, r });
          process.stdout.write(`${line(v.name, loadavg()[0]!, r)}\n`);
        }
      }
    }
  } finally {
    await pgDb.drop();
    await apiDb.drop();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  process.stdout.write('\nmedians (rate, p99, worker CPU ms/write, Postgres CPU ms/write, writes/txn):\n');
  for (const name of ['pgbench', ...variants.map((v) => v.name)]) {
    for (const clients of CONCURRENCY) {
      const of = rows.filter((x) => x.variant === name && x.r.clients === clients).map((x) => x.r);
      process.stdout.write(
        `${name.padEnd(12)} ${String(clients).padStart(3)}  ${median(of.map((r) => r.ok / r.seconds)).toFixed(0)}/s  p99 ${median(of.map((r) => percentile(r.latenciesMs, 99))).toFixed(1)} ms  worker ${median(of.map((r) => r.cpuMsPerWrite ?? Number.NaN)).toFixed(2)}  pg ${median(of.map((r) => r.dbCpuMsPerWrite ?? Number.NaN)).toFixed(2)}  txn ${median(of.map((r) => r.perTxn ?? Number.NaN)).toFixed(1)}  switches ${median(of.map((r) => r.switchesPerWrite ?? Number.NaN)).toFixed(2)}\n`,
      );
    }
  }
}

if (process.env.BENCH_AB) {
  await runAb(process.env.BENCH_AB);
  process.exit(0);
}

const loadAtStart = loadavg()
  .map((l) => l.toFixed(2))
  .join(' / ');
const pgbenchDb = await createTestDatabase('bench_pgbench');
await seed(pgbenchDb);
const baseline: RunResult[] = [];
for (const clients of CONCURRENCY)
  baseline.push(await pgbench(pgbenchDb, clients, false, 'pgbench, 100 scopes'));
// BENCH_ONLY=mixed runs just the 100-scope and one-worker mixed rows (to try pipeline settings).
const only = process.env.BENCH_ONLY;
// The issue's original three-statement shape (head, row, event; no idempotency row), printed
// beside the equivalent transaction so the ratio against either can be read.
const baselineNoKey: RunResult[] = [];
for (const clients of only ? [] : CONCURRENCY)
  baselineNoKey.push(
    await pgbench(pgbenchDb, clients, false, 'pgbench, 100 scopes, no idempotency row', false),
  );
const baselineHot: RunResult[] = [];
for (const clients of only ? [] : CONCURRENCY)
  baselineHot.push(await pgbench(pgbenchDb, clients, true, 'pgbench, one scope'));
await pgbenchDb.drop();

const apiDb = await createTestDatabase('bench_write');
await seed(apiDb);
const one = await benchApi(apiDb, 'API, 1 worker, half on 4 hot agents', 1, false);
// The same with one transaction in flight instead of the default two: bigger groups, less CPU per
// write, no overlap of one group's WAL flush with the next group's work (docs/benchmarks.md).
const depthOne = process.env.BENCH_DEPTH
  ? []
  : await benchApi(apiDb, 'API, 1 worker, half on 4 hot agents, WRITE_PIPELINE_DEPTH=1', 1, false, '1');
const two = only ? [] : await benchApi(apiDb, 'API, 2 workers, half on 4 hot agents', 2, false);
const hot = only ? [] : await benchApi(apiDb, 'API, 1 worker, every client on one agent', 1, true);
const { rows } = await apiDb.pool.query<{ events: number; messages: number; keys: number }>(
  `SELECT (SELECT count(*) FROM sync_events)::int AS events, (SELECT count(*) FROM messages)::int AS messages,
          (SELECT count(*) FROM idempotency_keys)::int AS keys`,
);
await apiDb.drop();
const loadAtEnd = loadavg()
  .map((l) => l.toFixed(2))
  .join(' / ');

const rate = (r: RunResult) => r.ok / r.seconds;
const p = (r: RunResult, q: number) => percentile(r.latenciesMs, q).toFixed(1);
const against = (r: RunResult, base: RunResult[]) => base.find((b) => b.clients === r.clients)!;
const ms = (v: number | undefined) => (v === undefined ? '' : v.toFixed(2));
/** Every measured CPU of one write: worker (none for pgbench), Postgres backends, client. */
const sumCpu = (r: RunResult) =>
  r.dbCpuMsPerWrite === undefined || r.clientCpuMsPerWrite === undefined
    ? undefined
    : (r.cpuMsPerWrite ?? 0) + r.dbCpuMsPerWrite + r.clientCpuMsPerWrite;
const rowsOf = (results: RunResult[], base: RunResult[]) =>
  results.map((r) => [
    r.setup,
    r.clients,
    rate(r).toFixed(0),
    p(r, 50),
    p(r, 99),
    r.errors,
    r.perTxn === undefined ? '' : r.perTxn.toFixed(1),
    ms(r.cpuMsPerWrite),
    ms(r.dbCpuMsPerWrite),
    ms(r.clientCpuMsPerWrite),
    ms(sumCpu(r)),
    r.txnMs === undefined ? '' : r.txnMs.toFixed(1),
    base === baseline && r.setup.startsWith('pgbench')
      ? '1.00'
      : (rate(r) / rate(against(r, base))).toFixed(2),
  ]);
const table = markdownTable(
  [
    'setup',
    'clients',
    'writes/s',
    'p50 ms',
    'p99 ms',
    'errors',
    'writes/txn',
    'worker CPU ms/write',
    'Postgres CPU ms/write',
    'client CPU ms/write',
    'CPU ms/write, sum',
    'ms/txn',
    'ratio vs pgbench',
  ],
  [
    ...rowsOf(baseline, baseline),
    ...rowsOf(baselineNoKey, baselineNoKey).map((r) => [...r.slice(0, -1), '']),
    ...rowsOf(one, baseline),
    ...rowsOf(depthOne, baseline),
    ...rowsOf(two, baseline),
    ...rowsOf(baselineHot, baselineHot).map((r) => [...r.slice(0, -1), '1.00']),
    ...rowsOf(hot, baselineHot),
  ],
);
const ratioLines = [...one, ...depthOne, ...two, ...hot]
  .map((r) => {
    const base = r.setup.includes('one agent') ? baselineHot : baseline;
    const noKey = base === baseline ? baselineNoKey.find((b) => b.clients === r.clients) : undefined;
    const shape = noKey
      ? ` (${(rate(r) / rate(noKey)).toFixed(2)}× the three-statement shape without the key row)`
      : '';
    return `- ${r.setup}, ${r.clients} clients: **${(rate(r) / rate(against(r, base))).toFixed(2)}×** pgbench${shape}, p99 ${p(r, 99)} ms`;
  })
  .join('\n');

const markdown = `## Write path (\`npm run bench:write\`)

Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus().length} shared cores; load average
(1 / 5 / 15 min) **${loadAtStart}** at the start, ${loadAtEnd} at the end. ${SECONDS} s per run.
pgbench: the sync mutation as one transaction, the rows the API writes for a keyed create (bump
the scope head, insert the message, append its event, store the idempotency key and its answer),
\`-M prepared\`, over ${SCOPES} scopes (and over one scope for the hot rows); the row "no idempotency
row" is the issue's original three-statement shape (head, message, event), for reference. API:
worker processes (Redis bus) answering \`POST /api/messages\` (200-character content, an
Idempotency-Key on every request) from keep-alive HTTP/1.1 clients (raw sockets, one request at
a time each, in a worker thread); half the writes on ${HOT_AGENTS} hot agents and half over the other
${SCOPES - HOT_AGENTS}, or every write on one agent. Default pipeline (\`WRITE_PIPELINE_DEPTH\` ${process.env.BENCH_DEPTH ?? 2}: a second transaction only beside a late one,
\`WRITE_GROUP_MAX\` ${process.env.BENCH_GROUP ?? 32}) unless the row says otherwise.
The ratio is API / pgbench at the same client count (hot rows against pgbench on one scope).
CPU columns: milliseconds of CPU (user + system, from /proc) per write of the worker processes,
of the Postgres backends serving them, and of the load generator (for pgbench: its backends and
pgbench itself, over a window inside the run); their sum is what one write costs the machine.
After the API runs: ${rows[0]!.messages} messages, ${rows[0]!.events} events, ${rows[0]!.keys} idempotency keys (one each per acknowledged write).

${table}

${ratioLines}`;
if (!only) updateBenchmarkSection('write', markdown);
process.stdout.write(`${markdown}\n`);
process.exit(0);
