import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { CompactSign, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Auth, bearerToken, createAuth } from './auth';
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

const key = (s: string) => new TextEncoder().encode(s);
const oldSecret = 'o'.repeat(40);
const newSecret = 'n'.repeat(40);
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A token with exactly these claims and header, signed with `secret` (HS256 unless said otherwise). */
function hs256(claims: Record<string, unknown>, secretOrKey: string, header: Record<string, unknown> = {}) {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', ...header }).sign(key(secretOrKey));
}

const refused = (auth: Auth, token: string, message?: RegExp) =>
  expect(auth.verify(token)).rejects.toMatchObject({
    code: 'unauthorized',
    ...(message ? { message: expect.stringMatching(message) } : {}),
  });

describe('auth: several keys at once (rotation without a flag day)', () => {
  it('accepts tokens of the previous secrets while signing with the new one', async () => {
    const rotated = createAuth({ secret: newSecret, previousSecrets: [oldSecret] });
    const fromOld = await createAuth({ secret: oldSecret }).sign({ sub: 'u', scopes: ['org:1'] });
    expect((await rotated.verify(fromOld)).sub).toBe('u');
    const fromNew = await rotated.sign({ sub: 'v', scopes: ['org:1'] });
    expect((await createAuth({ secret: newSecret }).verify(fromNew)).sub).toBe('v');
    // Once the old secret is dropped its tokens stop working.
    await refused(createAuth({ secret: newSecret }), fromOld, /Invalid token/);
  });

  it('checks a token naming a known kid against that key alone', async () => {
    const auth = createAuth({ secret: newSecret, keys: { k1: oldSecret } });
    const good = await hs256({ sub: 'u', scopes: [], exp: nowSeconds() + 60 }, oldSecret, { kid: 'k1' });
    expect((await auth.verify(good)).sub).toBe('u');
    // Signed with the primary secret but naming k1: the kid pins the key, so it fails.
    const pinned = await hs256({ sub: 'u', scopes: [], exp: nowSeconds() + 60 }, newSecret, { kid: 'k1' });
    await refused(auth, pinned);
    // An unknown kid falls back to trying every key.
    const unknown = await hs256({ sub: 'u', scopes: [], exp: nowSeconds() + 60 }, oldSecret, { kid: 'zz' });
    expect((await auth.verify(unknown)).sub).toBe('u');
  });

  it('writes its kid into the tokens it signs', async () => {
    const signer = createAuth({ secret: newSecret, kid: 'k2' });
    const token = await signer.sign({ sub: 'u', scopes: [] });
    const verifier = createAuth({ secret: oldSecret, keys: { k2: newSecret } });
    expect((await verifier.verify(token)).sub).toBe('u');
  });

  it('needs some key to verify with', () => {
    expect(() => createAuth({})).toThrow(/secret, keys or a JWKS/);
  });
});

describe('auth: issuer, audience and maximum lifetime', () => {
  const strict = createAuth({ secret, issuer: 'https://id.example', audience: 'sync', maxTtlSeconds: 3600 });

  it('signs and accepts tokens with the configured iss and aud', async () => {
    const token = await strict.sign({ sub: 'u', scopes: ['org:1'] }, 600);
    expect((await strict.verify(token)).scopes).toEqual(['org:1']);
  });

  it('refuses a wrong or missing iss or aud', async () => {
    const base = { sub: 'u', scopes: [], iat: nowSeconds(), exp: nowSeconds() + 60 };
    await refused(strict, await hs256({ ...base, iss: 'https://evil.example', aud: 'sync' }, secret));
    await refused(strict, await hs256({ ...base, iss: 'https://id.example', aud: 'other' }, secret));
    await refused(strict, await hs256({ ...base, aud: 'sync' }, secret));
    await refused(strict, await hs256({ ...base, iss: 'https://id.example' }, secret));
  });

  it('refuses a lifetime over the maximum, a token without iat, and an iat in the future', async () => {
    const claims = { sub: 'u', scopes: [], iss: 'https://id.example', aud: 'sync' };
    const t = nowSeconds();
    expect((await strict.verify(await hs256({ ...claims, iat: t, exp: t + 3600 }, secret))).sub).toBe('u');
    await refused(strict, await hs256({ ...claims, iat: t, exp: t + 3601 }, secret), /lifetime exceeds 3600/);
    await refused(strict, await hs256({ ...claims, exp: t + 60 }, secret), /Invalid token/);
    await refused(
      strict,
      await hs256({ ...claims, iat: t + 86_400, exp: t + 86_400 + 60 }, secret),
      /future/,
    );
    // Without a maximum, a long-lived token without iat is fine (the contract's minimal claims).
    expect((await auth.verify(await hs256({ sub: 'u', scopes: [], exp: t + 10 * 86_400 }, secret))).sub).toBe(
      'u',
    );
  });
});

describe('auth: service tokens are not client tokens', () => {
  const gatewaySide = createAuth({ secret });
  const deltaSide = createAuth({ secret, acceptServiceTokens: true });

  it('refuses a service token where clients are served, and a client token where services are', async () => {
    const service = await gatewaySide.signService('service:gateway', 60);
    await expect(auth.verify(service)).rejects.toMatchObject({
      message: 'Service tokens are not accepted here',
    });
    expect(await auth.verifyService(service)).toMatchObject({
      sub: 'service:gateway',
      use: 'service',
      scopes: ['*'],
    });
    expect(await deltaSide.verify(service)).toMatchObject({ use: 'service' });
    const client = await auth.sign({ sub: 'u', scopes: ['*'] });
    await expect(auth.verifyService(client)).rejects.toMatchObject({ code: 'unauthorized' });
    expect(await deltaSide.verify(client)).toMatchObject({ use: 'client' });
  });
});

