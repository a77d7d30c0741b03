/**
 * The page side of `apply.browser.bench.ts`: bundled twice by esbuild — once against today's
 * client and React packages, once against the baseline sources (the store before the
 * incremental one, taken from git) with `__BASELINE__` true — and run in Chromium. It exposes
 * `window.__bench` with two scenarios; the Node side times the second through the DevTools
 * protocol (main-thread task time), the first in the page.
 */
import { createSyncClient, type SyncClient } from '@openagents/sync-client';
import { SyncProvider, useAgentSync, useRecords } from '@openagents/sync-react';
import { memo } from 'react';
import { createRoot } from 'react-dom/client';
import { MessageList } from '../../console/src/components/message-list';
import { appendFrame, bootstrapFrame, messageId, scope, token, updateFrame, uuid } from './apply-frames';

declare const __BASELINE__: boolean;

const never = () => new Promise<Response>(() => {});
/** The token this page's socket presents: the bench's server tells pages apart by it. */
let pageToken = 't';

/**
 * A sync client. With `url` it is the real one: its WebSocket to the bench's server (in the
 * bench's Node process) delivers the frames; without, frames are handed to `receiveFrame`.
 */
function newClient(url?: string): SyncClient {
  return url
    ? createSyncClient({ url, token: pageToken, fetch: never })
    : createSyncClient({ url: 'http://127.0.0.1:1', token: 't', autoConnect: false, fetch: never });
}

function bootstrap(client: SyncClient, frame: string): void {
  client.subscribeScope(scope);
  client.receiveFrame(frame);
  client.getState();
}

/**
 * Scenario 1: apply one event into a store of `count` records, as a browser delivers it (each
 * frame its own task, published on its own: `getState()` flushes), with a listener that reads the
 * scope's messages the way a list would. Returns ms per event (median and best of 15 batches).
 */
const BATCHES = 15;

function applyOne(count: number, events: number): { msPerEvent: number; best: number; batches: number[] } {
  const client = newClient();
  bootstrap(client, bootstrapFrame(count));
  let seen = 0;
  client.subscribe((state) => {
    const s = state as unknown as {
      records: { list?: (scope: string, model: string) => unknown[]; Message?: object };
    };
    seen += s.records.list ? s.records.list(scope, 'Message').length : s.records.Message ? 1 : 0;
  });
  const frames = Array.from({ length: events }, (_, i) =>
    updateFrame(count + i + 1, uuid(0xb, (i * 7919) % count), `edit ${i}`),
  );
  // Many short batches: on a shared machine the best and the median of them say more than a mean.
  const per = Math.ceil(events / BATCHES);
  const batches: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const t = performance.now();
    for (const f of frames.slice(b * per, (b + 1) * per)) {
      client.receiveFrame(f);
      client.getState();
    }
    batches.push((performance.now() - t) / per);
  }
  if (seen === 0) throw new Error('listener never ran');
  void client.close();
  const sorted = [...batches].sort((a, b) => a - b);
  return { msPerEvent: sorted[BATCHES >> 1]!, best: sorted[0]!, batches };
}

/** Renders of the page's components, to check that a token re-renders only its row. */
const renders = { header: 0, transcript: 0, rows: 0 };

type Row = { id: string; role: string; content: string };
const selectStatus = (s: { status: string }) => s.status;

/**
 * What the issue measured: a header on `useAgentSync` and a transcript on `useRecords`. Today's
 * header follows the scope through a selector (its status): a streamed token does not re-render
 * it. The baseline's hook has no selector and hands out the whole scope on every change.
 */
function Header() {
  renders.header++;
  const status = __BASELINE__
    ? (useAgentSync as unknown as (s: string) => { status: string })(scope).status
    : useAgentSync(scope, selectStatus);
  return <header className="chat-header">{status}</header>;
}

const byCreatedAt = (a: { created_at: string }, b: { created_at: string }) =>
  a.created_at.localeCompare(b.created_at);

function useMessages(): readonly Row[] {
  // The baseline's console asked for the scope's messages sorted (by created_at); today's
  // hook hands out the maintained list in commit order.
  return __BASELINE__
    ? (useRecords as unknown as (m: string, o: object) => Row[])('Message', { scope, sort: byCreatedAt })
    : useRecords(scope, 'Message');
}

/** One row, in the console's bubble markup; memoised on its record, which only its own events replace. */
const TranscriptRow = memo(function TranscriptRow({ message }: { message: Row }) {
  renders.rows++;
  return (
    <div className={`message ${message.role}`} data-message-id={message.id}>
      <div className="bubble">{message.content}</div>
    </div>
  );
});

