import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../../../../test/support/chromium';

/**
 * The console's message list in a real Chromium (layout, scrolling, ResizeObserver): a reader
 * scrolled up stays on the message they are reading while a reply streams and new messages
 * arrive below; a reader at the end follows the stream. The page is `message-list.page.tsx`,
 * bundled here with esbuild, over a real sync client fed frames as the gateway sends them.
 */

const ROOT = fileURLToPath(new URL('../../../..', import.meta.url));
const COUNT = 400;

type ListApi = {
  mount(count: number): void;
  append(i: number, text: string): void;
  insert(i: number, content: string): void;
  count(): number;
  lastSyncId(): number;
};

let browser: Browser;
let page: Page;

beforeAll(async () => {
  const bundle = await build({
    absWorkingDir: ROOT,
    entryPoints: [join(ROOT, 'packages/console/src/components/message-list.page.tsx')],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'error',
    define: { 'process.env.NODE_ENV': '"production"' },
    jsx: 'automatic',
  });
  const css = readFileSync(join(ROOT, 'packages/console/src/styles.css'), 'utf8');
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  page.setDefaultTimeout(15_000);
  await page.setContent('<!doctype html><html><body><div id="root"></div></body></html>');
  await page.addStyleTag({
    content: `${css}\n#root { height: 700px; display: flex; flex-direction: column; }`,
  });
  await page.addScriptTag({ content: bundle.outputFiles[0]!.text });
  await page.evaluate((n) => (window as unknown as { __list: ListApi }).__list.mount(n), COUNT);
}, 90_000);

afterAll(async () => {
  await browser?.close().catch(() => {});
});

/** Two animation frames: React has committed and the virtualiser has measured what changed. */
const settle = () =>
  page.evaluate(
    () => new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))),
  );

const call = <K extends keyof ListApi>(name: K, ...args: Parameters<ListApi[K]>) =>
  page.evaluate(
    ([n, a]) =>
      (window as unknown as { __list: Record<string, (...x: unknown[]) => unknown> }).__list[n as string]!(
        ...(a as unknown[]),
      ),
    [name, args] as const,
  );

/** The first message whose bubble is (partly) inside the scroller, and its top relative to it. */
function firstVisible(): Promise<{ id: string; top: number; distanceToEnd: number }> {
  return page.evaluate(() => {
    const scroller = document.querySelector('[data-testid=messages]') as HTMLElement;
    const box = scroller.getBoundingClientRect();
    let best: { id: string; top: number } | undefined;
    for (const el of scroller.querySelectorAll('[data-testid=message]')) {
      const r = el.getBoundingClientRect();
      if (r.bottom <= box.top || r.top >= box.bottom) continue;
      if (!best || r.top < best.top) best = { id: el.getAttribute('data-message-id')!, top: r.top };
    }
    return {
      id: best!.id,
      top: best!.top - box.top,
      distanceToEnd: scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight,
    };
  });
}

const isShown = (i: number) =>
  page.evaluate((n) => {
    const id = `30000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
    const scroller = document.querySelector('[data-testid=messages]') as HTMLElement;
    const el = scroller.querySelector(`[data-message-id="${id}"]`);
    if (!el) return false;
    const r = el.getBoundingClientRect();
    const box = scroller.getBoundingClientRect();
    return r.bottom > box.top && r.top < box.bottom;
  }, i);

describe('MessageList in Chromium', () => {
  it('opens at the newest message and follows a streamed reply and new messages', async () => {
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=message]').length > 0);
    await settle();
    expect(await isShown(COUNT - 1)).toBe(true);
    for (let t = 0; t < 40; t++) {
      await call('append', COUNT - 1, ` streamed token ${t} with some more words`);
      if (t % 10 === 9) await settle();
    }
    await settle();
    await settle();
    // The grown reply's end is in view before any new message arrives.
    expect((await firstVisible()).distanceToEnd).toBeLessThanOrEqual(48);
    await call('insert', COUNT, 'a new question');
    await page.waitForFunction(
      (n) => (window as unknown as { __list: ListApi }).__list.count() === n,
      COUNT + 1,
    );
    await settle();
    await settle();
    expect(await isShown(COUNT)).toBe(true);
    expect((await firstVisible()).distanceToEnd).toBeLessThanOrEqual(48);
  });

  it('scrolled up, keeps the first visible message in place while tokens and messages arrive below', async () => {
    await page.evaluate(() => {
      const scroller = document.querySelector('[data-testid=messages]') as HTMLElement;
      scroller.scrollTop = scroller.scrollHeight / 2;
      scroller.dispatchEvent(new Event('scroll'));
    });
    await settle();
    await settle();
    const before = await firstVisible();
    expect(before.distanceToEnd).toBeGreaterThan(1_000);
    let next = COUNT + 1;
    for (let t = 0; t < 60; t++) {
      await call('append', next - 1, ` more streamed text, token ${t}, long enough to wrap lines`);
      if (t % 15 === 14) {
        await call('insert', next, `new message ${next}`);
        next++;
        await settle();
      }
    }
    await page.waitForFunction((n) => (window as unknown as { __list: ListApi }).__list.count() === n, next);
    await settle();
    await settle();
    const after = await firstVisible();
    expect(after.id).toBe(before.id);
    expect(Math.abs(after.top - before.top)).toBeLessThanOrEqual(1);
  });
});
