import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { markdownTable, updateBenchmarkSection } from '../../../test/support/bench';
import { tokenFor } from '../../../test/support/tokens';
import { WS_COMPRESSION_MODES, type WsCompression } from '../src/config';
import type { CpuCommand, CpuReport } from './compression-cpu-server';
import { benchScopes } from './fanout-events';

// `node --import tsx services/gateway/bench/compression-cpu.bench.ts [--write-doc]`: what
// permessage-deflate costs a gateway per delivered append frame. One gateway process per
// WS_COMPRESSION setting (compression-cpu-server.ts), all at once on the same schedule: SCOPES
// agent scopes × VIEWERS `ws` viewers each (in this process, which offers permessage-deflate as
// browsers do), one append event (one token) per frame, RATE events/s in rounds of ROUND_MS. Each
// gateway's CPU (user + system, /proc) from the first publish until its viewers received every
// frame, divided by the frames delivered; the publishing itself (bus message, parse) is the same
// work in every process, so the difference to `off` is what compression costs. Beside it the
// bytes the viewers' TCP sockets read per frame.
// The window is repeated CPU_REPEATS times on the same processes and the median of each figure is
// reported (the load of this shared machine moves a single window by ±15 %).
// Env: CPU_SCOPES (100), CPU_VIEWERS (3), CPU_RATE (300), CPU_MS (10000), CPU_ROUND_MS (10),
// CPU_REPEATS (5).

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const SCOPES = env('CPU_SCOPES', 100);
const VIEWERS = env('CPU_VIEWERS', 3);
const RATE = env('CPU_RATE', 300);
const DURATION_MS = env('CPU_MS', 10_000);
const ROUND_MS = env('CPU_ROUND_MS', 10);
/** Publishing windows, one after another on the same processes; the table gives their median. */
const REPEATS = env('CPU_REPEATS', 5);
const HERE = fileURLToPath(new URL('.', import.meta.url));

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function next<T extends CpuReport>(child: ChildProcess, type: T['type'], timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${type}' within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (report: CpuReport) => {
      if (report.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(report as T);
    };
    child.on('message', onMessage);
  });
}

interface Run {
  mode: WsCompression;
  child: ChildProcess;
  /** Per viewer: its TCP socket, the sync frames and the events in them received this window. */
  viewers: { socket: Socket; frames: number; events: number }[];
  cpuAtStart: number;
  wireAtStart: number;
  done?: { cpu: number; wire: number; frames: number; events: number };
  /** µs CPU per delivered event, wire bytes per event and events per frame, per window. */
  windows: { us: number; wire: number; events: number; perFrame: number; cpu: number }[];
}

