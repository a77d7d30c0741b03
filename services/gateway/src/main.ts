import { runService } from '@openagents/sync-server-kit';
import { loadGatewayConfig } from './config';
import { createGatewayService } from './service';

// The gateway process: read the environment, open the port (the service does), drain on SIGTERM.
await runService({ name: 'gateway', loadConfig: loadGatewayConfig, create: createGatewayService });