/**
 * The scope's last 20 messages (what a virtualised list shows), in the console's scrolling
 * `.messages` box. Newest first in a `column-reverse` box, which keeps the box's end — the row
 * being streamed — in view without reading layout from script.
 */
const LAST = 20;
const reversed = { flexDirection: 'column-reverse' } as const;

function Transcript() {
  renders.transcript++;
  const list = useMessages();
  const rows = list.slice(-LAST).reverse();
  return (
    <div className="messages" style={reversed}>
      {rows.map((m) => (
        <TranscriptRow key={m.id} message={m} />
      ))}
      <p className="count">{list.length} messages</p>
    </div>
  );
}

/** The console's own transcript (virtualised, one memoised bubble per message). */
function ConsoleTranscript() {
  const messages = useRecords(scope, 'Message');
  return <MessageList messages={messages} streamingId={messages.at(-1)?.id ?? null} pendingIds={NO_IDS} />;
}

const NO_IDS: ReadonlySet<string> = new Set();

let streamClient: SyncClient | undefined;
/** The newest message of the mounted scope, which the streams grow. */
let streamTarget = '';
/** The socket floor's last WebSocket message (no client). */
let socketLast = '';
let socketOnly = false;
/** Tokens streamed in-page so far: each reply's tokens are new ones. */
let tokensSent = 0;

const settle = () => new Promise((r) => setTimeout(r, 300)); // effects and the first paint

/** Follows the scope: over the socket (`url`) the server answers with the bootstrap frame. */
function follow(client: SyncClient, count: number, url: string | undefined): void {
  if (url) client.subscribeScope(scope);
  else bootstrap(client, bootstrapFrame(count));
}

