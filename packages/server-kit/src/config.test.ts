import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { authEnv, authOptionsFromEnv, ConfigError, corsEnv, loadEnv, port, postgresUrl } from './config';

const schema = z.object({ PORT: port.default(8787), DATABASE_URL: postgresUrl.optional() });

describe('loadEnv', () => {
  it('applies defaults, treats empty strings as unset and freezes the result', () => {
    const config = loadEnv(schema, { PORT: '', DATABASE_URL: 'postgres://u@h/db' });
    expect(config).toEqual({ PORT: 8787, DATABASE_URL: 'postgres://u@h/db' });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names the variable and the value it rejected', () => {
    expect(() => loadEnv(schema, { PORT: 'eighty' })).toThrow(ConfigError);
    expect(() => loadEnv(schema, { PORT: 'eighty' })).toThrow(/PORT: .*"eighty"/);
    expect(() => loadEnv(schema, { DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL/);
  });

  it('never echoes a secret or a password in a URL', () => {
    const secrets = z.object({ SYNC_JWT_SECRET: z.string().min(32), DATABASE_URL: postgresUrl });
    const attempt = () => loadEnv(secrets, { SYNC_JWT_SECRET: 'hunter2', DATABASE_URL: 'mysql://u:pw@h/db' });
    expect(attempt).toThrow(/SYNC_JWT_SECRET: .*a value of 7 characters/);
    expect(attempt).not.toThrow(/hunter2/);
    expect(attempt).not.toThrow(/:pw@/);
  });
});

describe('token and CORS variables', () => {
  const schema = z.object({ ...authEnv, ...corsEnv });
  const secret = 's'.repeat(32);

  it('reads rotation keys, JWKS, iss, aud and the maximum lifetime into createAuth options', () => {
    const config = loadEnv(schema, {
      SYNC_JWT_SECRET: secret,
      SYNC_JWT_KID: 'k2',
      SYNC_JWT_SECRETS_PREVIOUS: `${'a'.repeat(32)}, ${'b'.repeat(32)}`,
      SYNC_JWT_KEYS: `k1:${'c'.repeat(32)},k0:${'d'.repeat(32)}`,
      SYNC_JWKS_URL: 'https://id.example/.well-known/jwks.json',
      SYNC_JWT_ISSUER: 'https://id.example/',
      SYNC_JWT_AUDIENCE: 'sync',
      SYNC_JWT_MAX_TTL_SECONDS: '3600',
    });
    expect(authOptionsFromEnv(config)).toEqual({
      secret,
      kid: 'k2',
      previousSecrets: ['a'.repeat(32), 'b'.repeat(32)],
      keys: { k1: 'c'.repeat(32), k0: 'd'.repeat(32) },
      jwksUrl: 'https://id.example/.well-known/jwks.json',
      issuer: 'https://id.example/',
      audience: 'sync',
      maxTtlSeconds: 3600,
    });
    expect(authOptionsFromEnv(loadEnv(schema, { SYNC_JWT_SECRET: secret }))).toEqual({ secret });
  });

  it('refuses short rotation secrets and malformed kid entries without echoing them', () => {
    const attempt = (env: Record<string, string>) => () =>
      loadEnv(schema, { SYNC_JWT_SECRET: secret, ...env });
    expect(attempt({ SYNC_JWT_SECRETS_PREVIOUS: 'short-one' })).toThrow(/SYNC_JWT_SECRETS_PREVIOUS/);
    expect(attempt({ SYNC_JWT_KEYS: `nokid${'x'.repeat(40)}` })).toThrow(/SYNC_JWT_KEYS: each entry/);
    expect(attempt({ SYNC_JWT_KEYS: 'k1:short' })).not.toThrow(/short/);
    expect(attempt({ SYNC_JWT_MAX_TTL_SECONDS: '0' })).toThrow(/SYNC_JWT_MAX_TTL_SECONDS/);
  });

  it('allows no origin by default and normalises listed ones', () => {
    expect(loadEnv(schema, { SYNC_JWT_SECRET: secret }).ALLOWED_ORIGINS).toEqual([]);
    const config = loadEnv(schema, {
      SYNC_JWT_SECRET: secret,
      ALLOWED_ORIGINS: 'https://App.Example.com, http://localhost:5173/',
    });
    expect(config.ALLOWED_ORIGINS).toEqual(['https://app.example.com', 'http://localhost:5173']);
    for (const bad of ['*', 'app.example.com', 'https://a.example/path', 'ftp://a.example']) {
      expect(() => loadEnv(schema, { SYNC_JWT_SECRET: secret, ALLOWED_ORIGINS: bad })).toThrow(
        /ALLOWED_ORIGINS/,
      );
    }
  });
});
