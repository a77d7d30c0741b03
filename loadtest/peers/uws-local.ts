import uWS from 'uWebSockets.js';
import { ClientFrame } from '@openagents/sync-protocol';
import {
  bootstrapAt,
  buildSyncFrame,
  MAX_PUBLISH_BODY,
  parsePublishRequest,
  ScopeSequences,
} from './peer-events';

/** A running peer node. */
export interface PeerNode {
  port: number;
  stop(): Promise<void>;
}

interface SocketData {
  scopes: Set<string>;
}

/**
 * The upper bound: one uWebSockets.js process whose publisher is in-process. `POST /publish`
 * builds the frame, serialises it once and hands it to `app.publish(scope, ...)`, which writes it
 * to every subscribed socket in C++. No bus, no database, no gap checks: the cheapest fan-out
 * this machine can do with the same frames.
 */
export function startUwsLocalPeer(options: { port: number }): Promise<PeerNode> {
  const sequences = new ScopeSequences();
  const sockets = new Set<uWS.WebSocket<SocketData>>();
  const app = uWS.App();
  app.ws<SocketData>('/sync', {
    maxPayloadLength: 64 * 1024,
    maxBackpressure: 4 * 1024 * 1024,
    idleTimeout: 120,
    upgrade: (res, req, context) => {
      res.upgrade<SocketData>(
        { scopes: new Set() },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      sockets.add(ws);
    },
    close: (ws) => {
      sockets.delete(ws);
    },
    message: (ws, message) => {
      let frame: ClientFrame;
      try {
        frame = ClientFrame.parse(JSON.parse(Buffer.from(message).toString('utf8')));
      } catch {
        ws.send(JSON.stringify({ type: 'error', code: 'bad_request', message: 'malformed frame' }));
        return;
      }
      switch (frame.type) {
        case 'subscribe':
          ws.subscribe(frame.scope);
          ws.getUserData().scopes.add(frame.scope);
          ws.send(JSON.stringify(bootstrapAt(frame.scope, sequences.head(frame.scope))));
          return;
        case 'unsubscribe':
          ws.unsubscribe(frame.scope);
          ws.getUserData().scopes.delete(frame.scope);
          return;
        case 'ping':
          ws.send(JSON.stringify({ type: 'pong', t: frame.t }));
          return;
        default:
          return;
      }
    },
  });
  app.get('/readyz', (res) => {
    res.end('ok');
  });
  app.post('/publish', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (aborted) return;
      size += chunk.byteLength;
      if (size > MAX_PUBLISH_BODY) {
        aborted = true;
        res.cork(() =>
          res.writeStatus('413 Payload Too Large').end('{"error":{"code":"payload_too_large"}}', true),
        );
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      const request = parsePublishRequest(Buffer.concat(chunks).toString('utf8'));
      if (!request) {
        res.cork(() => res.writeStatus('400 Bad Request').end('{"error":{"code":"bad_request"}}'));
        return;
      }
      const first = sequences.reserve(request.scope, request.count);
      const frame = buildSyncFrame(request.scope, first, request.count, request.contentBytes);
      app.publish(request.scope, JSON.stringify(frame));
      res.cork(() => res.end(JSON.stringify({ scope: request.scope, first, last: frame.latestSyncId })));
    });
  });
  app.any('/*', (res) => {
    res.writeStatus('404 Not Found').end('{"error":{"code":"not_found"}}');
  });
  return new Promise((resolve, reject) => {
    app.listen('127.0.0.1', options.port, (token) => {
      if (!token) {
        reject(new Error(`uws-local peer could not listen on ${options.port}`));
        return;
      }
      resolve({
        port: options.port,
        async stop() {
          uWS.us_listen_socket_close(token);
          for (const ws of [...sockets]) ws.end(1001, 'peer stopping');
        },
      });
    });
  });
}
