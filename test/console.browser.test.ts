import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureConsoleBuilt } from '@openagents/sync-console';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './support/chromium';
import { createTestDatabase, type TestDatabase } from './support/pg';
import { freePort } from './support/ports';
import { type ServiceProcess, startService } from './support/stack';
import { TEST_JWT_SECRET, tokenFor } from './support/tokens';

/**
 * The agent console in a real Chromium against the real standalone server (API, delta, gateway
 * and console on one port, a fresh Postgres database, the in-process bus): two pages see each
 * other's messages and the simulated agent's streamed reply; a page cut off from the network
 * catches up when it comes back; a reload resumes from IndexedDB without a bootstrap.
 *
 * Every wait is bounded (WAIT_MS). The pages expose `window.__SYNC_DEBUG__` (frame counters, the
 * client, persisted cursors, reply counters), which is what the assertions read besides the DOM.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ARTIFACTS = join(ROOT, '.artifacts');
const WAIT_MS = 15_000;

interface DebugSnapshot {
  frames: Record<string, number>;
  bootstraps: Record<string, number>;
  openSockets: number;
  connection: string;
  pending: number;
  scopes: Record<string, { status: string; lastSyncId: number }>;
  persisted: Record<string, number>;
  replies: { queued: number; finished: number; failed: number };
}

let db: TestDatabase;
let server: ServiceProcess;
let browser: Browser;
let dataDir: string;
const orgId = crypto.randomUUID();
let agentId = '';
let contextA: BrowserContext;
let contextB: BrowserContext;
let pageA: Page;
let pageB: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  // Built up front so the server's start (which builds a missing or stale console) stays quick.
  await ensureConsoleBuilt();
  db = await createTestDatabase('console');
  dataDir = mkdtempSync(join(tmpdir(), 'console-browser-'));
  const port = await freePort();
  server = await startService('standalone', {
    port,
    env: { DATABASE_URL: db.url, SYNC_JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: dataDir },
    readyTimeoutMs: 60_000,
  });
  browser = await launchChromium();
  // Two contexts, so each page has its own network switch and its own IndexedDB.
  contextA = await newContext();
  contextB = await newContext();
  pageA = await openConsole(contextA);
  pageB = await openConsole(contextB);
}, 120_000);

afterAll(async () => {
  await browser?.close().catch(() => {});
  await server?.kill();
  await db?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

async function newContext(): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  context.setDefaultTimeout(WAIT_MS);
  return context;
}

async function openConsole(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  // The server runs with the operator's SYNC_JWT_SECRET, so it embeds no token (docs/security.md):
  // the page gets one scoped to the org and its agents, as an app's own token endpoint would mint.
  const token = await tokenFor([`org:${orgId}`, 'agent:*'], 'console-user');
  await page.goto(`${server.url}/?token=${token}#/org/${orgId}`);
  await page.getByTestId('connection').and(page.locator('[data-status=open]')).waitFor();
  expect(
    await page.evaluate(
      () => (window as unknown as { __SYNC_DEBUG__: PageDebug }).__SYNC_DEBUG__.tokenSource,
    ),
  ).toBe('query');
  return page;
}

/** The part of the page's `window.__SYNC_DEBUG__` the test reads (see packages/console/src/main.tsx). */
interface PageDebug {
  frames: Record<string, number>;
  bootstraps: Record<string, number>;
  openSockets(): number;
  closeSockets(): number;
  persisted: Record<string, number>;
  replies: DebugSnapshot['replies'];
  tokenSource: string;
  client: {
    getState(): { connection: string; pending: unknown[]; scopes: DebugSnapshot['scopes'] };
  };
}

function debug(page: Page): Promise<DebugSnapshot> {
  return page.evaluate(() => {
    const d = (window as unknown as { __SYNC_DEBUG__: PageDebug }).__SYNC_DEBUG__;
    const state = d.client.getState();
    return {
      frames: { ...d.frames },
      bootstraps: { ...d.bootstraps },
      openSockets: d.openSockets(),
      connection: state.connection,
      pending: state.pending.length,
      scopes: JSON.parse(JSON.stringify(state.scopes)),
      persisted: { ...d.persisted },
      replies: { ...d.replies },
    };
  });
}

