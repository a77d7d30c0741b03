import { createLogger, loadConfigOrExit, serveHttpService } from '@openagents/sync-server-kit';
import { loadApiConfig } from './config';
import { createApiService } from './service';

// The only file that reads the environment and opens a port.
const config = loadConfigOrExit('sync-api', () => loadApiConfig(process.env));
const log = createLogger({ name: 'api', level: config.LOG_LEVEL });
const service = createApiService({ config, log });
await service.start();
serveHttpService({ name: 'api', port: config.PORT, fetch: service.fetch, service, log });
