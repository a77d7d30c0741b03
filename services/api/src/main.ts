import { runService } from '@openagents/sync-server-kit';
import { loadApiConfig } from './config';
import { createApiService } from './service';

// The only file that reads the environment and opens a port.
await runService({
  name: 'api',
  loadConfig: loadApiConfig,
  create: createApiService,
  http: (service, config) => ({ port: config.PORT, fetch: service.fetch }),
});
