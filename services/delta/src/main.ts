import { serve } from '@hono/node-server';
import { ConfigError, createLogger, handleSignals } from '@openagents/sync-server-kit';
import { type DeltaConfig, loadDeltaConfig } from './config';
import { createDeltaService } from './service';

// The only file that reads the environment and opens a port.
let config: DeltaConfig;
try {
  config = loadDeltaConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`sync-delta: refusing to start. ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

const log = createLogger({ name: 'delta', level: config.LOG_LEVEL });
const service = createDeltaService({ config, log });
await service.start();

// Gateways ask for many heads at once: allow long query strings (Node's default header cap is 16 KiB).
const server = serve(
  {
    fetch: service.fetch,
    port: config.PORT,
    hostname: '0.0.0.0',
    serverOptions: { maxHeaderSize: 128 * 1024 },
  },
  (info) => {
    log.info({ port: info.port }, 'delta listening');
  },
);

handleSignals(
  {
    async drain() {
      // Readiness turns 503 first, then the listener closes and in-flight requests finish.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await service.drain();
      if ('closeIdleConnections' in server) server.closeIdleConnections();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2_000))]);
    },
    stop: () => service.stop(),
  },
  log,
);
