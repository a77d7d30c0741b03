import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { createAuth } from './auth';
import { serviceTokenSource } from './service-token';

describe('serviceTokenSource', () => {
  it('hands out a service token that internal endpoints take and client endpoints refuse', async () => {
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const auth = createAuth({ secret: 's'.repeat(40), now: () => clock });
    const next = serviceTokenSource(auth, 'service:gateway', { ttlSeconds: 600, now: () => clock });
    const first = await next();
    expect(await auth.verifyService(first)).toMatchObject({ sub: 'service:gateway', use: 'service' });
    await expect(auth.verify(first)).rejects.toMatchObject({ code: 'unauthorized' });
    expect(decodeJwt(first).exp! - decodeJwt(first).iat!).toBe(600);

    clock += 299_000;
    expect(await next()).toBe(first);
    clock += 1_000; // half the lifetime: renewed
    const second = await next();
    expect(second).not.toBe(first);
    expect(decodeJwt(second).iat).toBe(decodeJwt(first).iat! + 300);
  });
});
