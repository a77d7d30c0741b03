/**
 * Client apply cost in real Chromium (`npm run bench:client`), today's store against the baseline
 * (the store before the incremental one, whose sources are taken from git at BASELINE_COMMIT and
 * bundled the same way), in the same run:
 *
 * 1. one `update` event into a store of 1k / 10k / 50k records, each frame its own task and
 *    published on its own, with a listener reading the scope's list — ms per event in the page;
 * 2. a reply streaming 30 tokens/s for a few seconds into a 10,000-message scope with
 *    `useAgentSync` and `useRecords` mounted — main-thread CPU (ThreadTime) and task time per
 *    second of streaming, from the DevTools protocol's `Performance.getMetrics`, minus an idle
 *    window. The frames come as a user's page gets them: from a WebSocket server in this
 *    process (`apply-socket.ts`, built here beforehand, one message per token on schedule) to
 *    the page's sync client over the browser's WebSocket, so the figure is the page's whole cost
 *    of a token — the socket message's dispatch, parse, validation, apply, render, paint — and
 *    nothing for making frames. Today only: the same stream built and delivered in the page (the
 *    bench's older method), the console's virtualised list (its stylesheet as it is, and with
 *    `CONTAINMENT` of apply-style.ts added), and the floors the figure stands on, each in its own
 *    page of the same run: a bare WebSocket receiving the frames, the same changing one short
 *    text node per frame, the client with nothing mounted, and the same header and rows written
 *    with DOM calls (no React). The differences between them say where the figure goes
 *    (`apply.trace.ts` breaks one down by trace event).
 *
 *   node --import tsx packages/client/scripts/apply.browser.bench.ts [--seconds 4] [--runs 3] [--no-write]
 *
 * Each stream figure is the median by CPU of `--runs` streams, each in a fresh page.
 *
 * Rewrites its section of docs/benchmarks.md unless `--no-write`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { markdownTable, updateBenchmarkSection } from '../../../test/support/bench';
import { launchChromium } from '../../../test/support/chromium';
import { type FrameServer, startFrameServer } from './apply-socket';
import { consoleStyles } from './apply-style';

/** The last commit with the store that copied the model map on every publish. */
const BASELINE_COMMIT = 'ae9f865';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    runs: { type: 'string', default: '3' },
    'no-write': { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
/** Each stream figure is the median (by CPU) of this many streams, each in a fresh page. */
const runs = Number(values.runs);
const root = fileURLToPath(new URL('../../..', import.meta.url));
const entry = join(root, 'packages/client/scripts/apply-page.tsx');

interface Bench {
  applyOne(count: number, events: number): { msPerEvent: number; best: number; batches: number[] };
  mountApp(count: number, url?: string): Promise<number>;
  mountConsole(count: number, url?: string): Promise<number>;
  mountFloor(count: number, kind: Floor, url?: string): Promise<number>;
  stream(perSecond: number, seconds: number, mode: 'update' | 'append'): Promise<number>;
  shown(last: string): Promise<void>;
  renders(): Record<string, number>;
  setToken(token: string): void;
}

type Floor = 'socket' | 'socketFrame' | 'client' | 'handDom';
type Mount = 'mountApp' | 'mountConsole' | Floor;

/** The baseline's client, react and protocol sources, extracted from git into a temp folder. */
function extractBaseline(): string {
  const dir = mkdtempSync(join(tmpdir(), 'client-baseline-'));
  const tar = execFileSync(
    'git',
    ['archive', BASELINE_COMMIT, 'packages/client/src', 'packages/react/src', 'packages/protocol/src'],
    { cwd: root, maxBuffer: 64 * 1024 * 1024 },
  );
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  return dir;
}

async function bundle(baseline: string | undefined): Promise<string> {
  const src = (pkg: string) => join(baseline ?? root, `packages/${pkg}/src/index.ts`);
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'error',
    nodePaths: [join(root, 'node_modules')],
    alias: {
      '@openagents/sync-client': src('client'),
      '@openagents/sync-react': src('react'),
      '@openagents/sync-protocol': src('protocol'),
    },
    define: { __BASELINE__: String(baseline !== undefined), 'process.env.NODE_ENV': '"production"' },
    jsx: 'automatic',
  });
  return result.outputFiles[0]!.text;
}

