/**
 * The gateway side of `npm run bench:client`'s real-path streams: a WebSocket server in the
 * bench's Node process speaking the contract's `/sync` protocol to the page's sync client (or a
 * bare browser WebSocket). A `subscribe` is answered with the scope's bootstrap frame, a `ping`
 * with a `pong`; `stream()` then sends a reply's frames, built here beforehand, one WebSocket
 * message per token on schedule. The page pays what a user's page pays for a streamed reply —
 * the socket message's dispatch, parse, validation, apply, render and paint — and nothing for
 * making the frames.
 */
import { type WebSocket, WebSocketServer } from 'ws';
import { bootstrapFrame, messageId, scope, seededContent, streamFrames, token } from './apply-frames';

export interface FrameServer {
  /** The http base URL to give the sync client (its socket is `<url>/sync`). */
  url: string;
  /**
   * Sends a reply of `perSecond × seconds` tokens into the newest message, to the connection that
   * subscribed with `token` (by default the one that subscribed last), each token its own
   * WebSocket message on schedule, or `tokensPerEvent` tokens per message sent when the last of
   * them is due (a second reply continues the same message and log). Resolves
   * with the last token once it is sent.
   */
  stream(
    perSecond: number,
    seconds: number,
    mode: 'update' | 'append',
    token?: string,
    tokensPerEvent?: number,
  ): Promise<string>;
  close(): Promise<void>;
}

export async function startFrameServer(count: number): Promise<FrameServer> {
  const bootstrap = bootstrapFrame(count);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/sync' });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  /** A subscribed connection, its log's head, the streamed message's text and tokens sent. */
  type Subscriber = { ws: WebSocket; head: number; text: string; tokens: number };
  let last: Subscriber | undefined;
  const byToken = new Map<string, Subscriber>();
  wss.on('connection', (ws, req) => {
    const name = new URL(req.url ?? '/', 'http://x').searchParams.get('token') ?? '';
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as { type: string; scope?: string; t?: unknown };
      if (frame.type === 'ping') ws.send(JSON.stringify({ type: 'pong', t: frame.t }));
      else if (frame.type === 'subscribe' && frame.scope === scope) {
        last = { ws, head: count, text: seededContent(count - 1), tokens: 0 };
        byToken.set(name, last);
        ws.send(bootstrap);
      } else if (frame.type === 'subscribe') {
        ws.send(
          JSON.stringify({ type: 'error', code: 'forbidden', message: 'unknown scope', scope: frame.scope }),
        );
      }
    });
  });
  const { port } = wss.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    async stream(perSecond, seconds, mode, name, tokensPerEvent = 1) {
      const to = name === undefined ? last : byToken.get(name);
      if (!to) throw new Error(`no page has subscribed${name === undefined ? '' : ` as ${name}`}`);
      const tokens = perSecond * seconds;
      const first = to.tokens;
      const frames = streamFrames(
        mode,
        to.head,
        messageId(count - 1),
        to.text,
        tokens,
        first,
        tokensPerEvent,
      );
      to.head += frames.length;
      to.tokens += tokens;
      for (let i = 0; i < tokens; i++) to.text += token(first + i);
      const t0 = performance.now();
      for (let i = 0; i < frames.length; i++) {
        // A frame goes out when its last token is due (a batching writer sends then).
        const wait = t0 + ((i + 1) * tokensPerEvent - 1) * (1000 / perSecond) - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        to.ws.send(frames[i]!);
      }
      return token(first + tokens - 1);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        byToken.clear();
        wss.close(() => resolve());
      }),
  };
}
