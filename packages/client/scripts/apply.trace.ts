/**
 * Where the main thread goes while a reply streams into the bench page of `npm run bench:client`
 * (`apply-page.tsx`, today's packages): a DevTools trace of the stream, the renderer main
 * thread's CPU time (trace thread time) summed by event name as self time, plus a JavaScript CPU
 * profile summed by function. For deciding what to cut, not a figure for the docs.
 *
 *   node --import tsx packages/client/scripts/apply.trace.ts [--mount mountApp|mountConsole|socket|socketFrame|client|handDom]
 *     [--mode append|update] [--seconds 4] [--per-event N] [--in-page] [--contained] [--js] [--light]
 *     [--cpu N [--fresh] [--ab | --against <commit> | --extra-css <css>...]]
 *
 * The frames come over a real WebSocket from a server in this process (`apply-socket.ts`), as in
 * the bench's headline figures; `--in-page` builds them in the page and hands them to the client
 * instead (the bench's older method, whose figure includes building them). `socket`, `client` and
 * `handDom` are the bench's floors (a bare socket; nothing mounted; the same DOM written by hand).
 * `--js` adds the sampling profiler (which costs main-thread time itself); `--cpu N` skips the
 * trace and prints main-thread CPU (ThreadTime) per second of streaming, idle subtracted, N times:
 * for quick A/B comparisons of a change; with `--ab`, two pages in the same run, alternating: the
 * console's stylesheet as it is and with `CONTAINMENT` (apply-style.ts) added (`--contained`
 * traces that); with `--against <commit>`, two pages alternating: the client, React and protocol
 * packages as they are and as they were at `<commit>` (taken from git, bundled the same way), for
 * a same-run A/B of a change to them; with `--extra-css <css>` (repeatable), one more page per
 * rule, the stylesheet with it appended. `--fresh` opens a new page for every stream, as the bench
 * does (the streamed message starts at its seeded 130 characters each time); without it each
 * variant keeps one page, whose message grows from stream to stream (and so does what a token
 * costs: Blink lays out and paints the whole paragraph). `--per-event N` sends N tokens per append
 * event (the stream writer's batching: 2 at 30 tokens/s). `--light` traces only the `toplevel`,
 * `blink` and `devtools.timeline` categories: the default set adds layout-invalidation tracking
 * (with JavaScript stack traces) that inflates DOM writes and layout several times over.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { launchChromium } from '../../../test/support/chromium';
import { startFrameServer } from './apply-socket';
import { consoleStyles } from './apply-style';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    mount: { type: 'string', default: 'mountApp' },
    mode: { type: 'string', default: 'append' },
    js: { type: 'boolean', default: false },
    cpu: { type: 'string' },
    'in-page': { type: 'boolean', default: false },
    ab: { type: 'boolean', default: false },
    contained: { type: 'boolean', default: false },
    against: { type: 'string' },
    'extra-css': { type: 'string', multiple: true },
    'per-event': { type: 'string', default: '1' },
    fresh: { type: 'boolean', default: false },
    light: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const root = fileURLToPath(new URL('../../..', import.meta.url));
const perEvent = Number(values['per-event']);
const consoleCss = consoleStyles(root);

/** The bench page bundled against the packages' sources under `base` (the worktree, or a commit's). */
async function bundle(base: string): Promise<string> {
  const src = (pkg: string) => join(base, `packages/${pkg}/src/index.ts`);
  return (
    await build({
      absWorkingDir: root,
      entryPoints: [join(root, 'packages/client/scripts/apply-page.tsx')],
      bundle: true,
      minifySyntax: true,
      minifyWhitespace: true,
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
      define: { __BASELINE__: 'false', 'process.env.NODE_ENV': '"production"' },
      jsx: 'automatic',
    })
  ).outputFiles[0]!.text;
}

/** The client, React and protocol sources at `commit`, extracted from git into a temp folder. */
function extract(commit: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'client-against-'));
  const tar = execFileSync(
    'git',
    ['archive', commit, 'packages/client/src', 'packages/react/src', 'packages/protocol/src'],
    { cwd: root, maxBuffer: 64 * 1024 * 1024 },
  );
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  return dir;
}