/** Polls `check` against the page's debug snapshot until it holds, or fails with the last one. */
async function waitForDebug(
  page: Page,
  check: (d: DebugSnapshot) => boolean,
  what: string,
): Promise<DebugSnapshot> {
  const deadline = Date.now() + WAIT_MS;
  let last = await debug(page);
  while (!check(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
    await page.waitForTimeout(50);
    last = await debug(page);
  }
  return last;
}

function messageTexts(page: Page, role: 'user' | 'assistant'): Promise<string[]> {
  return page.locator(`[data-role=${role}] [data-testid=message-content]`).allTextContents();
}

async function sendMessage(page: Page, text: string): Promise<void> {
  await page.getByTestId('composer-input').fill(text);
  await page.getByTestId('composer-send').click();
}

async function gatewayMetric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** The selected agent's entry in a page's sidebar. */
const agentItem = (page: Page) => page.locator(`[data-testid=agent-item][data-agent-id="${agentId}"]`);
const agentScope = () => `agent:${agentId}`;
const orgScope = `org:${orgId}`;

describe('agent console in Chromium', () => {
  it('shows a message typed in one page, and the streamed reply, in the other', async () => {
    // A creates an agent; B sees it appear in its sidebar and opens it.
    await pageA.getByTestId('new-agent-name').fill('Scout');
    await pageA.getByTestId('create-agent').click();
    await pageA.getByTestId('chat').waitFor();
    agentId = (await pageA.getByTestId('chat').getAttribute('data-agent-id'))!;
    await agentItem(pageB).filter({ hasText: 'Scout' }).click();
    await pageB
      .getByTestId('chat')
      .and(pageB.locator(`[data-agent-id="${agentId}"]`))
      .waitFor();

    // B records every distinct state of the assistant's bubble, to see the reply stream in.
    await pageB.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { __seen: string[] }).__seen = seen;
      const record = () => {
        const bubbles = document.querySelectorAll('[data-role=assistant] [data-testid=message-content]');
        const text = bubbles[bubbles.length - 1]?.textContent ?? null;
        if (text !== null && text !== seen[seen.length - 1]) seen.push(text);
      };
      new MutationObserver(record).observe(document.body, {
        subtree: true,
        childList: true,
        characterData: true,
      });
    });

    const prompt = 'Please fix the login bug and buy more credits <img src=x onerror="window.__pwned=1">';
    await sendMessage(pageA, prompt);
    await pageB.locator('[data-role=user]').filter({ hasText: 'Please fix the login bug' }).waitFor();

    // The reply is done when A's simulated agent finished and B shows the agent idle again.
    await waitForDebug(pageA, (d) => d.replies.finished === 1, 'the simulated reply to finish');
    await agentItem(pageB).filter({ hasText: 'idle' }).waitFor();
    const finalA = (await messageTexts(pageA, 'assistant')).at(-1);
    await expect
      .poll(async () => (await messageTexts(pageB, 'assistant')).at(-1), { timeout: WAIT_MS, interval: 50 })
      .toBe(finalA);
    expect(finalA).toContain('Please fix the login bug');

    // Streamed, not delivered at once: B saw several growing prefixes of the final text.
    const seen = await pageB.evaluate(() => (window as unknown as { __seen: string[] }).__seen);
    const partial = seen.filter((s) => s.length > 0 && s !== finalA);
    expect(partial.length).toBeGreaterThanOrEqual(3);
    for (const text of seen) expect(finalA!.startsWith(text)).toBe(true);

    // The user's text is shown as text: no markup from a message reaches the DOM.
    expect(await messageTexts(pageB, 'user')).toEqual([prompt]);
    expect(await pageB.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await pageB.locator('.bubble img').count()).toBe(0);

    // Reasoning steps, the proposed code change and the payment reached B too.
    expect(await pageB.getByTestId('reasoning-step').count()).toBeGreaterThanOrEqual(3);
    await pageB.getByTestId('tab-code').click();
    const change = pageB.getByTestId('code-change');
    await change.and(pageB.locator('[data-status=proposed]')).waitFor();
    expect(await change.locator('tr.add').count()).toBeGreaterThan(0);
    // B applies it; A sees the decision.
    await change.getByTestId('apply').click();
    await pageA.getByTestId('tab-code').click();
    await pageA.getByTestId('code-change').and(pageA.locator('[data-status=applied]')).waitFor();
    mkdirSync(ARTIFACTS, { recursive: true });
    await pageA.screenshot({ path: join(ARTIFACTS, 'console-code-review.png') });

    await pageA.getByTestId('tab-payments').click();
    await pageA.getByTestId('payment').and(pageA.locator('[data-status=pending]')).waitFor();
    await pageA.getByTestId('payment').getByRole('button', { name: 'Approve' }).click();
    await pageB.getByTestId('tab-payments').click();
    await pageB.getByTestId('payment').and(pageB.locator('[data-status=settled]')).waitFor();
    await pageB.getByTestId('tab-reasoning').click();
    await pageA.getByTestId('tab-reasoning').click();

    await pageB.screenshot({ path: join(ARTIFACTS, 'console-two-pages.png') });
  }, 90_000);

  it('catches a page up after it was offline, and sends what it wrote meanwhile', async () => {
    const before = await debug(pageA);
    expect(before.scopes[agentScope()]?.lastSyncId).toBeGreaterThan(0);
    expect(before.bootstraps[agentScope()]).toBe(1);

    // Chromium's offline emulation holds the frames of an open WebSocket rather than closing it
    // (checked: the socket stays open and the frames arrive late), as a real network loss often
    // does. The browser's `offline` event is what the client goes by: it drops the socket itself
    // and shows offline at once, instead of Live until a ping times out.
    await contextA.setOffline(true);
    await pageA
      .getByTestId('connection')
      .and(pageA.locator('[data-status=offline]'))
      .waitFor({ timeout: 2_000 });
    // The client closed its socket (code 4001); whether the browser has finished closing it under
    // the emulation is its business — make sure nothing stays open, as a real loss would.
    await pageA.evaluate(() =>
      (window as unknown as { __SYNC_DEBUG__: PageDebug }).__SYNC_DEBUG__.closeSockets(),
    );

    // A writes while offline: the write waits, counted in the indicator, shown as sending.
    await sendMessage(pageA, 'Written while offline');
    await pageA.getByTestId('connection').and(pageA.locator('[data-pending="1"]')).waitFor();
    await pageA.locator('.message.pending').filter({ hasText: 'Written while offline' }).waitFor();
    await pageA.screenshot({ path: join(ARTIFACTS, 'console-offline.png') });

    // B writes meanwhile, and gets its whole reply.
    await sendMessage(pageB, 'Written while A was away');
    await waitForDebug(pageB, (d) => d.replies.finished === 1 && d.pending === 0, 'B’s reply');
    expect(await messageTexts(pageA, 'user')).not.toContain('Written while A was away');

    // Back online: A reconnects, resumes from its cursor (no new bootstrap), catches up on B's
    // message and reply, and its queued message goes out (and gets its own reply).
    await contextA.setOffline(false);
    await pageA
      .getByTestId('connection')
      .and(pageA.locator('[data-status=open][data-pending="0"]'))
      .waitFor();
    await pageA.locator('[data-role=user]').filter({ hasText: 'Written while A was away' }).waitFor();
    await pageB.locator('[data-role=user]').filter({ hasText: 'Written while offline' }).waitFor();
    await waitForDebug(pageA, (d) => d.replies.finished === 2, 'A’s second reply');

    const heads = async (page: Page) => (await debug(page)).scopes[agentScope()]?.lastSyncId;
    await expect
      .poll(async () => (await heads(pageA)) === (await heads(pageB)), { timeout: WAIT_MS })
      .toBe(true);
    for (const page of [pageA, pageB]) {
      await expect.poll(() => page.locator('[data-testid=message]').count(), { timeout: WAIT_MS }).toBe(6);
    }
    expect(await messageTexts(pageA, 'assistant')).toEqual(await messageTexts(pageB, 'assistant'));

    const after = await debug(pageA);
    expect(after.bootstraps[agentScope()]).toBe(1);
    expect(after.bootstraps[orgScope]).toBe(1);
    expect(after.frames.bootstrap).toBe(before.frames.bootstrap);
    expect(pageErrors).toEqual([]);
  }, 90_000);

  it('resumes from IndexedDB after a reload, without a bootstrap', async () => {
    // Reload only once both scopes' current cursors are on disk (the client throttles writes).
    const live = await debug(pageA);
    const target = {
      [agentScope()]: live.scopes[agentScope()]!.lastSyncId,
      [orgScope]: live.scopes[orgScope]!.lastSyncId,
    };
    await waitForDebug(
      pageA,
      (d) =>
        Object.entries(target).every(([scope, id]) =>
          Object.entries(d.persisted).some(([key, stored]) => key.endsWith(scope) && stored >= id),
        ),
      'cursors to be persisted',
    );
    const resumedBefore = await gatewayMetric('sync_gateway_resumes_total', 'outcome="delta"');

    await pageA.reload();
    await pageA.getByTestId('connection').and(pageA.locator('[data-status=open]')).waitFor();
    const resumed = await waitForDebug(
      pageA,
      (d) => d.scopes[agentScope()]?.status === 'live' && d.scopes[orgScope]?.status === 'live',
      'both scopes live after the reload',
    );
    expect(resumed.bootstraps).toEqual({});
    expect(resumed.frames.bootstrap ?? 0).toBe(0);
    // The client holds its Web Lock (how other tabs tell it is alive) through Chromium's own
    // navigator.locks: exactly one, the old page's went with it.
    const held = await pageA.evaluate(async () =>
      ((await navigator.locks.query()).held ?? []).map((l) => l.name ?? ''),
    );
    expect(held.filter((name) => name.startsWith('openagents-sync:pending:'))).toHaveLength(1);
    expect(await pageA.locator('[data-testid=message]').count()).toBe(6);
    expect(await gatewayMetric('sync_gateway_resumes_total', 'outcome="delta"')).toBeGreaterThanOrEqual(
      resumedBefore + 2,
    );

    // And it is live again: B's next message arrives without a reconnect.
    await sendMessage(pageB, 'After the reload');
    await pageA.locator('[data-role=user]').filter({ hasText: 'After the reload' }).waitFor();
    await waitForDebug(pageB, (d) => d.replies.finished === 2, 'B’s second reply');
    await agentItem(pageA).filter({ hasText: 'idle' }).waitFor();
    await pageA.screenshot({ path: join(ARTIFACTS, 'console-after-reload.png') });
    expect(pageErrors).toEqual([]);
  }, 90_000);

  it('shows a refusal, and writes nothing, when the token does not cover the org', async () => {
    const otherOrg = crypto.randomUUID();
    const narrow = await tokenFor([`org:${orgId}`], 'outsider');
    const context = await newContext();
    try {
      // Keep the server's injected dev token out, so the page uses the narrow `?token=`.
      await context.addInitScript(() => {
        Object.defineProperty(window, '__SYNC_CONFIG__', { value: undefined, writable: false });
      });
      const page = await context.newPage();
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(`${server.url}/?token=${narrow}#/org/${otherOrg}`);
      await page.getByTestId('connection').and(page.locator('[data-status=open]')).waitFor();
      expect(
        await page.evaluate(
          () => (window as unknown as { __SYNC_DEBUG__: PageDebug }).__SYNC_DEBUG__.tokenSource,
        ),
      ).toBe('query');
      await page.getByTestId('org-scope-error').filter({ hasText: 'forbidden' }).waitFor();

      // A write there is refused by the API (403), rolled back, and reported in the banner.
      await page.getByTestId('new-agent-name').fill('Intruder');
      await page.getByTestId('create-agent').click();
      await page.getByRole('alert').waitFor();
      await waitForDebug(page, (d) => d.pending === 0, 'the refused write to be rolled back');
      expect(await page.getByTestId('agent-item').count()).toBe(0);

      const admin = await tokenFor(['*'], 'admin');
      const res = await fetch(`${server.url}/sync/bootstrap?scope=org:${otherOrg}`, {
        headers: { authorization: `Bearer ${admin}` },
      });
      const body = (await res.json()) as { models: { Agent: unknown[] }; lastSyncId: number };
      expect(body.models.Agent).toEqual([]);
      expect(body.lastSyncId).toBe(0);
    } finally {
      await context.close();
    }
    expect(pageErrors).toEqual([]);
  }, 90_000);
});
