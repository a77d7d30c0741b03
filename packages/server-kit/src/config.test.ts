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
});