let pages = 0;

async function withPage<T>(
  browser: Browser,
  script: string,
  css: string,
  run: (page: import('playwright-core').Page, name: string) => Promise<T>,
) {
  // 1000 px tall: the 900 px column (and the row being streamed at its end) is in view.
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  page.on('console', (m) => m.type() === 'error' && console.error('page console:', m.text()));
  try {
    await page.setContent('<!doctype html><html><body><div id="root"></div></body></html>');
    await page.addStyleTag({ content: css });
    await page.addScriptTag({ content: script });
    // Each page's socket presents its own token, which the server routes the stream by.
    const name = `page${++pages}`;
    await page.evaluate((n) => (window as unknown as { __bench: Bench }).__bench.setToken(n), name);
    return await run(page, name);
  } finally {
    await page.close();
  }
}

/**
 * Main-thread time (ms) the page spends during `during()`, from the DevTools protocol: all tasks
 * (wall time, which a busy machine inflates by preempting the renderer), script alone, and the
 * main thread's CPU time (ThreadTime), which preemption does not inflate.
 */
async function mainThread(
  page: import('playwright-core').Page,
  during: () => Promise<unknown>,
): Promise<{ task: number; script: number; cpu: number }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const read = async () => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    const get = (name: string) => (metrics.find((m) => m.name === name)?.value ?? 0) * 1000;
    return { task: get('TaskDuration'), script: get('ScriptDuration'), cpu: get('ThreadTime') };
  };
  const before = await read();
  await during();
  const after = await read();
  await cdp.detach();
  return {
    task: after.task - before.task,
    script: after.script - before.script,
    cpu: after.cpu - before.cpu,
  };
}

interface StreamFigures {
  /** All main-thread tasks, ms per second of streaming, idle subtracted. */
  task: number;
  /** Of which JavaScript. */
  script: number;
  /** Main-thread CPU time, ms per second of streaming, idle subtracted. */
  cpu: number;
  /** Idle main-thread ms per second before the stream (subtracted). */
  idle: number;
  /** Following the scope to first render, ms. */
  firstRender: number;
  /** Renders per token of the bench page's header, transcript and rows. */
  renders: Record<string, number>;
}

/** Each stream: over the bench's WebSocket (what a page pays), or built and delivered in the page. */
type Path = 'socket' | 'inPage';

interface Figures {
  apply: Record<number, { median: number; best: number }>;
  /** Update events over the socket, hooks mounted (both builds). */
  streamUpdate: StreamFigures;
  /** Today only from here on. */
  streamAppend: StreamFigures | undefined;
  streamAppendBatched: StreamFigures | undefined;
  /** The same, frames built in the page and handed to the client (the bench's older method). */
  streamAppendInPage: StreamFigures | undefined;
  /** The console's virtualised message list, append events, its stylesheet as it is and with containment added. */
  streamConsole: StreamFigures | undefined;
  streamConsoleContained: StreamFigures | undefined;
  /** Floors of the append stream over the socket: what the hooks' figure is made of. */
  floors: Record<Floor, StreamFigures> | undefined;
}

