import { AppError } from '@openagents/sync-server-kit';
import { describe, expect, it } from 'vitest';
import { testAuth } from '../../../test/support/tokens';
import { createTokenCache } from './token-cache';

describe('createTokenCache', () => {
  it('verifies once per token while it is valid', async () => {
    let calls = 0;
    const verify = createTokenCache({
      verify: (token) => {
        calls++;
        return testAuth.verify(token);
      },
    });
    const token = await testAuth.sign({ sub: 'u', scopes: ['*'] });
    expect((await verify(token)).sub).toBe('u');
    expect((await verify(token)).sub).toBe('u');
    expect(calls).toBe(1);
  });

  it('verifies again (and refuses) once the cached token has expired', async () => {
    let t = Date.now();
    let valid = true;
    const verify = createTokenCache(
      {
        verify: async (token) => {
          if (!valid) throw new AppError('unauthorized', 'Token expired');
          return testAuth.verify(token);
        },
      },
      { now: () => t },
    );
    const token = await testAuth.sign({ sub: 'u', scopes: ['*'] }, 60);
    await verify(token);
    valid = false;
    expect((await verify(token)).sub).toBe('u');
    t += 61_000;
    await expect(verify(token)).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('never caches failures: a token that failed once is verified again, and may then pass', async () => {
    const token = await testAuth.sign({ sub: 'u', scopes: ['*'] });
    let calls = 0;
    let failing = true;
    const verify = createTokenCache({
      verify: async (t) => {
        calls++;
        if (failing) throw new AppError('unauthorized', 'key not loaded yet');
        return testAuth.verify(t);
      },
    });
    await expect(verify(token)).rejects.toMatchObject({ code: 'unauthorized' });
    await expect(verify(token)).rejects.toMatchObject({ code: 'unauthorized' });
    expect(calls).toBe(2);
    failing = false;
    expect((await verify(token)).sub).toBe('u');
    expect(calls).toBe(3);
    await expect(verify(undefined)).rejects.toMatchObject({ code: 'unauthorized' });
  });
});