async function startRun(mode: WsCompression, scopes: string[], token: string): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', `${HERE}compression-cpu-server.ts`], {
    env: { ...process.env, WS_COMPRESSION: mode },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const { port } = await next<Extract<CpuReport, { type: 'ready' }>>(child, 'ready', 60_000);
  const viewers: Run['viewers'] = [];
  for (const scope of scopes) {
    await Promise.all(
      Array.from({ length: VIEWERS }, async () => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/sync?token=${token}`);
        const viewer = { socket: undefined as unknown as Socket, frames: 0, events: 0 };
        ws.once('upgrade', (res: IncomingMessage) => {
          viewer.socket = res.socket as Socket;
        });
        await new Promise<void>((resolve, reject) => {
          ws.once('error', reject);
          ws.once('open', () => ws.send(JSON.stringify({ type: 'subscribe', scope })));
          ws.on('message', (data: Buffer) => {
            const text = data.toString();
            if (text.startsWith('{"type":"subscribed"')) resolve();
            else if (text.startsWith('{"type":"sync"')) {
              viewer.frames++;
              viewer.events += (JSON.parse(text) as { events: unknown[] }).events.length;
            }
          });
        });
        viewers.push(viewer);
      }),
    );
  }
  return { mode, child, viewers, cpuAtStart: 0, wireAtStart: 0, windows: [] };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

async function main() {
  const startedLoad = loadavg()[0]!;
  const scopes = benchScopes(SCOPES);
  const token = await tokenFor(['*'], 'bench-compression', 3600);
  const runs: Run[] = [];
  try {
    for (const mode of WS_COMPRESSION_MODES) runs.push(await startRun(mode, scopes, token));
    const rounds = Math.round(DURATION_MS / ROUND_MS);
    const perRound = Math.max(1, Math.round((RATE * ROUND_MS) / 1000));
    const expected = rounds * perRound * VIEWERS;
    for (let repeat = 0; repeat < REPEATS; repeat++)
      await measureWindow(runs, scopes, rounds, perRound, expected);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const usOff = runs[0]!.windows.map((w) => w.us);
    const rows = runs.map((run) => {
      const us = run.windows.map((w) => w.us);
      const ratios = us.map((u, i) => u / usOff[i]!);
      return [
        `\`${run.mode}\``,
        sum(run.windows.map((w) => w.events)).toLocaleString('en-US'),
        run.windows.map((w) => w.perFrame.toFixed(2)).join(', '),
        median(us).toFixed(1),
        (median(us) - median(usOff)).toFixed(1),
        median(ratios).toFixed(2),
        ratios.map((r) => r.toFixed(2)).join(', '),
        median(run.windows.map((w) => w.wire)).toFixed(0),
      ];
    });
    const table = markdownTable(
      [
        'WS_COMPRESSION',
        'appends delivered',
        'events per frame, each window',
        'µs CPU per delivered append (median)',
        'µs more than off',
        'ratio to off (median)',
        'ratio to off, each window',
        'wire bytes per append',
      ],
      rows,
    );
    const load = `${startedLoad.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end`;
    const markdown = `### Gateway CPU per delivered append with permessage-deflate (\`services/gateway/bench/compression-cpu.bench.ts\`)

${new Date().toISOString().slice(0, 10)}: one real gateway process per \`WS_COMPRESSION\` setting, all at once on the same schedule: ${SCOPES} agent scopes × ${VIEWERS} \`ws\` viewers (offering permessage-deflate, as browsers do), one append event (one token) per frame, ${RATE} events/s published in rounds of ${ROUND_MS} ms from inside each gateway's process (the same work in each, so the difference to \`off\` is compression's), ${REPEATS} windows of ${DURATION_MS / 1000} s one after another; medians over the windows, each window's ratio compares processes measured at the same moment. CPU (user + system, \`/proc\`) from the first publish until the viewers held every event. The events are the fan-out benches' append events (with a \`bench_t\` stamp in each), so their bytes differ from the stream-wire table's contract-shaped frames; that table is the one for bytes. Load average ${load}, shared 2-core machine.

${table}`;
    console.log(`\n${markdown}\n`);
    if (process.argv.includes('--write-doc')) updateBenchmarkSection('compression-cpu', markdown);
  } finally {
    for (const run of runs) run.child.kill('SIGKILL');
  }
  process.exit(0);
}

await main();

/** One publishing window on every process at once; appends each process's figures to its run. */
async function measureWindow(
  runs: Run[],
  scopes: string[],
  rounds: number,
  perRound: number,
  expected: number,
) {
  for (const run of runs) {
    run.done = undefined;
    run.cpuAtStart = cpuSeconds(run.child.pid!);
    run.wireAtStart = sum(run.viewers.map((v) => v.socket.bytesRead));
    for (const v of run.viewers) {
      v.frames = 0;
      v.events = 0;
    }
  }
  for (const run of runs) {
    run.child.send({ cmd: 'run', scopes, perRound, roundMs: ROUND_MS, rounds } satisfies CpuCommand);
  }
  const deadline = Date.now() + DURATION_MS * 6 + 30_000;
  while (runs.some((r) => !r.done) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    for (const run of runs) {
      const events = sum(run.viewers.map((v) => v.events));
      if (!run.done && events >= expected) {
        run.done = {
          cpu: cpuSeconds(run.child.pid!) - run.cpuAtStart,
          wire: sum(run.viewers.map((v) => v.socket.bytesRead)) - run.wireAtStart,
          frames: sum(run.viewers.map((v) => v.frames)),
          events,
        };
      }
    }
  }
  if (runs.some((r) => !r.done)) throw new Error('not every event was delivered before the deadline');
  for (const run of runs) {
    const d = run.done!;
    run.windows.push({
      us: (d.cpu / d.events) * 1e6,
      wire: d.wire / d.events,
      events: d.events,
      perFrame: d.events / d.frames,
      cpu: d.cpu,
    });
  }
  const last = (r: Run) => r.windows.at(-1)!;
  console.log(
    runs
      .map((r) => `${r.mode}: ${last(r).us.toFixed(1)} µs/event, ${last(r).perFrame.toFixed(2)} events/frame`)
      .join('; '),
  );
}
