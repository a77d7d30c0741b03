import { scopeAllowed } from '@openagents/sync-protocol';
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
} from 'jose';
import { z } from 'zod';
import { AppError } from './errors';

/**
 * What a token is for. Client tokens are what apps hand to browsers and agents; service tokens
 * (`"use": "service"`) are what one of our services signs for itself to call another (the
 * gateway calling the delta service). A client-facing endpoint refuses service tokens, and the
 * features only gateways may use accept nothing else, so a leaked service token is no use in a
 * browser and a client token cannot reach the internal reads.
 */
export type TokenUse = 'client' | 'service';

/** Who is calling: the token's subject and the scope patterns it may read and write. */
export interface Principal {
  sub: string;
  scopes: readonly string[];
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** `service` for a service token; absent or `client` otherwise. */
  use?: TokenUse;
}

const Claims = z.object({
  sub: z.string().min(1).max(200),
  scopes: z.array(z.string().min(1).max(200)).max(1000),
  exp: z.number(),
  iat: z.number().optional(),
  use: z.enum(['client', 'service']).optional(),
});

/** Asymmetric algorithms accepted from a JWKS (an identity provider's keys). */
export const JWKS_ALGORITHMS = ['RS256', 'ES256'] as const;

/** Longer than any sane token; refused before any parsing or crypto work. */
const MAX_TOKEN_LENGTH = 16 * 1024;