describe('auth: JWKS (RS256, ES256) served over HTTP', () => {
  let server: Server;
  let jwksUrl: string;
  let requests = 0;
  const pairs: Record<string, Awaited<ReturnType<typeof generateKeyPair>>> = {};

  beforeAll(async () => {
    pairs.RS256 = await generateKeyPair('RS256');
    pairs.ES256 = await generateKeyPair('ES256');
    const keys = [
      { ...(await exportJWK(pairs.RS256.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(pairs.ES256.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    ];
    server = createServer((_req, res) => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const idp = (
    alg: 'RS256' | 'ES256',
    claims: Record<string, unknown>,
    kid = alg === 'RS256' ? 'rsa-1' : 'ec-1',
  ) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg, kid })
      .setIssuer('https://id.example')
      .setAudience('sync')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(pairs[alg]!.privateKey);

  it.each(['RS256', 'ES256'] as const)('verifies %s tokens from the identity provider', async (alg) => {
    const verifier = createAuth({ secret, jwksUrl, issuer: 'https://id.example', audience: 'sync' });
    const principal = await verifier.verify(await idp(alg, { sub: 'alice', scopes: ['org:1'] }));
    expect(principal).toMatchObject({ sub: 'alice', scopes: ['org:1'], use: 'client' });
    expect(requests).toBeGreaterThan(0);
  });

  it('refuses a key it does not publish, an HS256 token signed with a public key, and IdP service tokens', async () => {
    const verifier = createAuth({ secret, jwksUrl });
    const stranger = await generateKeyPair('ES256');
    const foreign = await new SignJWT({ sub: 'm', scopes: ['*'] })
      .setProtectedHeader({ alg: 'ES256', kid: 'ec-1' })
      .setExpirationTime('10m')
      .sign(stranger.privateKey);
    await refused(verifier, foreign);
    // Algorithm confusion: the public JWK's text used as an HMAC secret.
    const publicText = JSON.stringify(await exportJWK(pairs.RS256!.publicKey));
    await refused(verifier, await hs256({ sub: 'm', scopes: ['*'], exp: nowSeconds() + 60 }, publicText));
    const serviceClaim = await idp('RS256', { sub: 'svc', scopes: ['*'], use: 'service' });
    await refused(createAuth({ secret, jwksUrl, acceptServiceTokens: true }), serviceClaim, /Service tokens/);
    await expect(verifier.verifyService(serviceClaim)).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('refuses RS256 and ES256 when no JWKS is configured', async () => {
    await refused(auth, await idp('ES256', { sub: 'alice', scopes: ['*'] }), /algorithm not accepted/);
  });
});

describe('auth: claim shapes (property)', () => {
  const json = fc.oneof(
    fc.string(),
    fc.integer(),
    fc.double({ noNaN: true }),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.string(), { maxLength: 4 }),
    fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }),
  );
  const claimShape = fc.record(
    {
      sub: json,
      scopes: fc.oneof(json, fc.array(fc.oneof(fc.string({ maxLength: 250 }), json), { maxLength: 5 })),
      exp: fc.oneof(json, fc.integer({ min: nowSeconds() - 1000, max: nowSeconds() + 100_000 })),
      iat: fc.oneof(json, fc.integer({ min: nowSeconds() - 1000, max: nowSeconds() + 1000 })),
      use: fc.oneof(json, fc.constantFrom('client', 'service')),
      __proto__: json,
    },
    { requiredKeys: [] },
  );

  it('answers any signed payload with a principal matching its claims or a 401, nothing else', async () => {
    const limited = createAuth({ secret, maxTtlSeconds: 50_000 });
    await fc.assert(
      fc.asyncProperty(claimShape, async (claims) => {
        // Signed as raw JSON, so shapes SignJWT itself would refuse (an infinite iat) reach verify too.
        const token = await new CompactSign(key(JSON.stringify(claims)))
          .setProtectedHeader({ alg: 'HS256' })
          .sign(key(secret));
        let principal: Awaited<ReturnType<Auth['verify']>>;
        try {
          principal = await limited.verify(token);
        } catch (err) {
          expect(err).toBeInstanceOf(AppError);
          expect((err as AppError).status).toBe(401);
          return;
        }
        expect(principal.sub).toBe(claims.sub);
        expect(principal.scopes).toEqual(claims.scopes);
        expect(principal.use).toBe('client');
        expect(typeof claims.iat).toBe('number');
        expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(50_000);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips every well-formed client claim set', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 200 }),
        fc.array(fc.string({ minLength: 1, maxLength: 200 }), { maxLength: 20 }),
        async (sub, scopes) => {
          const principal = await auth.verify(await auth.sign({ sub, scopes }, 60));
          expect(principal).toMatchObject({ sub, scopes, use: 'client' });
        },
      ),
      { numRuns: 100 },
    );
  });

  it('answers arbitrary strings as tokens with a 401', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.base64String()),
        async (text) => {
          await expect(auth.verify(`${text}.${text}.${text}`)).rejects.toMatchObject({ status: 401 });
        },
      ),
      { numRuns: 200 },
    );
  });
});