async function until(test: () => boolean, what: () => string): Promise<void> {
  const deadline = performance.now() + 60_000;
  while (!test()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * Follows a `count`-message scope and mounts `transcript` under a header. Resolves with the time
 * from following it (in-page: the bootstrap frame's arrival; over the socket: the subscribe) to
 * the first render for which `shown(root)` holds.
 */
async function mountTimed(
  count: number,
  transcript: React.ReactNode,
  shown: (root: HTMLElement) => boolean,
  url: string | undefined,
): Promise<number> {
  const client = newClient(url);
  streamClient = client;
  streamTarget = messageId(count - 1);
  const t0 = performance.now();
  follow(client, count, url);
  const root = document.getElementById('root')!;
  createRoot(root).render(
    <SyncProvider client={client}>
      <Header />
      {transcript}
    </SyncProvider>,
  );
  await until(
    () => shown(root),
    () => root.innerHTML.slice(0, 200),
  );
  const firstRender = performance.now() - t0;
  await settle();
  return firstRender;
}

/** Scenario 2, part 1: a `count`-message scope with the hooks mounted. */
function mountApp(count: number, url?: string): Promise<number> {
  return mountTimed(
    count,
    <Transcript />,
    (root) => root.textContent?.includes(`${count} messages`) ?? false,
    url,
  );
}

/**
 * Floors for the stream figure, today's client only: `socket`, a bare WebSocket subscribed to the
 * bench's server whose handler only reads each message (no client; over the socket only), and
 * `socketFrame`, the same handler also changing one short text node (one rendered frame each);
 * `client`, the scope followed with nothing mounted (the client parses and applies, nobody
 * renders); `handDom`, the page's header and last 20 rows written by hand with DOM calls on each
 * publish (what the React page shows, without React).
 */
async function mountFloor(
  count: number,
  kind: 'socket' | 'socketFrame' | 'client' | 'handDom',
  url?: string,
): Promise<number> {
  const t0 = performance.now();
  if (kind === 'socket' || kind === 'socketFrame') {
    if (!url) throw new Error('the socket floor needs the server');
    socketOnly = true;
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/sync?token=${pageToken}`);
    ws.onopen = () => ws.send(JSON.stringify({ type: 'subscribe', scope }));
    // socketFrame: each message changes one short text node, so each is a rendered frame.
    const text = document.getElementById('root')!.appendChild(document.createElement('p'));
    let received = 0;
    ws.onmessage = (e: MessageEvent<string>) => {
      socketLast = e.data;
      if (kind === 'socketFrame') text.textContent = String(++received);
    };
    await until(
      () => socketLast.startsWith('{"type":"bootstrap"'),
      () => 'no bootstrap frame on the bare socket',
    );
    await settle();
    return performance.now() - t0;
  }
  const client = newClient(url);
  streamClient = client;
  streamTarget = messageId(count - 1);
  follow(client, count, url);
  await until(
    () => client.getState().scopes[scope]?.lastSyncId === count,
    () => 'scope not bootstrapped',
  );
  if (kind === 'handDom') {
    const root = document.getElementById('root')!;
    const header = document.createElement('header');
    header.className = 'chat-header';
    const box = document.createElement('div');
    box.className = 'messages';
    box.style.flexDirection = 'column-reverse';
    root.append(header, box);
    const rows = Array.from({ length: LAST }, () => {
      const row = box.appendChild(document.createElement('div'));
      // The same bubble markup as the React rows (its class brings the padding, pre-wrap and
      // wrapping the bubble's layout pays for), so the difference to them is React's alone.
      const bubble = row.appendChild(document.createElement('div'));
      bubble.className = 'bubble';
      return { row, bubble };
    });
    const countLine = box.appendChild(document.createElement('p'));
    countLine.className = 'count';
    const draw = () => {
      const state = client.getState();
      const list = state.records.list(scope, 'Message') as readonly Row[];
      const status = state.scopes[scope]!.status;
      if (header.textContent !== status) header.textContent = status;
      const text = `${list.length} messages`;
      if (countLine.textContent !== text) countLine.textContent = text;
      list
        .slice(-LAST)
        .reverse()
        .forEach((m, i) => {
          const { row, bubble } = rows[i]!;
          const className = `message ${m.role}`;
          if (row.className !== className) row.className = className;
          if (bubble.textContent !== m.content) bubble.textContent = m.content;
        });
    };
    draw();
    client.subscribe(draw);
  }
  const t = performance.now() - t0;
  await settle();
  return t;
}

/** The console's message list opening a `count`-message agent, until the newest bubble shows. */
function mountConsole(count: number, url?: string): Promise<number> {
  const newest = `[data-message-id="${messageId(count - 1)}"]`;
  return mountTimed(count, <ConsoleTranscript />, (root) => root.querySelector(newest) !== null, url);
}

/** The newest message's content (today's store and the baseline's). */
function targetContent(client: SyncClient): string {
  const records = client.getState().records as unknown as {
    get?: (m: string, id: string) => { content: string } | undefined;
    Message?: Record<string, { content: string }>;
  };
  return (records.get ? records.get('Message', streamTarget) : records.Message![streamTarget])!.content;
}

/** Resolves when `last` (the last token) is applied and, with something mounted, on screen. */
async function shown(last: string): Promise<void> {
  const root = document.getElementById('root')!;
  await until(
    () =>
      socketOnly
        ? socketLast.includes(last)
        : targetContent(streamClient!).endsWith(last) &&
          (root.childElementCount === 0 || (root.textContent?.includes(last) ?? false)),
    () => `the last token ${last} never showed`,
  );
}

/**
 * Scenario 2, part 2, in-page: a reply streams into the newest message at `perSecond` tokens a
 * second for `seconds`, each token one frame in its own task, built in the page on schedule and
 * handed to `receiveFrame` (update events carrying the whole text so far, or append events
 * carrying the token). Resolves when the last token is on screen. With `deliver` false the
 * frames are built on the same schedule but not handed to the client: the in-page bench's own
 * cost. Over the socket the bench's server sends the frames and the page only waits (`shown`).
 */
async function stream(
  perSecond: number,
  seconds: number,
  mode: 'update' | 'append',
  deliver = true,
): Promise<number> {
  const client = streamClient!;
  const head = client.getState().scopes[scope]!.lastSyncId;
  const tokens = perSecond * seconds;
  const start = targetContent(client);
  const t0 = performance.now();
  let text = start;
  for (let i = 0; i < tokens; i++) {
    const due = t0 + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const piece = token(tokensSent + i);
    const frame =
      mode === 'append'
        ? appendFrame(head + i + 1, streamTarget, text.length, piece)
        : updateFrame(head + i + 1, streamTarget, text + piece);
    if (deliver) client.receiveFrame(frame);
    text += piece;
  }
  tokensSent += tokens;
  if (deliver) await shown(token(tokensSent - 1));
  return performance.now() - t0;
}

(window as unknown as { __bench: object }).__bench = {
  applyOne,
  mountApp,
  mountConsole,
  mountFloor,
  stream,
  shown,
  renders: () => ({ ...renders }),
  setToken: (t: string) => {
    pageToken = t;
  },
  baseline: __BASELINE__,
};
