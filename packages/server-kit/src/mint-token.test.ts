import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { createAuth } from './auth';
import { mintToken, parseTtl } from './mint-token';

const secret = 'm'.repeat(40);

describe('mintToken', () => {
  it('mints a scoped token the services accept, with its lifetime, kid, iss and aud', async () => {
    const token = await mintToken({
      secret,
      sub: 'alice',
      scopes: ['org:7f1c', 'agent:*'],
      ttl: '1h',
      kid: 'k1',
      issuer: 'https://app.example',
      audience: 'sync',
    });
    const claims = decodeJwt(token);
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(decodeProtectedHeader(token).kid).toBe('k1');
    const verifier = createAuth({
      keys: { k1: secret },
      issuer: 'https://app.example',
      audience: 'sync',
      maxTtlSeconds: 3600,
    });
    expect(await verifier.verify(token)).toMatchObject({ sub: 'alice', scopes: ['org:7f1c', 'agent:*'] });
  });

  it('refuses a token without scopes, a blank scope and a bad ttl', async () => {
    await expect(mintToken({ secret, sub: 'a', scopes: [], ttl: 60 })).rejects.toThrow(/at least one scope/);
    await expect(mintToken({ secret, sub: 'a', scopes: ['org 1'], ttl: 60 })).rejects.toThrow(
      /Invalid scope/,
    );
    await expect(mintToken({ secret, sub: 'a', scopes: ['org:1'], ttl: '1 week' })).rejects.toThrow(
      /Invalid ttl/,
    );
  });
});

describe('parseTtl', () => {
  it.each([
    [90, 90],
    ['90', 90],
    ['15m', 900],
    ['1h', 3600],
    ['7d', 604_800],
  ])('%s is %i seconds', (ttl, seconds) => {
    expect(parseTtl(ttl)).toBe(seconds);
  });

  it.each([0, -1, 1.5, '', 'h', '1w', '1h30m'])('refuses %s', (ttl) => {
    expect(() => parseTtl(ttl)).toThrow(/Invalid ttl/);
  });
});
