import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_PUBLISH_BODY, type PublishRequest, parsePublishRequest } from './peer-events';

/**
 * The HTTP side shared by the Node peers: `GET /readyz` and `POST /publish`. `publish` returns
 * the ids it assigned; anything else is 404.
 */
export function createPeerHttpHandler(
  publish: (request: PublishRequest) => Promise<{ first: number; last: number }>,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.method === 'GET' && req.url === '/readyz') {
      res.end('ok');
      return;
    }
    if (req.method !== 'POST' || req.url !== '/publish') {
      // socket.io attaches its own listener for /socket.io/; leave those requests alone.
      if (req.url?.startsWith('/socket.io/')) return;
      res.statusCode = 404;
      res.end('{"error":{"code":"not_found"}}');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_PUBLISH_BODY) {
        res.statusCode = 413;
        res.end('{"error":{"code":"payload_too_large"}}');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (res.writableEnded) return;
      const request = parsePublishRequest(Buffer.concat(chunks).toString('utf8'));
      if (!request) {
        res.statusCode = 400;
        res.end('{"error":{"code":"bad_request"}}');
        return;
      }
      publish(request).then(
        (ids) => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ scope: request.scope, ...ids }));
        },
        (err: unknown) => {
          res.statusCode = 503;
          res.end(JSON.stringify({ error: { code: 'unavailable', message: String(err) } }));
        },
      );
    });
  };
}
