import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearerToken, createAuth } from './auth';
import { AppError } from './errors';

const secret = 'a'.repeat(40);
const auth = createAuth({ secret });

describe('auth', () => {
  it('round-trips a signed token', async () => {
    const token = await auth.sign({ sub: 'u1', scopes: ['org:1', 'agent:*'] });
    const principal = await auth.verify(token);
    expect(principal.sub).toBe('u1');
    expect(principal.scopes).toEqual(['org:1', 'agent:*']);
  });

  it.each([
    ['missing', undefined],
    ['garbage', 'not-a-jwt'],
  ])('rejects a %s token as unauthorized', async (_label, token) => {
    await expect(auth.verify(token)).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
  });

  it('rejects an expired token, a wrong secret and the none algorithm', async () => {
    const expired = await auth.sign({ sub: 'u', scopes: [] }, -60);
    await expect(auth.verify(expired)).rejects.toMatchObject({ message: 'Token expired' });
    const other = await createAuth({ secret: 'b'.repeat(40) }).sign({ sub: 'u', scopes: ['*'] });
    await expect(auth.verify(other)).rejects.toBeInstanceOf(AppError);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"u","scopes":["*"],"exp":9999999999}').toString('base64url')}.`;
    await expect(auth.verify(none)).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('rejects tokens whose claims have the wrong shape', async () => {
    const token = await new SignJWT({ scopes: 'org:1' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(secret));
    await expect(auth.verify(token)).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('checks scopes against exact, prefix and wildcard patterns', async () => {
    const p = { sub: 'u', scopes: ['org:1', 'agent:*'], exp: 0 };
    expect(() => auth.assertScope(p, 'org:1')).not.toThrow();
    expect(() => auth.assertScope(p, 'agent:42')).not.toThrow();
    expect(() => auth.assertScope(p, 'org:2')).toThrow(expect.objectContaining({ code: 'forbidden' }));
    expect(() => auth.assertScope({ ...p, scopes: ['*'] }, 'anything:1')).not.toThrow();
  });

  it('parses bearer headers', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer abc ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
