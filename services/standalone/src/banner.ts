import { CONSOLE_SCOPES, CONSOLE_TOKEN_TTL_SECONDS, type StandaloneInfo } from './standalone';

/** What `npm start` prints once the server is up: where everything is, and a token to try it with. */
export function startupBanner(info: StandaloneInfo): string {
  return [
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
      : [
          `  Listening on ${info.host}: answering only Host names in ALLOWED_HOSTS (default: loopback names).`,
        ]),
    '',
  ].join('\n');
}
