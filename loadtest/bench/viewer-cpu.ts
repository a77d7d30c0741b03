/**
 * `node --import tsx loadtest/bench/viewer-cpu.ts`: what one received frame costs the load
 * driver's viewers, by WebSocket client (`ws` package vs the driver's lean client), measured at
 * the same moment on the same frames. A plain uWS server (viewer-cpu-server.ts) publishes the
 * stream scenario's append frames — REPLIES scopes, 30 tokens/s, 2 tokens per append, in rounds
 * every 10 ms, the real events' shape — and one client process per transport
 * (viewer-cpu-clients.ts) holds VIEWERS viewers of every scope with the scenario's tracking
 * (cursors, texts applied by offset, latency per token). CPU (user + system, /proc) of each
 * client process over the publishing window, divided by the frames it received; then every
 * viewer's text is checked against the others (same sha1) and the counts against what was sent.
 *
 * Env: VARIANTS (`ws+eld,lean+eld`: the client processes, each a transport, `+eld` with the
 * 1 ms event-loop-delay monitor the driver's viewer threads run; `floor`: the lean client's
 * sockets doing nothing with a frame, what any client pays), REPLIES (100), VIEWERS (3), VIEWER_CPU_MS (10000 publishing, after 2 s warm-up), ROUNDS (3),
 * VIEWER_CPU_PROF=<dir> (every child writes a --cpu-prof profile there).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ViewerTransport } from '../driver/worker-messages';

const REPLIES = Number(process.env.REPLIES ?? 100);
const VIEWERS = Number(process.env.VIEWERS ?? 3);
const WINDOW_MS = Number(process.env.VIEWER_CPU_MS ?? 10_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
/** Client processes: a transport, `+eld` for the event-loop-delay monitor (1 ms) the driver's viewer threads run. */
const VARIANTS = (process.env.VARIANTS ?? 'ws+eld,lean+eld').split(',');
const HERE = fileURLToPath(new URL('.', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function child(file: string, env: Record<string, string>): ChildProcess {
  const profile = process.env.VIEWER_CPU_PROF
    ? ['--cpu-prof', '--cpu-prof-dir', process.env.VIEWER_CPU_PROF]
    : [];
  return spawn(process.execPath, [...profile, '--import', 'tsx', `${HERE}${file}`], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function next<T>(c: ChildProcess, type: string, timeoutMs = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} in ${timeoutMs} ms`)), timeoutMs);
    const on = (m: { type: string }) => {
      if (m.type !== type) return;
      clearTimeout(timer);
      c.off('message', on);
      resolve(m as T);
    };
    c.on('message', on);
  });
}

/** CPU seconds of a process: [user, system]. */
function cpuSeconds(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]) / 100, Number(f[12]) / 100];
}

interface Report {
  frames: number;
  delivered: number;
  lost: number;
  duplicates: number;
  errors: Record<string, number>;
  tokens: number;
  gaps: number;
  skipped: number;
  /** null when no append was measured (JSON has no NaN). */
  appendP99: number | null;
  digests: string[];
}

function reports(clients: ChildProcess[]): Promise<Report[]> {
  return Promise.all(
    clients.map((c) => {
      c.send({ cmd: 'report' });
      return next<Report>(c, 'report');
    }),
  );
}

async function round(index: number): Promise<Record<string, string>[]> {
  const server = child('viewer-cpu-server.ts', { PORT: '0' });
  const { port } = await next<{ port: number }>(server, 'ready');
  const scopes = Array.from({ length: REPLIES }, (_, i) => `agent:bench-${index}-${i}`);
  const viewerScopes = Array.from({ length: VIEWERS }, () => scopes).flat();
  const clients = VARIANTS.map((v) =>
    child('viewer-cpu-clients.ts', {
      URL: `ws://127.0.0.1:${port}/sync`,
      TRANSPORT: v.split('+')[0] as ViewerTransport,
      LOOP_MONITOR: v.includes('+eld') ? '1' : '',
    }),
  );
  try {
    await Promise.all(
      clients.map((c) => {
        c.send({ cmd: 'open', scopes: viewerScopes });
        return next(c, 'opened');
      }),
    );
    server.send({ cmd: 'start', scopes });
    await sleep(2000);
    const cpu0 = clients.map((c) => cpuSeconds(c.pid!));
    const at0 = await reports(clients);
    await sleep(WINDOW_MS);
    const cpu1 = clients.map((c) => cpuSeconds(c.pid!));
    const at1 = await reports(clients);
    server.send({ cmd: 'stop' });
    const { published } = await next<{ published: number }>(server, 'stopped');
    await sleep(500);
    const final = await reports(clients);
    const reference = new Set(final[0]!.digests);
    return VARIANTS.map((t, i) => {
      const frames = at1[i]!.frames - at0[i]!.frames;
      const f = final[i]!;
      const floor = t === 'floor';
      const sameTexts = f.digests.length === viewerScopes.length && f.digests.every((d) => reference.has(d));
      return {
        round: String(index + 1),
        transport: t,
        'frames in window': String(frames),
        'µs CPU / frame': (((cpu1[i]![0] + cpu1[i]![1] - cpu0[i]![0] - cpu0[i]![1]) * 1e6) / frames).toFixed(
          1,
        ),
        'of which user / sys': `${(((cpu1[i]![0] - cpu0[i]![0]) * 1e6) / frames).toFixed(1)} / ${(((cpu1[i]![1] - cpu0[i]![1]) * 1e6) / frames).toFixed(1)}`,
        // The floor only counts frames: it tracks nothing to check.
        'all delivered, in order': floor
          ? '–'
          : String(f.delivered === published * VIEWERS && f.lost === 0 && f.duplicates === 0 && f.gaps === 0),
        'texts identical': floor ? '–' : String(sameTexts),
        errors: JSON.stringify(f.errors),
        'append→viewer p99 ms': f.appendP99 === null ? '–' : f.appendP99.toFixed(1),
      };
    });
  } finally {
    // Disconnected, a child exits by itself (writing a --cpu-prof profile when NODE_OPTIONS asks).
    for (const c of [...clients, server]) if (c.connected) c.disconnect();
    await sleep(1000);
    for (const c of [...clients, server]) c.kill('SIGKILL');
  }
}

const load0 = loadavg()[0]!;
const rows: Record<string, string>[] = [];
for (let i = 0; i < ROUNDS; i++) rows.push(...(await round(i)));
console.log(
  `viewer CPU: ${REPLIES} replies × ${VIEWERS} viewers, 30 tokens/s, 2 tokens per append (${(REPLIES * 15 * VIEWERS).toLocaleString()} frames/s per client process), ${WINDOW_MS / 1000} s windows; load average ${load0.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)}`,
);
console.table(rows);
process.exit(0);
