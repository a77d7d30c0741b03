/** The standalone server: api, delta, gateway and console in one process on one port. */
export { loadStandaloneConfig, type StandaloneConfig, StandaloneEnv } from './config';
export { loadOrCreateDevSecret } from './dev-secret';
export { type EmbeddedDatabase, startEmbeddedPostgres } from './embedded-postgres';
export { hostMatcher, LOOPBACK_HOSTS } from './host-check';
export { EmbeddedPostgresError } from './postgres-access';
export {
  CONSOLE_SCOPES,
  CONSOLE_TOKEN_TTL_SECONDS,
  createStandalone,
  type StandaloneInfo,
  type StandaloneParts,
  type StaticHandler,
} from './standalone';
