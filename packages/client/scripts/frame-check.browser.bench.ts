/**
 * What checking a streamed `sync` frame costs in a page (real Chromium): `JSON.parse` alone, then
 * zod's `ServerFrame.safeParse`, then the hand-written `fastServerFrame` (exactly as strict; see
 * packages/protocol/src/fast-frame.ts), each over the first 600 append frames of a reply in a
 * fresh page — what a viewer's page pays from its first token, before and while V8 optimises the
 * code (a page gets ~15 frames a second, so the first minutes of a reply run mostly unoptimised).
 * The three run in alternating fresh pages of the same browser; printed per batch of 60 frames,
 * in µs per frame (`performance.now()`, whose resolution in a page is ~5 µs: read the batches).
 *
 *   node --import tsx packages/client/scripts/frame-check.browser.bench.ts [--pages 3]
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { launchChromium } from '../../../test/support/chromium';

const { values } = parseArgs({ options: { pages: { type: 'string', default: '3' } } });
const root = fileURLToPath(new URL('../../..', import.meta.url));
const FRAMES = 600;
const BATCH = 60;

const page = `
import { fastServerFrame, ServerFrame } from '@openagents/sync-protocol';
import { appendFrame, messageId } from './apply-frames';
window.run = (mode) => {
  const frames = Array.from({ length: ${FRAMES} }, (_, i) =>
    appendFrame(10_001 + i, messageId(9_999), 130 + i * 14, ' token1 token2'),
  );
  const out = [];
  let total = 0;
  frames.forEach((f, i) => {
    const t = performance.now();
    const json = JSON.parse(f);
    if (mode === 'zod' && !ServerFrame.safeParse(json).success) throw new Error('refused');
    if (mode === 'fast' && !fastServerFrame(json)) throw new Error('refused');
    total += performance.now() - t;
    if ((i + 1) % ${BATCH} === 0) {
      out.push((total / ${BATCH}) * 1000);
      total = 0;
    }
  });
  return out;
};
`;
const code = (
  await build({
    stdin: { contents: page, resolveDir: join(root, 'packages/client/scripts'), loader: 'ts' },
    bundle: true,
    minify: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'error',
    alias: { '@openagents/sync-protocol': join(root, 'packages/protocol/src/index.ts') },
  })
).outputFiles[0]!.text;

const load = loadavg()[0]!.toFixed(1);
const browser = await launchChromium();
const modes = ['JSON.parse', 'zod', 'fast'] as const;
const results = Object.fromEntries(modes.map((m) => [m, [] as number[][]])) as Record<
  (typeof modes)[number],
  number[][]
>;
try {
  for (let i = 0; i < Number(values.pages); i++) {
    for (const mode of modes) {
      const p = await browser.newPage();
      await p.addScriptTag({ content: code });
      results[mode].push(
        await p.evaluate((m) => (window as unknown as { run: (m: string) => number[] }).run(m), mode),
      );
      await p.close();
    }
  }
} finally {
  await browser.close();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(
  `load average ${load} at the start, ${loadavg()[0]!.toFixed(1)} at the end; Chromium, fresh pages`,
);
for (const mode of modes) {
  const all = results[mode].flat();
  console.log(
    `${mode.padEnd(10)} µs per frame, median of all batches ${median(all).toFixed(0)}, mean ${(all.reduce((a, b) => a + b, 0) / all.length).toFixed(0)}; per page: ${results[mode].map((b) => b.map((x) => x.toFixed(0)).join(' ')).join(' | ')}`,
  );
}
