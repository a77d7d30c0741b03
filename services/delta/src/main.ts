import { runService } from '@openagents/sync-server-kit';
import { loadDeltaConfig } from './config';
import { createDeltaService } from './service';

// The only file that reads the environment and opens a port.
await runService({
  name: 'delta',
  loadConfig: loadDeltaConfig,
  create: createDeltaService,
  http: (service, config) => ({
    port: config.PORT,
    fetch: service.fetch,
    // Gateways ask for many heads at once: allow long query strings (Node's default header cap is 16 KiB).
    serverOptions: { maxHeaderSize: 128 * 1024 },
  }),
});
