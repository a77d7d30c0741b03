import { type ServerType, serve } from '@hono/node-server';
import { ConfigError } from './config';
import { handleSignals } from './lifecycle';
import type { Logger } from './logger';

/**
 * Loads a service's configuration in its main.ts, or stops the process with exit code 1 and a
 * message naming each bad variable (never a stack trace for a configuration mistake).
 */
export function loadConfigOrExit<T>(serviceName: string, load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${serviceName}: refusing to start. ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/**
 * Serves a Hono-style `fetch` on `port` (all interfaces) and wires SIGTERM/SIGINT: readiness turns
 * 503 first (`service.drain`), then the listener closes, idle keep-alive sockets are closed and
 * in-flight requests get up to `closeTimeoutMs` to finish; then `service.stop`.
 */
export function serveHttpService(options: {
  name: string;
  port: number;
  fetch: (request: Request) => Response | Promise<Response>;
  service: { drain(): Promise<void>; stop(): Promise<void> };
  log: Logger;
  /** Options for node:http's createServer, e.g. `{ maxHeaderSize }`. */
  serverOptions?: Record<string, unknown>;
  closeTimeoutMs?: number;
}): ServerType {
  const { log, service } = options;
  const server = serve(
    {
      fetch: options.fetch,
      port: options.port,
      hostname: '0.0.0.0',
      ...(options.serverOptions ? { serverOptions: options.serverOptions } : {}),
    },
    (info) => log.info({ port: info.port }, `${options.name} listening`),
  );
  handleSignals(
    {
      async drain() {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await service.drain();
        if ('closeIdleConnections' in server) server.closeIdleConnections();
        await Promise.race([closed, new Promise((r) => setTimeout(r, options.closeTimeoutMs ?? 2_000))]);
      },
      stop: () => service.stop(),
    },
    log,
  );
  return server;
}