async function measure(
  browser: Browser,
  script: string,
  baseline: boolean,
  server: FrameServer,
): Promise<Figures> {
  const apply: Record<number, { median: number; best: number }> = {};
  for (const count of [1_000, 10_000, 50_000]) {
    // The baseline copies the model map per event: fewer events keep its run short.
    const events = baseline ? Math.max(75, Math.round(2_000_000 / count)) : 3_000;
    apply[count] = await withPage(browser, script, consoleStyles(root), async (page) => {
      const r = await page.evaluate(
        ([c, e]) => (window as unknown as { __bench: Bench }).__bench.applyOne(c!, e!),
        [count, events],
      );
      return { median: r.msPerEvent, best: r.best };
    });
  }
  const streamOnce = async (
    mode: 'update' | 'append',
    mount: Mount,
    path: Path,
    css: string,
    tokensPerEvent = 1,
  ) =>
    withPage(browser, script, css, async (page, name) => {
      const url = path === 'socket' ? server.url : undefined;
      const firstRender = await page.evaluate(
        ([m, u]) => {
          const bench = (window as unknown as { __bench: Bench }).__bench;
          if (m === 'mountApp' || m === 'mountConsole') return bench[m](10_000, u);
          return bench.mountFloor(10_000, m as Floor, u);
        },
        [mount, url] as const,
      );
      const renders = () => page.evaluate(() => (window as unknown as { __bench: Bench }).__bench.renders());
      const idle = await mainThread(page, () => page.waitForTimeout(seconds * 1000));
      const before = await renders();
      const busy = await mainThread(page, async () => {
        if (path === 'socket') {
          const last = await server.stream(30, seconds, mode, name, tokensPerEvent);
          await page.evaluate((l) => (window as unknown as { __bench: Bench }).__bench.shown(l), last);
        } else {
          await page.evaluate(
            ([s, m]) =>
              (window as unknown as { __bench: Bench }).__bench.stream(30, Number(s), m as 'update'),
            [String(seconds), mode],
          );
        }
      });
      const after = await renders();
      const tokens = 30 * seconds;
      return {
        task: (busy.task - idle.task) / seconds,
        script: (busy.script - idle.script) / seconds,
        cpu: (busy.cpu - idle.cpu) / seconds,
        idle: idle.task / seconds,
        firstRender,
        renders: Object.fromEntries(Object.keys(after).map((k) => [k, (after[k]! - before[k]!) / tokens])),
      };
    });
  // A loaded machine makes single streams noisy (±15%): the median of a few fresh pages.
  const streamed = async (
    mode: 'update' | 'append',
    mount: Mount,
    path: Path = 'socket',
    css = consoleStyles(root),
    tokensPerEvent = 1,
  ) => {
    const figures: StreamFigures[] = [];
    for (let i = 0; i < runs; i++) figures.push(await streamOnce(mode, mount, path, css, tokensPerEvent));
    return figures.sort((a, b) => a.cpu - b.cpu)[figures.length >> 1]!;
  };
  const update = await streamed('update', 'mountApp');
  if (baseline)
    return {
      apply,
      streamUpdate: update,
      streamAppend: undefined,
      streamAppendBatched: undefined,
      streamAppendInPage: undefined,
      streamConsole: undefined,
      streamConsoleContained: undefined,
      floors: undefined,
    };
  return {
    apply,
    streamUpdate: update,
    streamAppend: await streamed('append', 'mountApp'),
    // What the stream writer sends at 30 tokens/s: its 40 ms window holds 2 tokens per append.
    streamAppendBatched: await streamed('append', 'mountApp', 'socket', consoleStyles(root), 2),
    streamAppendInPage: await streamed('append', 'mountApp', 'inPage'),
    streamConsole: await streamed('append', 'mountConsole'),
    streamConsoleContained: await streamed('append', 'mountConsole', 'socket', consoleStyles(root, true)),
    floors: {
      socket: await streamed('append', 'socket'),
      socketFrame: await streamed('append', 'socketFrame'),
      client: await streamed('append', 'client'),
      handDom: await streamed('append', 'handDom'),
    },
  };
}

