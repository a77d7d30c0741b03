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
 *    window; and, today only, the floors that figure stands on, each in its own page of the same
 *    run: the stream's frames built but not delivered (the bench's own cost), delivered to a client
 *    with nothing mounted, and the same header and rows written with DOM calls (no React). The
 *    differences between them say where the figure goes (`apply.trace.ts` breaks one down by
 *    trace event).
 *
 *   node --import tsx packages/client/scripts/apply.browser.bench.ts [--seconds 4] [--runs 3] [--no-write]
 *
 * Each stream figure is the median by CPU of `--runs` streams, each in a fresh page.
 *
 * Rewrites its section of docs/benchmarks.md unless `--no-write`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { markdownTable, updateBenchmarkSection } from '../../../test/support/bench';
import { launchChromium } from '../../../test/support/chromium';

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
const consoleCss = readFileSync(join(root, 'packages/console/src/styles.css'), 'utf8');

interface Bench {
  applyOne(count: number, events: number): { msPerEvent: number; best: number; batches: number[] };
  mountApp(count: number): Promise<number>;
  mountConsole(count: number): Promise<number>;
  mountFloor(count: number, dom: boolean): Promise<number>;
  stream(perSecond: number, seconds: number, mode: 'update' | 'append', deliver: boolean): Promise<number>;
}

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

