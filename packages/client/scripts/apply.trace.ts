/**
 * Where the main thread goes while a reply streams into the bench page of `npm run bench:client`
 * (`apply-page.tsx`, today's packages): a DevTools trace of the stream, the renderer main
 * thread's CPU time (trace thread time) summed by event name as self time, plus a JavaScript CPU
 * profile summed by function. For deciding what to cut, not a figure for the docs.
 *
 *   node --import tsx packages/client/scripts/apply.trace.ts [--mount mountApp|mountConsole|client|handDom]
 *     [--mode append|update] [--seconds 4] [--js] [--cpu N]
 *
 * `client` and `handDom` are the bench's floors (nothing mounted; the same DOM written by hand).
 * `--js` adds the sampling profiler (which costs main-thread time itself); `--cpu N` skips the
 * trace and prints main-thread CPU (ThreadTime) per second of streaming, idle subtracted, N times:
 * for quick A/B comparisons of a change.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { launchChromium } from '../../../test/support/chromium';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    mount: { type: 'string', default: 'mountApp' },
    mode: { type: 'string', default: 'append' },
    js: { type: 'boolean', default: false },
    cpu: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const root = fileURLToPath(new URL('../../..', import.meta.url));
const src = (pkg: string) => join(root, `packages/${pkg}/src/index.ts`);
const consoleCss = readFileSync(join(root, 'packages/console/src/styles.css'), 'utf8');

const script = (
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

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.setContent('<!doctype html><html><body><div id="root"></div></body></html>');
  await page.addStyleTag({
    content: `${consoleCss}\n#root { height: 900px; display: flex; flex-direction: column; }`,
  });
  await page.addScriptTag({ content: script });
  await page.evaluate((m) => {
    const bench = (
      window as unknown as {
        __bench: Record<string, (n: number) => Promise<number>> & {
          mountFloor: (n: number, dom: boolean) => Promise<number>;
        };
      }
    ).__bench;
    if (m === 'client' || m === 'handDom') return bench.mountFloor(10_000, m === 'handDom');
    return bench[m]!(10_000);
  }, values.mount!);
  const cdp = await page.context().newCDPSession(page);
  if (values.cpu) {
    // A/B mode: main-thread CPU (ThreadTime) per second of streaming, idle subtracted, N times.
    await cdp.send('Performance.enable');
    const threadTime = async () =>
      (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'ThreadTime')!.value * 1000;
    const figures: string[] = [];
    for (let i = 0; i < Number(values.cpu); i++) {
      const a = await threadTime();
      await page.waitForTimeout(seconds * 1000);
      const b = await threadTime();
      await page.evaluate(
        ([s, m]) =>
          (
            window as unknown as { __bench: { stream: (a: number, b: number, c: string) => Promise<number> } }
          ).__bench.stream(30, Number(s), m!),
        [String(seconds), values.mode!],
      );
      const c = await threadTime();
      figures.push(((c - b - (b - a)) / seconds).toFixed(1));
    }
    console.log(`${values.mount} ${values.mode}: CPU ms/s ${figures.join(' ')}`);
    process.exit(0);
  }
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
      includedCategories: [
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
  await page.evaluate(
    ([s, m]) =>
      (
        window as unknown as { __bench: { stream: (a: number, b: number, c: string) => Promise<number> } }
      ).__bench.stream(30, Number(s), m!),
    [String(seconds), values.mode!],
  );
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
  console.log('by event (self time):');
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30))
    console.log(`  ${perSecond(us).padStart(12)}  ${name} ×${calls.get(name)}`);

  // JavaScript by function (self time), from the sampling profiler.
  if (profile) printProfile(profile);
  await cdp.detach();
} finally {
  await browser.close();
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