const baselineDir = extractBaseline();
const browser = await launchChromium();
const server = await startFrameServer(10_000);
try {
  const [current, old] = [await bundle(undefined), await bundle(baselineDir)];
  const load = loadavg()[0]!.toFixed(1);
  const before = await measure(browser, old, true, server);
  const after = await measure(browser, current, false, server);
  const loadEnd = loadavg()[0]!.toFixed(1);
  const ms = (n: number) => (n >= 1 ? `${n.toFixed(1)} ms` : `${(n * 1000).toFixed(0)} µs`);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(a / b < 10 ? 1 : 0)}×`;
  const rows = [1_000, 10_000, 50_000].map((n) => [
    `one event into ${n.toLocaleString('en')} records: median (best) of 15 batches`,
    `${ms(before.apply[n]!.median)} (${ms(before.apply[n]!.best)})`,
    `${ms(after.apply[n]!.median)} (${ms(after.apply[n]!.best)})`,
    ratio(before.apply[n]!.median, after.apply[n]!.median),
  ]);
  rows.push([
    '10,000-message scope over the WebSocket: subscribe to first render with the hooks mounted',
    ms(before.streamUpdate.firstRender),
    ms(after.streamUpdate.firstRender),
    ratio(before.streamUpdate.firstRender, after.streamUpdate.firstRender),
  ]);
  const perSecond = (f: StreamFigures) =>
    `CPU ${f.cpu.toFixed(0)} ms; tasks ${f.task.toFixed(0)} ms (script ${f.script.toFixed(0)} ms)`;
  const f = after.floors!;
  const today = (label: string, figures: StreamFigures) => rows.push([label, '—', perSecond(figures), '']);
  rows.push([
    '**30 tokens/s over the WebSocket into a 10,000-message scope, hooks mounted: main thread per second** (update events)',
    perSecond(before.streamUpdate),
    perSecond(after.streamUpdate),
    ratio(before.streamUpdate.cpu, Math.max(after.streamUpdate.cpu, 0.1)),
  ]);
  today('**same, as append events (v1.1)**', after.streamAppend!);
  today(
    '**same, as the stream writer sends them: 2 tokens per append event (its 40 ms window at 30 tokens/s), 15 messages per second**',
    after.streamAppendBatched!,
  );
  today(
    'same append stream built in the page and handed to `receiveFrame` (the older method: no socket, frames made in the page)',
    after.streamAppendInPage!,
  );
  today('floor: a bare browser WebSocket receiving the frames (no client, no DOM change)', f.socket);
  today(
    'floor: the bare WebSocket changing one short text node per frame (one rendered frame each)',
    f.socketFrame,
  );
  today(
    'floor: the sync client over the WebSocket, nothing mounted (dispatch, parse, validate, apply, publish)',
    f.client,
  );
  today(
    'floor: the client with the same header and 20 rows written with DOM calls on each publish, no React',
    f.handDom,
  );
  rows.push([
    "console's virtualised message list: a 10,000-message agent opens over the WebSocket (subscribe to newest bubble shown)",
    '—',
    ms(after.streamConsole!.firstRender),
    '',
  ]);
  today(
    "console's message list following 30 tokens/s over the WebSocket (append events)",
    after.streamConsole!,
  );
  today(
    'same, with CSS containment added (`contain` on the list, its sizer and rows; `CONTAINMENT` in apply-style.ts)',
    after.streamConsoleContained!,
  );
  const table = markdownTable(
    ['Chromium, same run', `baseline (${BASELINE_COMMIT})`, 'today', 'ratio'],
    rows,
  );
  const r = after.streamAppend!.renders;
  const note = `Measured ${new Date().toISOString().slice(0, 10)}, load average ${load} at the start and ${loadEnd} at the end (2 shared cores); Chromium ${browser.version()}, React in production mode; an idle window of the same length before each stream (${before.streamUpdate.idle.toFixed(1)} / ${after.streamUpdate.idle.toFixed(1)} ms per second) is subtracted from the stream figures. Targets: ≤ 0.2 ms per event at 50k records; ≤ 30 ms of main thread per second for the stream. CPU is the main thread's CPU time (DevTools \`ThreadTime\`), which a busy machine inflates much less than wall time; tasks is wall time (\`TaskDuration\`), which preemption inflates. The stream figures in bold are what a user's page pays: each token arrives as its own WebSocket message from the bench's server (a separate process's socket, as from a gateway) and the figure counts everything the page's main thread does for it — the socket message's dispatch, JSON parse, frame validation, apply, publish, React, style, layout, paint and the frame — and nothing for making the frames. Per token, today's header (\`useAgentSync\` with a selector of the scope's status) rendered ${r.header!.toFixed(2)} times, the transcript ${r.transcript!.toFixed(2)} and its memoised rows ${r.rows!.toFixed(2)} (the streaming row only); the baseline's header has no selector and re-renders per event.`;
  const hooks = after.streamAppend!.cpu;
  const part = (n: number) => `${Math.max(n, 0).toFixed(0)} ms`;
  const cssGain = 1 - after.streamConsoleContained!.cpu / after.streamConsole!.cpu;
  const containment = ` CSS containment (\`contain: content\` on the list and its rows, \`contain: strict\` on the sizer, \`content-visibility: auto\` on off-screen rows) ${cssGain >= 0.1 ? `lowered the console's figure by ${(cssGain * 100).toFixed(0)}%` : "did not lower the console's figure beyond the noise"} (${after.streamConsole!.cpu.toFixed(0)} ms as the stylesheet is, ${after.streamConsoleContained!.cpu.toFixed(0)} ms with it, same run).`;
  const frame = f.socketFrame.cpu - f.socket.cpu;
  const split = `Where the hooks' append figure (CPU ${hooks.toFixed(0)} ms per second) goes, from the floors of the same run (each a difference of two of them, so they add up to about the figure): the browser receiving one WebSocket message per token ${part(f.socket.cpu)} (Chromium reads WebSocket data on the page's main thread: an IPC message and a data-pipe read per message); the client parsing, validating, applying and publishing ${part(f.client.cpu - f.socket.cpu)}; rendering one frame per token for the smallest possible change (one short text node) ${part(frame)}; the header and 20 rows' own style, layout and paint beyond that smallest frame (written by hand with DOM calls) ${part(f.handDom.cpu - f.client.cpu - frame)}; React and the hooks ${part(hooks - f.handDom.cpu)}. The older in-page method (${after.streamAppendInPage!.cpu.toFixed(0)} ms) built each frame in the page and called the client directly: a timer task instead of a socket message, so it did not count the socket's dispatch but did count the bench's own frame building.${containment} Every token is its own message in its own task, 33 ms apart, so each is its own frame (batching publishes per animation frame would not merge them); the two floors — a bare socket message and the smallest rendered frame per token — take ${part(f.socketFrame.cpu)} on this machine, ${f.socketFrame.cpu >= 30 ? "already above the 30 ms target, so the target is not met by cutting the client's or React's work: what is left is" : `which leaves ${part(30 - f.socketFrame.cpu)} of the 30 ms target to the client, the page's own rendering and React; beyond cutting those, what is left is`} fewer socket messages (a gateway that batches a reply's pieces into one frame per interval, as the contract allows: \`sync\` frames may batch) or fewer rendered frames (drawing a stream at a lower rate than its tokens), which change what is sent or what the reader sees and are not done here.`;
  console.log(table);
  console.log(note);
  console.log(split);
  if (!values['no-write']) {
    updateBenchmarkSection(
      'client',
      `## Client apply in Chromium (\`npm run bench:client\`)\n\n\`packages/client/scripts/apply.browser.bench.ts\` bundles the page in \`apply-page.tsx\` twice with esbuild — against today's client and React packages, and against the baseline's sources taken from git (\`${BASELINE_COMMIT}\`, the store that copied the model map per publish) — and runs both in the same Chromium. Per event: an \`update\` frame in its own task, published on its own, with a listener reading the scope's list (median and best of 15 batches). Stream: a 10,000-message agent with a header on \`useAgentSync\` and a transcript on \`useRecords\` (its last 20 rows, memoised, in the console's scrolling \`.messages\` box and bubble markup), and in a page of its own the console's virtualised \`MessageList\`, both in the console's stylesheet in a 900 px column of a 1280 × 1000 viewport; one token per WebSocket message every 33 ms for ${seconds} s, sent by a server in the bench's process (\`apply-socket.ts\`) to the page's sync client over the browser's WebSocket; each figure the median of ${runs} streams in fresh pages; main-thread CPU and task time from the DevTools protocol.\n\n${table}\n\n${note}\n\n${split}`,
    );
  }
} finally {
  await browser.close();
  await server.close();
  rmSync(baselineDir, { recursive: true, force: true });
}
