import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import type { Service } from './lifecycle';
import type { Logger } from './logger';

/**
 * A Hono-style `fetch` served on `port` as a part of a service (compose it after the service, see
 * `runService`): `start` listens; `drain` stops accepting, closes idle keep-alive sockets and
 * gives in-flight requests up to `closeTimeoutMs` to finish; `stop` closes whatever is still open.
 */
export function httpListener(options: {
  name: string;
  port: number;
  /** All interfaces unless set. */
  hostname?: string;
  /** Called with the request and @hono/node-server's bindings (`{ incoming, outgoing }`). */
  fetch: (request: Request, env?: unknown) => Response | Promise<Response>;
  log: Logger;
  /** Options for node:http's createServer, e.g. `{ maxHeaderSize }`. */
  serverOptions?: Record<string, unknown>;
  closeTimeoutMs?: number;
}): Service & { port(): number } {
  let server: ServerType | undefined;
  let port = options.port;
  return {
    port: () => port,
    start: () =>
      new Promise<void>((resolve) => {
        server = serve(
          {
            fetch: options.fetch,
            port: options.port,
            hostname: options.hostname ?? '0.0.0.0',
            ...(options.serverOptions ? { serverOptions: options.serverOptions } : {}),
          },
          (info: AddressInfo) => {
            port = info.port;
            options.log.info({ port: info.port }, `${options.name} listening`);
            resolve();
          },
        );
      }),
    async drain() {
      const listening = server;
      if (!listening) return;
      const closed = new Promise<void>((resolve) => listening.close(() => resolve()));
      if ('closeIdleConnections' in listening) listening.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, options.closeTimeoutMs ?? 2_000);
      });
      await Promise.race([closed, timeout]);
      clearTimeout(timer);
    },
    async stop() {
      // Normally drained already; after a failed start or a stop without drain, close it now.
      const open = server;
      server = undefined;
      if (!open?.listening) return;
      const closed = new Promise<void>((resolve) => open.close(() => resolve()));
      if ('closeAllConnections' in open) open.closeAllConnections();
      await closed;
    },
  };
}
