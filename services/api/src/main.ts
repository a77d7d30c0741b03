import { serve } from '@hono/node-server';
import { ConfigError, createLogger, handleSignals } from '@openagents/sync-server-kit';
import { loadApiConfig } from './config';
import { createApiService } from './service';

// The only file that reads the environment and opens a port.
let config: ReturnType<typeof loadApiConfig>;
try {
  config = loadApiConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`sync-api: refusing to start. ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

const log = createLogger({ name: 'api', level: config.LOG_LEVEL });
const service = createApiService({ config, log });
await service.start();

const server = serve({ fetch: service.fetch, port: config.PORT, hostname: '0.0.0.0' }, (info) => {
  log.info({ port: info.port }, 'api listening');
});

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
