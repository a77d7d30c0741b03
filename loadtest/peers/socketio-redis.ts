import { createServer } from 'node:http';
import { SubscribeFrame, UnsubscribeFrame } from '@openagents/sync-protocol';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { createPeerHttpHandler } from './http-publish';
import { bootstrapAt, buildSyncFrame, ScopeSequences } from './peer-events';
import type { PeerNode } from './uws-local';

/**
 * Socket.IO 4 with the official Redis adapter: one room per scope. `POST /publish` does
 * `io.to(scope).emit('frame', frame)`; the adapter delivers it to local members and PUBLISHes it
 * so every other node delivers it to theirs. Clients send `subscribe`/`unsubscribe` events with
 * the contract's frame bodies and receive the same `bootstrap`/`sync` objects as `frame` events.
 * WebSocket transport only (the driver does not long-poll).
 */
export async function startSocketIoPeer(options: {
  port: number;
  redisUrl: string;
  channelPrefix: string;
}): Promise<PeerNode> {
  const sequences = new ScopeSequences();
  const pub = new Redis(options.redisUrl, { lazyConnect: true });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);

  const server = createServer();
  const io = new Server(server, {
    transports: ['websocket'],
    serveClient: false,
    adapter: createAdapter(pub, sub, { key: `${options.channelPrefix}socket.io` }),
  });
  const http = createPeerHttpHandler(async (request) => {
    const first = sequences.reserve(request.scope, request.count);
    const frame = buildSyncFrame(request.scope, first, request.count, request.contentBytes);
    io.to(request.scope).emit('frame', frame);
    return { first, last: frame.latestSyncId };
  });
  server.on('request', http);

  io.on('connection', (socket) => {
    socket.on('subscribe', async (body: unknown) => {
      const frame = SubscribeFrame.safeParse({ type: 'subscribe', ...(body as object) });
      if (!frame.success) {
        socket.emit('frame', { type: 'error', code: 'bad_request', message: 'malformed frame' });
        return;
      }
      await socket.join(frame.data.scope);
      socket.emit('frame', bootstrapAt(frame.data.scope, sequences.head(frame.data.scope)));
    });
    socket.on('unsubscribe', async (body: unknown) => {
      const frame = UnsubscribeFrame.safeParse({ type: 'unsubscribe', ...(body as object) });
      if (frame.success) await socket.leave(frame.data.scope);
    });
  });

  await new Promise<void>((resolve) => server.listen(options.port, '127.0.0.1', resolve));
  return {
    port: options.port,
    async stop() {
      io.disconnectSockets(true);
      await new Promise((resolve) => io.close(() => resolve(undefined)));
      pub.disconnect();
      sub.disconnect();
    },
  };
}
