import { createLogger, handleSignals, loadConfigOrExit } from '@openagents/sync-server-kit';
import { loadStandaloneConfig } from './config';
import { EmbeddedPostgresError } from './postgres-access';
import { CONSOLE_SCOPES, CONSOLE_TOKEN_TTL_SECONDS, createStandalone } from './standalone';

// `npm start`: the whole system in one process. The only file that reads the environment.
const config = loadConfigOrExit('sync-standalone', () => loadStandaloneConfig(process.env));
const log = createLogger({ name: 'standalone', level: config.LOG_LEVEL });
const server = createStandalone({ config, log });
try {
  await server.start();
} catch (err) {
  if (err instanceof EmbeddedPostgresError) {
    // A setup problem with a known fix: one sentence, no stack trace.
    process.stderr.write(`\n  ${err.message}\n\n`);
    await server.stop();
    process.exit(1);
  }
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
  ...(info.devToken
    ? [
        `  Dev token (${CONSOLE_SCOPES.join(' ')}, ${CONSOLE_TOKEN_TTL_SECONDS / 3600} hours):`,
        `  ${info.devToken}`,
      ]
    : ['  SYNC_JWT_SECRET is set: no token is printed or embedded in the console.']),
  "  Other tokens: npm run token -- --scope org:<id> --scope 'agent:*' --ttl 1h",
  ...(info.host === '127.0.0.1'
    ? []
    : [`  Listening on ${info.host}: answering only Host names in ALLOWED_HOSTS (default: loopback names).`]),
  '',
].join('\n');
process.stdout.write(`${banner}\n`);
log.info({ url: info.url }, 'standalone server ready');