const script = await bundle(root);
const againstDir = values.against ? extract(values.against) : undefined;
const againstScript = againstDir ? await bundle(againstDir) : undefined;

interface TraceEvent {
  name: string;
  ph: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  tdur?: number;
  args?: { name?: string };
}

const server = values['in-page'] ? undefined : await startFrameServer(10_000);
const url = server?.url;
type Page = import('playwright-core').Page;
/** One reply of `seconds` at 30 tokens/s, over the socket or in the page; resolves when shown. */
async function streamOnce(page: Page, name: string): Promise<void> {
  if (server) {
    const last = await server.stream(30, seconds, values.mode as 'append', name, perEvent);
    await page.evaluate(
      (l) => (window as unknown as { __bench: { shown: (l: string) => Promise<void> } }).__bench.shown(l),
      last,
    );
    return;
  }
  await page.evaluate(
    ([s, m]) =>
      (
        window as unknown as { __bench: { stream: (a: number, b: number, c: string) => Promise<number> } }
      ).__bench.stream(30, Number(s), m!),
    [String(seconds), values.mode!],
  );
}

/** A page with the bench mounted in `css`, its socket presenting `name`. */
async function openPage(css: string, name: string, code = script): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.setContent('<!doctype html><html><body><div id="root"></div></body></html>');
  await page.addStyleTag({ content: css });
  await page.addScriptTag({ content: code });
  await page.evaluate(
    ([m, u, n]) => {
      const bench = (
        window as unknown as {
          __bench: Record<string, (n: number, url?: string) => Promise<number>> & {
            mountFloor: (n: number, kind: string, url?: string) => Promise<number>;
            setToken: (t: string) => void;
          };
        }
      ).__bench;
      bench.setToken(n!);
      if (m === 'socket' || m === 'socketFrame' || m === 'client' || m === 'handDom')
        return bench.mountFloor(10_000, m, u);
      return bench[m!]!(10_000, u);
    },
    [values.mount!, url, name] as const,
  );
  return page;
}

