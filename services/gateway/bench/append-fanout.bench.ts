import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { type RedisServer, startRedisServer, uniqueChannelPrefix } from '../../../test/support/redis';
import { type ServiceProcess, startService, waitReady } from '../../../test/support/stack';
import { TEST_JWT_SECRET, tokenFor } from '../../../test/support/tokens';
import { type ClientCommand, type ClientReport, COUNTER, COUNTER_SLOTS } from './fanout-clients';
import { benchScopes, type ProducerCommand, type ProducerReport } from './fanout-events';

// `node --import tsx services/gateway/bench/append-fanout.bench.ts`: what one delivered append
// costs the gateway, in the shape of agent replies streaming — many scopes with few viewers
// each (3), one small event per Redis publish, at a steady rate — where the fixed cost per
// received event (bus message parse, ordering checks, per-scope stream work, framing, metrics,
// timers) is not spread over many sockets as it is in `bench:fanout`.
//
// Every system runs at once on the same Redis publishes, so they share the same moment of this
// shared machine, and each one's CPU (user + system, from /proc) over the publishing window is
// divided by what it delivered:
//  - gateway: services/gateway/src/main.ts of this checkout;
//  - gateway (baseline): the same from APPEND_BASELINE_ROOT, another checkout of the repository
//    with node_modules (e.g. `git archive main` unpacked, node_modules linked), when given;
//  - plain uWS + Redis: plain-uws-redis-server.ts, the floor: one Redis subscriber and uWS topics.
// A delta service over an empty database answers the subscribes (bootstrap at 0); the events are
// not in the log, so head checks find it behind and never fill (as in bench:fanout).
//
// Env: APPEND_SCOPES (300), APPEND_VIEWERS (3), APPEND_RATE events/s (3000), APPEND_MS (10000),
// APPEND_TEXT_BYTES (4), APPEND_ROUND_MS (10: what is due is published every 10 ms at once, as the
// workers' append batcher commits and publishes in rounds; 1 for one event at a time), APPEND_BASELINE_ROOT, APPEND_CPU_PROF=<dir> (gateways write a
// --cpu-prof profile there when they stop).

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const SCOPES = env('APPEND_SCOPES', 300);
const VIEWERS = env('APPEND_VIEWERS', 3);
const RATE = env('APPEND_RATE', 3000);
const DURATION_MS = env('APPEND_MS', 10_000);
const TEXT_BYTES = env('APPEND_TEXT_BYTES', 4);
/** Events are published in rounds this far apart, as the workers' append batcher commits (≥ 10 ms). */
const ROUND_MS = env('APPEND_ROUND_MS', 10);
const WARMUP_MS = 2000;
const BASELINE_ROOT = process.env.APPEND_BASELINE_ROOT;
const CPU_PROF = process.env.APPEND_CPU_PROF;
const HERE = fileURLToPath(new URL('.', import.meta.url));

interface System {
  name: string;
  url: string;
  pid: number;
  /** Stops the server; a gateway is stopped with SIGTERM so a --cpu-prof profile gets written. */
  stop(): Promise<void>;
}

