import { z } from 'zod';
import { parseRedisTarget } from './redis-target';

/** Thrown when the environment does not satisfy a service's schema; the message names each variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses `env` against a zod object whose keys are the variable names. Empty strings count as
 * unset, so `FOO=` in a compose file falls back to the default instead of failing validation.
 * Returns a frozen object.
 *
 * @example
 *   const config = loadEnv(z.object({ PORT: port.default(8787) }), process.env);
 */
export function loadEnv<S extends z.ZodObject>(
  schema: S,
  env: Record<string, string | undefined> = process.env,
): Readonly<z.infer<S>> {
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') cleaned[key] = value.trim();
  }
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = issue.path.join('.') || '(environment)';
      const given = describeValue(name, cleaned[name]);
      return `${name}: ${issue.message} (got ${given})`;
    });
    throw new ConfigError(problems);
  }
  return Object.freeze(result.data);
}

/** Variables whose values never reach a message: secrets, and URLs that may carry a password. */
const SECRET_NAME = /SECRET|PASSWORD|TOKEN|KEY/i;

function describeValue(name: string, value: string | undefined): string {
  if (value === undefined) return 'unset';
  if (SECRET_NAME.test(name)) return `a value of ${value.length} characters`;
  if (/_URL$/.test(name)) return JSON.stringify(value.replace(/\/\/([^/@]*)@/, '//***@'));
  return JSON.stringify(value);
}

/* Reusable variable types ----------------------------------------------------------------- */

export const port = z.coerce.number().int().min(0).max(65535);
export const positiveInt = z.coerce.number().int().positive();
export const nonNegativeInt = z.coerce.number().int().nonnegative();
export const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
export const postgresUrl = z.url().refine((u) => /^postgres(ql)?:\/\//.test(u), 'must be a postgres:// URL');
/**
 * REDIS_URL: `redis://` or `rediss://` for one server, `redis+cluster://host:port,host:port` (or
 * `rediss+cluster://`) for a Redis Cluster. Checked by the same parser the bus uses.
 */
export const redisUrl = z.string().check((ctx) => {
  try {
    parseRedisTarget(ctx.value);
  } catch (err) {
    ctx.issues.push({ code: 'custom', message: (err as Error).message, input: ctx.value });
  }
});
/** REDIS_CLUSTER: treat a redis:// REDIS_URL as the seed node of a Redis Cluster. */
export const redisCluster = bool.default(false);
/** HS256 needs at least 256 bits of key: 32 characters. */
export const jwtSecret = z.string().min(32, 'must be at least 32 characters');
