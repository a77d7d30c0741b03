import { z } from 'zod';
import type { AuthOptions } from './auth';
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

const commaList = (value: string) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');

/** `a,b,c`: several HS256 secrets, each at least 32 characters. */
export const jwtSecretList = z
  .string()
  .transform(commaList)
  .pipe(z.array(jwtSecret).max(20, 'at most 20 secrets'));

/** `kid:secret,kid2:secret2`: HS256 verification keys by key id. */
export const jwtKeyMap = z.string().transform((value, ctx) => {
  const keys: Record<string, string> = {};
  for (const entry of commaList(value)) {
    const at = entry.indexOf(':');
    const kid = entry.slice(0, at).trim();
    const secret = entry.slice(at + 1).trim();
    if (at <= 0 || secret.length < 32) {
      ctx.addIssue({
        code: 'custom',
        message: 'each entry must be kid:secret with a secret of 32+ characters',
      });
      return z.NEVER;
    }
    keys[kid] = secret;
  }
  return keys;
});

/** A web origin: `https://app.example.com` or `http://localhost:5173`, no path. */
export const webOrigin = z.string().transform((value, ctx) => {
  try {
    const url = new URL(value);
    const bare = url.pathname === '/' && !url.search && !url.hash && !url.username;
    if ((url.protocol === 'http:' || url.protocol === 'https:') && bare) return url.origin;
  } catch {
    // fall through to the issue below
  }
  ctx.addIssue({ code: 'custom', message: `"${value}" is not an origin like https://app.example.com` });
  return z.NEVER;
});

/** `https://a.example,http://localhost:5173`: origins allowed to call from a browser (CORS). */
export const originList = z.string().transform(commaList).pipe(z.array(webOrigin).max(100));

/**
 * The token variables every service reads (api, delta, gateway, standalone), to spread into a
 * service's schema; `authOptionsFromEnv` turns the parsed values into `createAuth` options.
 */
export const authEnv = {
  /** HS256 secret our tokens are signed with, and verified against (at least 32 characters). */
  SYNC_JWT_SECRET: jwtSecret,
  /** `kid` written into the header of tokens signed with SYNC_JWT_SECRET (optional). */
  SYNC_JWT_KID: z.string().min(1).max(200).optional(),
  /** Comma list of earlier secrets still accepted while tokens signed with them live (rotation). */
  SYNC_JWT_SECRETS_PREVIOUS: jwtSecretList.optional(),
  /** `kid:secret,…`: more HS256 verification keys; a token naming one of these kids is checked with it alone. */
  SYNC_JWT_KEYS: jwtKeyMap.optional(),
  /** JWKS of an identity provider: RS256/ES256 client tokens are verified with its keys. */
  SYNC_JWKS_URL: z
    .url()
    .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
    .optional(),
  /** When set, every token must carry this `iss` (and ours are signed with it). */
  SYNC_JWT_ISSUER: z.string().min(1).max(500).optional(),
  /** When set, every token must carry this `aud` (and ours are signed with it). */
  SYNC_JWT_AUDIENCE: z.string().min(1).max(500).optional(),
  /** When set, a token living longer than this (exp − iat), or without iat, is refused. */
  SYNC_JWT_MAX_TTL_SECONDS: positiveInt.optional(),
};

/** The parsed token variables (SYNC_JWT_SECRET optional, as in the standalone server). */
export interface AuthEnv {
  SYNC_JWT_SECRET?: string | undefined;
  SYNC_JWT_KID?: string | undefined;
  SYNC_JWT_SECRETS_PREVIOUS?: readonly string[] | undefined;
  SYNC_JWT_KEYS?: Readonly<Record<string, string>> | undefined;
  SYNC_JWKS_URL?: string | undefined;
  SYNC_JWT_ISSUER?: string | undefined;
  SYNC_JWT_AUDIENCE?: string | undefined;
  SYNC_JWT_MAX_TTL_SECONDS?: number | undefined;
}

/** `createAuth` options from the token variables of a service's config. */
export function authOptionsFromEnv(config: AuthEnv): AuthOptions {
  return {
    ...(config.SYNC_JWT_SECRET === undefined ? {} : { secret: config.SYNC_JWT_SECRET }),
    ...(config.SYNC_JWT_KID === undefined ? {} : { kid: config.SYNC_JWT_KID }),
    ...(config.SYNC_JWT_SECRETS_PREVIOUS === undefined
      ? {}
      : { previousSecrets: config.SYNC_JWT_SECRETS_PREVIOUS }),
    ...(config.SYNC_JWT_KEYS === undefined ? {} : { keys: config.SYNC_JWT_KEYS }),
    ...(config.SYNC_JWKS_URL === undefined ? {} : { jwksUrl: config.SYNC_JWKS_URL }),
    ...(config.SYNC_JWT_ISSUER === undefined ? {} : { issuer: config.SYNC_JWT_ISSUER }),
    ...(config.SYNC_JWT_AUDIENCE === undefined ? {} : { audience: config.SYNC_JWT_AUDIENCE }),
    ...(config.SYNC_JWT_MAX_TTL_SECONDS === undefined
      ? {}
      : { maxTtlSeconds: config.SYNC_JWT_MAX_TTL_SECONDS }),
  };
}

/** The CORS variable of the HTTP services (api, delta, standalone). */
export const corsEnv = {
  /** Comma list of browser origins allowed to call the HTTP API (CORS); none by default. */
  ALLOWED_ORIGINS: originList.default([]),
};

/*
 * Variables several services read, each defined here once with one type and one limit. A
 * service's table spreads the groups it reads; where the services differ only in a default (a
 * port, a pool size) the table says `.default(n)` on the shared type.
 */

/** Size of a Postgres pool: PG_POOL_MAX (each service sets its default). */
export const poolSize = positiveInt.max(1000);

/** Every process. */
export const processEnv = {
  /** Pino log level (`fatal` … `trace`, `silent`). */
  LOG_LEVEL: logLevel.default('info'),
};

/** The services holding a Postgres pool (api, delta, standalone). */
export const databaseEnv = {
  /** Postgres holding the domain tables and the sync log. */
  DATABASE_URL: postgresUrl,
  /** Apply pending migrations before serving. */
  MIGRATE_ON_START: bool.default(true),
};

/** The services on the event bus (api, gateway, standalone). */
export const busEnv = {
  /** Redis of the event bus: `redis://`, `rediss://`, or `redis+cluster://host:port,…`. */
  REDIS_URL: redisUrl,
  /** Treat a redis:// REDIS_URL as the seed of a Redis Cluster (sharded pub/sub); redis+cluster:// implies it. */
  REDIS_CLUSTER: redisCluster,
  /** Prefix of every Redis channel name, so deployments or test runs can share one Redis. */
  REDIS_CHANNEL_PREFIX: z.string().max(100).optional(),
};
