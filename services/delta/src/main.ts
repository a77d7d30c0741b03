import { createLogger, loadConfigOrExit, serveHttpService } from '@openagents/sync-server-kit';
import { loadDeltaConfig } from './config';
import { createDeltaService } from './service';

// The only file that reads the environment and opens a port.
const config = loadConfigOrExit('sync-delta', () => loadDeltaConfig(process.env));
const log = createLogger({ name: 'delta', level: config.LOG_LEVEL });
const service = createDeltaService({ config, log });
await service.start();
serveHttpService({
  name: 'delta',
  port: config.PORT,
  fetch: service.fetch,
  service,
  log,
  // Gateways ask for many heads at once: allow long query strings (Node's default header cap is 16 KiB).
  serverOptions: { maxHeaderSize: 128 * 1024 },
});
