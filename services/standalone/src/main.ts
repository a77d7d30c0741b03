import { createLogger, handleSignals, loadConfigOrExit } from '@openagents/sync-server-kit';
import { loadStandaloneConfig } from './config';
import { createStandalone } from './standalone';

// `npm start`: the whole system in one process. The only file that reads the environment.
const config = loadConfigOrExit('sync-standalone', () => loadStandaloneConfig(process.env));
const log = createLogger({ name: 'standalone', level: config.LOG_LEVEL });
const server = createStandalone({ config, log });
try {
  await server.start();
} catch (err) {
  log.fatal(
    { err: err instanceof Error ? err : new Error(String(err)) },
    'standalone server failed to start',
  );
  await server.stop();
  process.exit(1);
}
handleSignals(server, log);

const info = server.info();
const banner = [
  '',
  '  OpenAgents Sync — standalone',
  '',
  `  Console     ${info.url}/`,
  `  API         ${info.url}/api/...`,
  `  Reads       ${info.url}/sync/bootstrap  ${info.url}/sync/delta`,
  `  WebSocket   ${info.wsUrl}?token=<token>`,
  `  Ops         ${info.url}/healthz  /readyz  /metrics`,
  `  Database    ${info.database}`,
  `  Bus         ${info.bus}`,
  '',
  '  Dev token (all scopes, 30 days):',
  `  ${info.devToken}`,
  '',
].join('\n');
process.stdout.write(`${banner}\n`);
log.info({ url: info.url }, 'standalone server ready');
