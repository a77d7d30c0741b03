import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, loadEnv, port, postgresUrl } from './config';

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
