import { createServer } from 'node:http';
import { ClientFrame, type SyncFrame } from '@openagents/sync-protocol';
import { Redis } from 'ioredis';
import { type WebSocket, WebSocketServer } from 'ws';
import { createPeerHttpHandler } from './http-publish';
import { bootstrapAt, buildSyncFrame, ScopeSequences } from './peer-events';
import type { PeerNode } from './uws-local';

/**
 * The naive gateway many teams write first: `ws` sockets, one ioredis subscriber per node, and a
 * channel per scope. `POST /publish` PUBLISHes the frame to `<prefix>peer:<scope>`; every node
 * (the publishing one included) receives it and, for each local subscriber of the scope,
 * re-encodes it with `JSON.stringify` and sends it — one parse per node and one stringify per
 * client, where the gateway serialises once per scope and node. No gap detection, no replay.
 */
export async function startWsRedisPeer(options: {
  port: number;
  redisUrl: string;
  channelPrefix: string;
}): Promise<PeerNode> {
  const channel = (scope: string) => `${options.channelPrefix}peer:${scope}`;
  const sequences = new ScopeSequences();
  const publisher = new Redis(options.redisUrl, { lazyConnect: true });
  const subscriber = new Redis(options.redisUrl, { lazyConnect: true });
  await Promise.all([publisher.connect(), subscriber.connect()]);
  const subscribers = new Map<string, Set<WebSocket>>();

  subscriber.on('message', (_channel: string, payload: string) => {
    const frame = JSON.parse(payload) as SyncFrame;
    const sockets = subscribers.get(frame.scope);
    if (!sockets) return;
    for (const ws of sockets) ws.send(JSON.stringify(frame));
  });

  const server = createServer(
    createPeerHttpHandler(async (request) => {
      const first = sequences.reserve(request.scope, request.count);
      const frame = buildSyncFrame(request.scope, first, request.count, request.contentBytes);
      await publisher.publish(channel(request.scope), JSON.stringify(frame));
      return { first, last: frame.latestSyncId };
    }),
  );
  const wss = new WebSocketServer({ server, path: '/sync', maxPayload: 64 * 1024 });

  wss.on('connection', (ws) => {
    const mine = new Set<string>();
    ws.on('message', async (data) => {
      let frame: ClientFrame;
      try {
        frame = ClientFrame.parse(JSON.parse(data.toString()));
      } catch {
        ws.send(JSON.stringify({ type: 'error', code: 'bad_request', message: 'malformed frame' }));
        return;
      }
      switch (frame.type) {
        case 'subscribe': {
          let set = subscribers.get(frame.scope);
          if (!set) {
            set = new Set();
            subscribers.set(frame.scope, set);
            await subscriber.subscribe(channel(frame.scope));
          }
          set.add(ws);
          mine.add(frame.scope);
          ws.send(JSON.stringify(bootstrapAt(frame.scope, sequences.head(frame.scope))));
          return;
        }
        case 'unsubscribe':
          subscribers.get(frame.scope)?.delete(ws);
          mine.delete(frame.scope);
          return;
        case 'ping':
          ws.send(JSON.stringify({ type: 'pong', t: frame.t }));
          return;
        default:
          return;
      }
    });
    ws.on('close', () => {
      for (const scope of mine) subscribers.get(scope)?.delete(ws);
    });
  });

  await new Promise<void>((resolve) => server.listen(options.port, '127.0.0.1', resolve));
  return {
    port: options.port,
    async stop() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await new Promise((resolve) => server.close(resolve));
      publisher.disconnect();
      subscriber.disconnect();
    },
  };
}
