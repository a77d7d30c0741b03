import { z } from 'zod';
import { loadEnv, postgresUrl } from './config';
import { createLogger } from './logger';
import { migrate } from './migrate';

// `npm run migrate`: applies migrations to DATABASE_URL and exits (the k8s init containers, compose `migrate`).
const config = loadEnv(z.object({ DATABASE_URL: postgresUrl }));
const log = createLogger({ name: 'migrate' });
try {
  const ran = await migrate(config.DATABASE_URL, log);
  log.info({ count: ran.length }, 'migrations up to date');
} catch (err) {
  log.fatal({ err }, 'migration failed');
  process.exitCode = 1;
}
