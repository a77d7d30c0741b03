import { runService } from '@openagents/sync-server-kit';
import { startupBanner } from './banner';
import { loadStandaloneConfig } from './config';
import { EmbeddedPostgresError } from './postgres-access';
import { createStandalone } from './standalone';

// `npm start`: the whole system in one process. The only file that reads the environment.
const { service, log } = await runService({
  name: 'standalone',
  loadConfig: loadStandaloneConfig,
  create: createStandalone,
  // A setup problem with a known fix: one sentence, no stack trace.
  isSetupError: (err) => err instanceof EmbeddedPostgresError,
});
const info = service.info();
process.stdout.write(`${startupBanner(info)}\n`);
log.info({ url: info.url }, 'standalone server ready');
