import { ConfigError, createLogger, handleSignals } from '@openagents/sync-server-kit';
import { loadGatewayConfig } from './config';
import { createGatewayService } from './service';

// The gateway process: read the environment, open the port, drain on SIGTERM. Nothing else here.
let service: ReturnType<typeof createGatewayService>;
let log: ReturnType<typeof createLogger>;
try {
  const config = loadGatewayConfig(process.env);
  log = createLogger({ name: 'gateway', level: config.LOG_LEVEL });
  service = createGatewayService({ config, log });
} catch (err) {
  const message = err instanceof ConfigError || err instanceof Error ? err.message : String(err);
  process.stderr.write(`gateway: refusing to start: ${message}\n`);
  process.exit(1);
}
handleSignals(service, log);
await service.start();
