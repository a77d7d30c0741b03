/** The standalone server: api, delta, gateway and console in one process on one port. */
export { loadStandaloneConfig, type StandaloneConfig, StandaloneEnv } from './config';
export { loadOrCreateDevSecret } from './dev-secret';
export { type EmbeddedDatabase, startEmbeddedPostgres } from './embedded-postgres';
export { createStandalone, type StandaloneInfo, type StaticHandler } from './standalone';