/** CPU seconds the process has used: user, system. */
function cpuTimes(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(fields[11]) / 100, Number(fields[12]) / 100];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function spawnChild(file: string, childEnv: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', `${HERE}${file}`], {
    env: { ...process.env, ...childEnv },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function nextMessage<T>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${type}' within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (message: { type: string }) => {
      if (message.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(message as T);
    };
    child.on('message', onMessage);
  });
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await Promise.race([exited, sleep(15_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** A gateway process of the checkout at `root` (ROOT of this one when omitted). */
async function startGateway(
  name: string,
  root: string | undefined,
  gatewayEnv: Record<string, string>,
): Promise<System> {
  const port = await freePort();
  if (!root && !CPU_PROF) {
    const service = await startService('gateway', { port, env: gatewayEnv });
    return {
      name,
      url: `ws://127.0.0.1:${port}/sync`,
      pid: service.proc.pid!,
      stop: () => stopChild(service.proc),
    };
  }
  const cwd = root ?? fileURLToPath(new URL('../../../', import.meta.url));
  const args = [
    // One directory per gateway: Node names each thread's profile itself (the loader has one too).
    ...(CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', `${CPU_PROF}/${name.replace(/\W+/g, '-')}`] : []),
    '--import',
    'tsx',
    'services/gateway/src/main.ts',
  ];
  const proc = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, LOG_LEVEL: 'warn', ...gatewayEnv, DRAIN_WINDOW_MS: '100', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const collect = (chunk: Buffer) => output.push(...chunk.toString().split('\n').filter(Boolean));
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  const service: ServiceProcess = {
    name: 'gateway',
    port,
    url: `http://127.0.0.1:${port}`,
    env: gatewayEnv,
    proc,
    output,
    exited: new Promise((r) => proc.once('exit', r)),
    kill: async () => null,
  };
  await waitReady(service);
  return { name, url: `ws://127.0.0.1:${port}/sync`, pid: proc.pid!, stop: () => stopChild(proc, 'SIGTERM') };
}

async function startPlain(redisEnv: Record<string, string>): Promise<System> {
  const child = spawnChild('plain-uws-redis-server.ts', { ...redisEnv, PORT: '0' });
  const ready = await nextMessage<{ port: number }>(child, 'ready', 30_000);
  return {
    name: 'plain uWS + Redis',
    url: `ws://127.0.0.1:${ready.port}/sync`,
    pid: child.pid!,
    stop: () => stopChild(child),
  };
}

/* Clients: one worker thread per system, so each system's deliveries are counted apart. */

function startWorkers(count: number, counters: SharedArrayBuffer): Worker[] {
  const module = new URL('./fanout-clients.ts', import.meta.url).href;
  return Array.from(
    { length: count },
    (_, index) =>
      new Worker(
        `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(module)}); });`,
        { eval: true, workerData: { counters, index } },
      ),
  );
}

function ask(worker: Worker, command: ClientCommand, expect: ClientReport['type']): Promise<ClientReport> {
  return new Promise((resolve, reject) => {
    const onMessage = (report: ClientReport) => {
      if (report.type !== expect) return;
      worker.off('message', onMessage);
      resolve(report);
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
    worker.postMessage(command);
  });
}

async function main(): Promise<void> {
  const startedLoad = loadavg()[0]!;
  if (BASELINE_ROOT && !existsSync(`${BASELINE_ROOT}/services/gateway/src/main.ts`)) {
    throw new Error(`APPEND_BASELINE_ROOT=${BASELINE_ROOT} has no services/gateway/src/main.ts`);
  }
  const scopes = benchScopes(SCOPES);
  const token = await tokenFor(['*'], 'bench-append-fanout', 3600);
  let db: TestDatabase | undefined;
  let redis: RedisServer | undefined;
  let delta: ServiceProcess | undefined;
  let publisher: ChildProcess | undefined;
  const systems: System[] = [];
  let workers: Worker[] = [];
  try {
    db = await createTestDatabase('append_fanout');
    redis = await startRedisServer();
    const prefix = uniqueChannelPrefix();
    delta = await startService('delta', {
      port: await freePort(),
      // Bootstraps are not what this measures: room for every gateway's subscribes at once (a
      // baseline without the gateway's bootstrap line would otherwise lose some to 503s).
      env: {
        DATABASE_URL: db.url,
        SYNC_JWT_SECRET: TEST_JWT_SECRET,
        LOG_LEVEL: 'warn',
        MAX_CONCURRENT_BOOTSTRAPS: '32',
      },
    });
    const gatewayEnv = {
      REDIS_URL: redis.url,
      REDIS_CHANNEL_PREFIX: prefix,
      DELTA_URL: delta.url,
      SYNC_JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: 'warn',
    };
    systems.push(await startGateway('gateway', undefined, gatewayEnv));
    if (BASELINE_ROOT) systems.push(await startGateway('gateway (baseline)', BASELINE_ROOT, gatewayEnv));
    systems.push(await startPlain({ REDIS_URL: redis.url, REDIS_CHANNEL_PREFIX: prefix }));

    const counters = new SharedArrayBuffer(systems.length * COUNTER_SLOTS * 4);
    const view = new Int32Array(counters);
    const count = (system: number, slot: number) => view[system * COUNTER_SLOTS + slot]!;
    workers = startWorkers(systems.length, counters);
    const viewerScopes = Array.from({ length: VIEWERS }, () => scopes).flat();
    for (const [i, s] of systems.entries()) {
      await ask(
        workers[i]!,
        { cmd: 'connect', url: s.url, token, scopes: viewerScopes, concurrency: 25 },
        'connected',
      );
      // A subscribe lost on this loaded machine (a delta read timing out) does not stop the run:
      // each system's figures divide by what it delivered, and the shortfall is printed.
      const deadline = Date.now() + 60_000;
      while (count(i, COUNTER.subscribed) < viewerScopes.length && Date.now() < deadline) await sleep(50);
      if (count(i, COUNTER.subscribed) < viewerScopes.length) {
        console.warn(`${s.name}: ${count(i, COUNTER.subscribed)} of ${viewerScopes.length} subscribed`);
      }
    }
    await sleep(2000); // Redis confirms the channel joins

    publisher = spawnChild('fanout-redis-publisher.ts', {
      REDIS_URL: redis.url,
      REDIS_CHANNEL_PREFIX: prefix,
    });
    await nextMessage(publisher, 'ready', 30_000);
    publisher.send({
      cmd: 'init',
      scopes,
      contentBytes: TEXT_BYTES,
      shape: 'append',
    } satisfies ProducerCommand);
    const done = nextMessage<Extract<ProducerReport, { type: 'done' }>>(
      publisher,
      'done',
      DURATION_MS + WARMUP_MS + 60_000,
    );
    publisher.send({
      cmd: 'rate',
      rate: RATE,
      durationMs: DURATION_MS + WARMUP_MS,
    } satisfies ProducerCommand);
    await sleep(WARMUP_MS);
    const cpu0 = systems.map((s) => cpuTimes(s.pid));
    const delivered0 = systems.map((_, i) => count(i, COUNTER.events));
    const frames0 = systems.map((_, i) => count(i, COUNTER.frames));
    const t0 = performance.now();
    const report = await done;
    // Until every system delivered everything: a system that fell behind pays for its backlog
    // inside the window instead of after it.
    const expected = systems.map((_, i) => (report.total * count(i, COUNTER.subscribed)) / SCOPES);
    const drainUntil = Date.now() + 30_000;
    while (systems.some((_, i) => count(i, COUNTER.events) < expected[i]!) && Date.now() < drainUntil) {
      await sleep(20);
    }
    const seconds = (performance.now() - t0) / 1000;
    const times = systems.map((s, i) => cpuTimes(s.pid).map((t, k) => t - cpu0[i]![k]!));
    const cpu = times.map(([user, sys]) => user! + sys!);
    const delivered = systems.map((_, i) => count(i, COUNTER.events) - delivered0[i]!);
    const frames = systems.map((_, i) => count(i, COUNTER.frames) - frames0[i]!);

    console.log(
      `\nappend fan-out: ${SCOPES} scopes × ${VIEWERS} viewers, ${RATE} appends/s (${(RATE * VIEWERS).toLocaleString('en-US')} deliveries/s per system) in rounds every ${ROUND_MS} ms, for ${DURATION_MS / 1000} s after ${WARMUP_MS / 1000} s warm-up; ${TEXT_BYTES}-byte pieces; load average ${startedLoad.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)}\n`,
    );
    const plainIndex = systems.length - 1;
    const perDelivery = systems.map((_, i) => (cpu[i]! * 1e6) / Math.max(1, delivered[i]!));
    const rows = systems.map((s, i) => ({
      system: s.name,
      'CPU %': ((cpu[i]! / seconds) * 100).toFixed(0),
      'user / sys s': `${times[i]![0]!.toFixed(2)} / ${times[i]![1]!.toFixed(2)}`,
      'µs CPU / delivery': perDelivery[i]!.toFixed(2),
      'µs CPU / received event': ((cpu[i]! * 1e6 * VIEWERS) / Math.max(1, delivered[i]!)).toFixed(2),
      'vs plain': `${(perDelivery[i]! / perDelivery[plainIndex]!).toFixed(2)}×`,
      'events / frame': (delivered[i]! / Math.max(1, frames[i]!)).toFixed(2),
      'all delivered': `${((count(i, COUNTER.events) / expected[i]!) * 100).toFixed(1)}%`,
    }));
    console.table(rows);
    console.log(
      `CPU: user + system from /proc/<pid>/stat (10 ms ticks) from the end of the warm-up until every system delivered every event (${seconds.toFixed(1)} s); received events = deliveries / ${VIEWERS}.`,
    );
  } finally {
    await Promise.all(workers.map((w) => ask(w, { cmd: 'close' }, 'closed').catch(() => undefined)));
    await Promise.all(workers.map((w) => w.terminate()));
    if (publisher) await stopChild(publisher);
    await Promise.all(systems.map((s) => s.stop()));
    await delta?.kill('SIGKILL');
    await redis?.stop();
    await db?.drop();
  }
}

await main();
process.exit(0);