const browser = await launchChromium();
try {
  if (values.cpu) {
    // A/B mode: main-thread CPU (ThreadTime) per second of streaming, idle subtracted, N times;
    // with --ab, alternating between the stylesheet as it is and without its containment rules.
    const variants: [string, string, string][] = values.ab
      ? [
          ['as is', consoleCss, script],
          ['with containment', consoleStyles(root, true), script],
        ]
      : values['extra-css']
        ? [
            ['as is', consoleCss, script] as [string, string, string],
            ...values['extra-css'].map((css): [string, string, string] => [
              `with ${css}`,
              `${consoleCss}\n${css}`,
              script,
            ]),
          ]
        : againstScript
          ? [
              ['as is', consoleCss, script],
              [`at ${values.against}`, consoleCss, againstScript],
            ]
          : [['as is', consoleCss, script]];
    // Each stream's page presents its own name to the server, which routes the stream by it.
    const nameOf = (v: number, i: number) => (values.fresh ? `${variants[v]![0]} #${i}` : variants[v]![0]);
    const open = (v: number, i: number) => {
      const [, css, code] = variants[v]!;
      return openPage(css, nameOf(v, i), code);
    };
    const pages = values.fresh ? [] : await Promise.all(variants.map((_, v) => open(v, 0)));
    const figures = variants.map(() => [] as number[]);
    for (let i = 0; i < Number(values.cpu); i++) {
      for (const v of variants.keys()) {
        const page = values.fresh ? await open(v, i) : pages[v]!;
        const cdp = await page.context().newCDPSession(page);
        await cdp.send('Performance.enable');
        const threadTime = async () =>
          (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'ThreadTime')!.value *
          1000;
        const a = await threadTime();
        await page.waitForTimeout(seconds * 1000);
        const b = await threadTime();
        await streamOnce(page, nameOf(v, i));
        const c = await threadTime();
        figures[v]!.push((c - b - (b - a)) / seconds);
        await cdp.detach();
        if (values.fresh) await page.close();
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
    // Variants alternate, so each iteration's pair shares the machine's load at that moment: the
    // median of the per-iteration ratios says more than a ratio of medians on a busy machine.
    for (let v = 1; v < variants.length; v++) {
      const ratios = figures[v]!.map((f, i) => f / figures[0]![i]!);
      console.log(`${variants[v]![0]} / ${variants[0]![0]}: median ratio ${median(ratios).toFixed(2)}`);
    }
    for (const [v, [name]] of variants.entries())
      console.log(
        `${values.mount} ${values.mode} ×${perEvent} ${server ? 'over the socket' : 'in-page'}${values.fresh ? ', fresh pages' : ''}, ${name}: CPU ms/s ${figures[v]!.map((f) => f.toFixed(1)).join(' ')} (median ${median(figures[v]!).toFixed(1)})`,
      );
    await browser.close();
    await server?.close();
    if (againstDir) rmSync(againstDir, { recursive: true, force: true });
    process.exit(0);
  }
  const page = await openPage(values.contained ? consoleStyles(root, true) : consoleCss, 't');
  const cdp = await page.context().newCDPSession(page);
  const events: TraceEvent[] = [];
  cdp.on('Tracing.dataCollected', (e) => events.push(...(e.value as unknown as TraceEvent[])));
  const complete = new Promise((resolve) => cdp.once('Tracing.tracingComplete', resolve));
  // The sampling profiler costs main-thread time itself: only with --js.
  if (values.js) {
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
  }
  await cdp.send('Tracing.start', {
    transferMode: 'ReportEvents',
    traceConfig: {
      includedCategories: values.light
        ? ['toplevel', 'blink', 'devtools.timeline']
        : [
            'toplevel',
            'blink',
            'cc',
            'v8',
            'devtools.timeline',
            'disabled-by-default-devtools.timeline',
            'disabled-by-default-v8.gc',
          ],
    },
  });
  if (values.js) await cdp.send('Profiler.start');
  const renders = () =>
    page.evaluate(() =>
      (window as unknown as { __bench: { renders: () => Record<string, number> } }).__bench.renders(),
    );
  const rendersBefore = await renders();
  await streamOnce(page, 't');
  const rendersAfter = await renders();
  const profile = values.js ? (await cdp.send('Profiler.stop')).profile : undefined;
  await cdp.send('Tracing.end');
  await complete;

  // The renderer main thread: the CrRendererMain with the most events.
  const mains = events.filter(
    (e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain',
  );
  const count = (pid: number, tid: number) => events.filter((e) => e.pid === pid && e.tid === tid).length;
  const main = mains.sort((a, b) => count(b.pid, b.tid) - count(a.pid, a.tid))[0]!;
  const complete_ = events
    .filter((e) => e.pid === main.pid && e.tid === main.tid && e.ph === 'X' && e.tdur !== undefined)
    .sort((a, b) => a.ts - b.ts || b.dur! - a.dur!);
  // Self thread time per event name: an event's thread time minus its nested events'.
  const self = new Map<string, number>();
  const calls = new Map<string, number>();
  for (const e of complete_) calls.set(e.name, (calls.get(e.name) ?? 0) + 1);
  const stack: { end: number; name: string; child: number; tdur: number }[] = [];
  const pop = () => {
    const top = stack.pop()!;
    self.set(top.name, (self.get(top.name) ?? 0) + top.tdur - top.child);
  };
  let total = 0;
  for (const e of complete_) {
    while (stack.length && stack.at(-1)!.end <= e.ts) pop();
    const parent = stack.at(-1);
    if (parent) parent.child += e.tdur!;
    else total += e.tdur!;
    stack.push({ end: e.ts + e.dur!, name: e.name, child: 0, tdur: e.tdur! });
  }
  while (stack.length) pop();
  const perSecond = (us: number) => `${(us / 1000 / seconds).toFixed(2)} ms/s`;
  console.log(`main thread, top-level trace events: ${perSecond(total)} (${values.mount}, ${values.mode})`);
  const byKind = new Map<string, number>();
  for (const [name, us] of self) byKind.set(kindOf(name), (byKind.get(kindOf(name)) ?? 0) + us);
  for (const [kind, us] of [...byKind].sort((a, b) => b[1] - a[1]))
    console.log(`  ${perSecond(us).padStart(12)}  ${kind} (${((us / total) * 100).toFixed(0)}%)`);
  // The browser's rendering steps, whole (with nested events): how many and how long per token.
  // Only the outermost of a step's events counts: Paint nests (the document's Paint holds the
  // root element's), which once read as two paint passes per frame.
  const tokens = 30 * seconds;
  const messages = Math.ceil(tokens / perEvent);
  for (const name of ['UpdateLayoutTree', 'Layout', 'PrePaint', 'Paint', 'Layerize', 'Commit']) {
    let end = 0;
    const all = complete_.filter((e) => {
      if (e.name !== name || e.ts < end) return false;
      end = e.ts + e.dur!;
      return true;
    });
    const us = all.reduce((sum, e) => sum + e.tdur!, 0);
    console.log(
      `  ${name}: ×${all.length} (${(all.length / messages).toFixed(2)} per socket message), ${perSecond(us)}, ${(us / Math.max(all.length, 1)).toFixed(0)} µs each`,
    );
  }
  console.log(
    `renders per token (page components): ${Object.keys(rendersAfter)
      .map((k) => `${k} ${((rendersAfter[k]! - rendersBefore[k]!) / tokens).toFixed(2)}`)
      .join(', ')}`,
  );
  console.log('by event (self time):');
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30))
    console.log(`  ${perSecond(us).padStart(12)}  ${name} ×${calls.get(name)}`);

  // JavaScript by function (self time), from the sampling profiler.
  if (profile) printProfile(profile);
  await cdp.detach();
} finally {
  await browser.close();
  await server?.close();
}

/** A trace event's share of the frame: what it is spent on. */
function kindOf(name: string): string {
  if (/GC|Sweep|Marking|Scaveng|RememberedSet|Evacuat/i.test(name)) return 'garbage collection';
  if (/MessagePort|SerializedScriptValue|PostMessage/i.test(name))
    return "React scheduler's MessageChannel task";
  if (/^V8\.|^v8\.|FunctionCall|TimerFire|AsyncTask|Microtask|EventDispatch|Compile|Deoptimize/.test(name))
    return 'JavaScript (bench driver, client, React)';
  if (/Layout|Style|InlineNode|Shape|rebuildLayoutTree|Font/i.test(name)) return 'style and layout';
  if (
    /Paint|Layerize|Commit|Compositing|CullRect|BeginMainFrame|UpdateLifecycle|Animat|Scroll|Raster|Frame/i.test(
      name,
    )
  )
    return 'paint, compositing, frame';
  return 'task dispatch, IPC, other';
}

interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
    children?: number[];
  }[];
  samples?: number[];
  timeDeltas?: number[];
}

function printProfile(profile: CpuProfile): void {
  const perSecond = (us: number) => `${(us / 1000 / seconds).toFixed(2)} ms/s`;
  const byFunction = new Map<string, number>();
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const deltas = profile.timeDeltas ?? [];
  (profile.samples ?? []).forEach((id, i) => {
    const f = nodes.get(id)!.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? `${f.url.split('/').pop()}:${f.lineNumber}:${f.columnNumber}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + (deltas[i + 1] ?? 0));
  });
  console.log('JavaScript profile, self time by function (sampled wall time on the main thread):');
  for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 30))
    console.log(`  ${perSecond(us).padStart(12)}  ${name}`);
  // Inclusive: each sample counts once for every function on its stack.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, number>();
  (profile.samples ?? []).forEach((id, i) => {
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const name = nodes.get(n)!.callFrame.functionName || '(anonymous)';
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + (deltas[i + 1] ?? 0));
    }
  });
  console.log('JavaScript profile, inclusive time by function name:');
  for (const [name, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 45))
    console.log(`  ${perSecond(us).padStart(12)}  ${name}`);
}