async function withPage<T>(
  browser: Browser,
  script: string,
  run: (page: import('playwright-core').Page) => Promise<T>,
) {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  page.on('console', (m) => m.type() === 'error' && console.error('page console:', m.text()));
  try {
    await page.setContent('<!doctype html><html><body><div id="root"></div></body></html>');
    // The console's stylesheet (its message list needs a bounded, scrolling box), in a 900 px column.
    await page.addStyleTag({
      content: `${consoleCss}\n#root { height: 900px; display: flex; flex-direction: column; }`,
    });
    await page.addScriptTag({ content: script });
    return await run(page);
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
  /** Bootstrap frame of the 10,000 messages to first render, ms. */
  firstRender: number;
}

interface Figures {
  apply: Record<number, { median: number; best: number }>;
  streamUpdate: StreamFigures;
  streamAppend: StreamFigures | undefined;
  /** The console's virtualised message list, append events. */
  streamConsole: StreamFigures | undefined;
  /** Floors of the append stream (today only): what the hooks' figure is made of. */
  floors: { frames: StreamFigures; client: StreamFigures; handDom: StreamFigures } | undefined;
}

type Mount = 'mountApp' | 'mountConsole' | 'client' | 'handDom';

async function measure(browser: Browser, script: string, baseline: boolean): Promise<Figures> {
  const apply: Record<number, { median: number; best: number }> = {};
  for (const count of [1_000, 10_000, 50_000]) {
    // The baseline copies the model map per event: fewer events keep its run short.
    const events = baseline ? Math.max(75, Math.round(2_000_000 / count)) : 3_000;
    apply[count] = await withPage(browser, script, async (page) => {
      const r = await page.evaluate(
        ([c, e]) => (window as unknown as { __bench: Bench }).__bench.applyOne(c!, e!),
        [count, events],
      );
      return { median: r.msPerEvent, best: r.best };
    });
  }
  const streamOnce = async (mode: 'update' | 'append', mount: Mount, deliver: boolean) =>
    withPage(browser, script, async (page) => {
      const firstRender = await page.evaluate((m) => {
        const bench = (window as unknown as { __bench: Bench }).__bench;
        if (m === 'client' || m === 'handDom') return bench.mountFloor(10_000, m === 'handDom');
        return bench[m](10_000);
      }, mount);
      const idle = await mainThread(page, () => page.waitForTimeout(seconds * 1000));
      const busy = await mainThread(page, () =>
        page.evaluate(
          ([s, m, d]) =>
            (window as unknown as { __bench: Bench }).__bench.stream(
              30,
              Number(s),
              m as 'update',
              d === 'deliver',
            ),
          [String(seconds), mode, deliver ? 'deliver' : 'build'],
        ),
      );
      return {
        task: (busy.task - idle.task) / seconds,
        script: (busy.script - idle.script) / seconds,
        cpu: (busy.cpu - idle.cpu) / seconds,
        idle: idle.task / seconds,
        firstRender,
      };
    });
  // A loaded machine makes single streams noisy (±15%): the median of a few fresh pages.
  const streamed = async (mode: 'update' | 'append', mount: Mount, deliver = true) => {
    const figures: StreamFigures[] = [];
    for (let i = 0; i < runs; i++) figures.push(await streamOnce(mode, mount, deliver));
    return figures.sort((a, b) => a.cpu - b.cpu)[figures.length >> 1]!;
  };
  const update = await streamed('update', 'mountApp');
  const append = baseline ? undefined : await streamed('append', 'mountApp');
  const consoleList = baseline ? undefined : await streamed('append', 'mountConsole');
  const floors = baseline
    ? undefined
    : {
        frames: await streamed('append', 'client', false),
        client: await streamed('append', 'client'),
        handDom: await streamed('append', 'handDom'),
      };
  return { apply, streamUpdate: update, streamAppend: append, streamConsole: consoleList, floors };
}

const baselineDir = extractBaseline();
const browser = await launchChromium();
try {
  const [current, old] = [await bundle(undefined), await bundle(baselineDir)];
  const load = loadavg()[0]!.toFixed(1);
  const before = await measure(browser, old, true);
  const after = await measure(browser, current, false);
  const ms = (n: number) => (n >= 1 ? `${n.toFixed(1)} ms` : `${(n * 1000).toFixed(0)} µs`);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(a / b < 10 ? 1 : 0)}×`;
  const rows = [1_000, 10_000, 50_000].map((n) => [
    `one event into ${n.toLocaleString('en')} records: median (best) of 15 batches`,
    `${ms(before.apply[n]!.median)} (${ms(before.apply[n]!.best)})`,
    `${ms(after.apply[n]!.median)} (${ms(after.apply[n]!.best)})`,
    ratio(before.apply[n]!.median, after.apply[n]!.median),
  ]);
  rows.push([
    '10,000-message scope: bootstrap frame to first render with the hooks mounted',
    ms(before.streamUpdate.firstRender),
    ms(after.streamUpdate.firstRender),
    ratio(before.streamUpdate.firstRender, after.streamUpdate.firstRender),
  ]);
  const perSecond = (f: StreamFigures) =>
    `CPU ${f.cpu.toFixed(0)} ms; tasks ${f.task.toFixed(0)} ms (script ${f.script.toFixed(0)} ms)`;
  rows.push([
    '30 tokens/s into a 10,000-message scope, hooks mounted: main thread per second',
    perSecond(before.streamUpdate),
    perSecond(after.streamUpdate),
    ratio(before.streamUpdate.cpu, Math.max(after.streamUpdate.cpu, 0.1)),
  ]);
  rows.push(['same, as append events (v1.1; today only)', '—', perSecond(after.streamAppend!), '']);
  const floors = after.floors!;
  rows.push([
    'floor: the same append stream, frames built on schedule but not delivered (the bench itself)',
    '—',
    perSecond(floors.frames),
    '',
  ]);
  rows.push([
    'floor: delivered to the client, nothing mounted (parse, validate, apply, publish)',
    '—',
    perSecond(floors.client),
    '',
  ]);
  rows.push([
    'floor: the same header and 20 rows written with DOM calls on each publish, no React',
    '—',
    perSecond(floors.handDom),
    '',
  ]);
  rows.push([
    "console's virtualised message list: a 10,000-message agent opens (bootstrap frame to newest bubble shown)",
    '—',
    ms(after.streamConsole!.firstRender),
    '',
  ]);
  rows.push([
    "console's message list following 30 tokens/s (append events): main thread per second",
    '—',
    perSecond(after.streamConsole!),
    '',
  ]);
  const table = markdownTable(
    ['Chromium, same run', `baseline (${BASELINE_COMMIT})`, 'today', 'ratio'],
    rows,
  );
  const note = `Measured ${new Date().toISOString().slice(0, 10)}, load average ${load} at the start (2 shared cores); Chromium ${browser.version()}, React in production mode; an idle window of the same length before each stream (${before.streamUpdate.idle.toFixed(1)} / ${after.streamUpdate.idle.toFixed(1)} ms per second) is subtracted from the stream figures. Targets: ≤ 0.2 ms per event at 50k records; ≤ 30 ms of main thread per second for the stream. CPU is the main thread's CPU time (DevTools \`ThreadTime\`), which a busy machine inflates much less than wall time (the same code measured 59 ms per second at load 2.9 and 67 at load 17.7 on this machine, while its task time doubled); tasks is wall time (\`TaskDuration\`), which preemption inflates.`;
  const f = after.floors!;
  const hooks = after.streamAppend!.cpu;
  const part = (n: number) => `${Math.max(n, 0).toFixed(0)} ms`;
  const split = `Where the hooks' append figure (CPU ${hooks.toFixed(0)} ms per second) goes, from the floors of the same run: the bench building its frames on schedule ${part(f.frames.cpu)}; the client parsing, validating, applying and publishing them ${part(f.client.cpu - f.frames.cpu)}; the browser showing each token — style, layout, paint and the frame of a header and 20 rows changed per token, written here by hand with DOM calls — ${part(f.handDom.cpu - f.client.cpu)}; React and the hooks on top of that ${part(hooks - f.handDom.cpu)}. Every token is its own event in its own task, 33 ms apart, so each is its own frame (60 Hz frames: no two tokens share one, and batching publishes per animation frame would not merge them); with one rendered frame per token the hand-written page is already above the 30 ms target on this machine, so the target is not met by cutting the hooks' work: what is left to cut is the browser's per-frame work or the number of frames (drawing a stream at a lower rate than its tokens), which would change what the reader sees and is not done here.`;
  console.log(table);
  console.log(note);
  console.log(split);
  if (!values['no-write']) {
    updateBenchmarkSection(
      'client',
      `## Client apply in Chromium (\`npm run bench:client\`)\n\n\`packages/client/scripts/apply.browser.bench.ts\` bundles the page in \`apply-page.tsx\` twice with esbuild — against today's client and React packages, and against the baseline's sources taken from git (\`${BASELINE_COMMIT}\`, the store that copied the model map per publish) — and runs both in the same Chromium. Per event: an \`update\` frame in its own task, published on its own, with a listener reading the scope's list (median and best of 15 batches). Stream: a 10,000-message agent with a header on \`useAgentSync\` and a transcript on \`useRecords\` (rendering its last 20 rows), and in a page of its own the console's virtualised \`MessageList\`, both in the console's stylesheet, one token per frame every 33 ms for ${seconds} s, each figure the median of ${runs} streams in fresh pages; main-thread CPU and task time from the DevTools protocol.\n\n${table}\n\n${note}\n\n${split}`,
    );
  }
} finally {
  await browser.close();
  rmSync(baselineDir, { recursive: true, force: true });
}