export interface AuthOptions {
  /** HS256 key that signs our tokens (and verifies them). At least 32 characters. */
  secret?: string;
  /** `kid` written into the header of tokens signed with `secret` (optional). */
  kid?: string;
  /** Earlier HS256 secrets still accepted for verification, tried in order (key rotation). */
  previousSecrets?: readonly string[];
  /** More HS256 verification keys by `kid`; a token naming one of these kids is checked with it alone. */
  keys?: Readonly<Record<string, string>>;
  /** A JWKS (RS256/ES256 keys of an identity provider), fetched and cached by jose. */
  jwksUrl?: string;
  /** A JWKS key resolver in place of `jwksUrl` (e.g. `createLocalJWKSet`). */
  jwks?: JWTVerifyGetKey;
  /** Required `iss` of every token, and written into the tokens we sign. */
  issuer?: string;
  /** Required `aud` of every token, and written into the tokens we sign. */
  audience?: string;
  /** Longest accepted lifetime (`exp − iat`); a token without `iat` is then refused. */
  maxTtlSeconds?: number;
  clockToleranceSeconds?: number;
  /**
   * Whether `verify` also accepts service tokens. Only the delta service sets it: gateways read
   * through it with their service token. Everything facing clients leaves it off.
   */
  acceptServiceTokens?: boolean;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

export interface Auth {
  /**
   * Verifies a client token (and a service token where `acceptServiceTokens` is set); throws
   * AppError('unauthorized') when missing, invalid, expired, too long-lived or of the wrong use.
   */
  verify(token: string | undefined | null): Promise<Principal>;
  /** Verifies a service token: HS256 with one of our keys and `"use": "service"`; nothing else passes. */
  verifyService(token: string | undefined | null): Promise<Principal>;
  /** Signs a client token (dev tokens, tests, load drivers). Needs `secret`. */
  sign(claims: { sub: string; scopes: string[] }, ttlSeconds?: number): Promise<string>;
  /** Signs a service token (`"use": "service"`, scopes `*`) for calls between our services. */
  signService(sub: string, ttlSeconds?: number): Promise<string>;
  /** Throws AppError('forbidden') unless the principal's patterns cover `scope`. */
  assertScope(principal: Principal, scope: string): void;
}

/**
 * Token verification for every service. HS256 tokens are checked against `secret`, the keys of
 * `keys` and `previousSecrets` (a token whose `kid` names a key in `keys` against that key only),
 * so a new secret can be rolled out before the old one is retired; RS256/ES256 tokens against the
 * JWKS when one is configured. `iss`, `aud` and the maximum lifetime apply to all of them.
 *
 * @example
 *   const auth = createAuth({ secret: process.env.SYNC_JWT_SECRET, previousSecrets: [old] });
 *   const principal = await auth.verify(bearerToken(request.headers.get('authorization')));
 *   auth.assertScope(principal, 'org:7f1c…');
 */
export function createAuth(options: AuthOptions): Auth {
  // Imported once: handing jose raw bytes would import the key again on every verify.
  const importHmac = (secret: string) =>
    crypto.subtle.importKey(
      'raw',
      new TextEncoder().encode(secret),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign', 'verify'],
    );
  const signingKey = options.secret ? importHmac(options.secret) : undefined;
  const keyedHmac = new Map(Object.entries(options.keys ?? {}).map(([kid, s]) => [kid, importHmac(s)]));
  const hmacKeys = [
    ...(signingKey ? [signingKey] : []),
    ...(options.previousSecrets ?? []).map(importHmac),
    ...keyedHmac.values(),
  ];
  const jwks = options.jwks ?? (options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : undefined);
  if (hmacKeys.length === 0 && !jwks) {
    throw new Error('createAuth needs a secret, keys or a JWKS to verify tokens with');
  }
  const now = options.now ?? Date.now;
  const tolerance = options.clockToleranceSeconds ?? 5;
  const maxTtl = options.maxTtlSeconds;

  const verifyOptions = (): JWTVerifyOptions => ({
    clockTolerance: tolerance,
    currentDate: new Date(now()),
    requiredClaims: maxTtl === undefined ? ['sub', 'exp'] : ['sub', 'exp', 'iat'],
    ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
    ...(options.audience === undefined ? {} : { audience: options.audience }),
  });

  /** The payload of a token with a valid signature and standard claims, and how it was verified. */
  const checkSignature = async (token: string): Promise<{ payload: JWTPayload; ours: boolean }> => {
    if (token.length > MAX_TOKEN_LENGTH) throw new AppError('unauthorized', 'Invalid token');
    let alg: unknown;
    let kid: unknown;
    try {
      ({ alg, kid } = decodeProtectedHeader(token));
    } catch (err) {
      throw new AppError('unauthorized', 'Invalid token', { cause: err });
    }
    if (alg === 'HS256' && hmacKeys.length > 0) {
      const named = typeof kid === 'string' ? keyedHmac.get(kid) : undefined;
      const payload = await verifyWithAny(token, named ? [named] : hmacKeys, {
        ...verifyOptions(),
        algorithms: ['HS256'],
      });
      return { payload, ours: true };
    }
    if (jwks && (JWKS_ALGORITHMS as readonly unknown[]).includes(alg)) {
      const { payload } = await jwtVerify(token, jwks, {
        ...verifyOptions(),
        algorithms: [...JWKS_ALGORITHMS],
      });
      return { payload, ours: false };
    }
    throw new AppError('unauthorized', 'Invalid token: algorithm not accepted');
  };

  const principalOf = async (token: string | undefined | null, want: 'client' | 'service') => {
    if (!token) throw new AppError('unauthorized', 'Missing bearer token');
    try {
      const { payload, ours } = await checkSignature(token);
      const claims = Claims.safeParse(payload);
      if (!claims.success) throw new AppError('unauthorized', 'Token claims are invalid (sub, scopes, exp)');
      const { sub, scopes, exp, iat, use = 'client' } = claims.data;
      if (maxTtl !== undefined && iat !== undefined) {
        if (exp - iat > maxTtl) {
          throw new AppError('unauthorized', `Token lifetime exceeds ${maxTtl} seconds`);
        }
        // A future iat would stretch the window: exp − iat is small, exp is far away.
        if (iat > now() / 1000 + tolerance) throw new AppError('unauthorized', 'Token issued in the future');
      }
      if (use === 'service') {
        // Only our own keys sign service tokens; an identity provider's token never is one.
        const allowed = ours && (want === 'service' || options.acceptServiceTokens === true);
        if (!allowed) throw new AppError('unauthorized', 'Service tokens are not accepted here');
      } else if (want === 'service') {
        throw new AppError('unauthorized', 'This endpoint needs a service token');
      }
      return { sub, scopes, exp, use } satisfies Principal;
    } catch (err) {
      if (err instanceof AppError) throw err;
      const expired = err instanceof joseErrors.JWTExpired;
      throw new AppError('unauthorized', expired ? 'Token expired' : 'Invalid token', { cause: err });
    }
  };

  const signWith = async (payload: JWTPayload, sub: string, ttlSeconds: number) => {
    if (!signingKey) throw new Error('No signing secret configured (SYNC_JWT_SECRET)');
    const iat = Math.floor(now() / 1000);
    let jwt = new SignJWT(payload)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...(options.kid ? { kid: options.kid } : {}) })
      .setSubject(sub)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttlSeconds);
    if (options.issuer !== undefined) jwt = jwt.setIssuer(options.issuer);
    if (options.audience !== undefined) jwt = jwt.setAudience(options.audience);
    return signingKey.then((key) => jwt.sign(key));
  };

  return {
    verify: (token) => principalOf(token, 'client'),
    verifyService: (token) => principalOf(token, 'service'),
    sign: (claims, ttlSeconds = 3600) => signWith({ scopes: claims.scopes }, claims.sub, ttlSeconds),
    signService: (sub, ttlSeconds = 3600) => signWith({ scopes: ['*'], use: 'service' }, sub, ttlSeconds),
    assertScope(principal, scope) {
      if (!scopeAllowed(principal.scopes, scope)) {
        throw new AppError('forbidden', `Token does not grant scope ${scope}`, { details: { scope } });
      }
    },
  };
}

/**
 * Verifies against each key in turn: a signature mismatch moves on to the next key; anything
 * else (expired, wrong issuer) was decided with a valid signature and is final.
 */
async function verifyWithAny(
  token: string,
  keys: readonly Promise<CryptoKey>[],
  options: JWTVerifyOptions,
): Promise<JWTPayload> {
  let last: unknown;
  for (const key of keys) {
    try {
      return (await jwtVerify(token, await key, options)).payload;
    } catch (err) {
      if (!(err instanceof joseErrors.JWSSignatureVerificationFailed)) throw err;
      last = err;
    }
  }
  throw new AppError('unauthorized', 'Invalid token', { cause: last });
}

/** The token from `Authorization: Bearer <jwt>`, or undefined. */
export function bearerToken(header: string | undefined | null): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}
