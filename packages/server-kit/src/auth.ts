import { scopeAllowed } from '@openagents/sync-protocol';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { AppError } from './errors';

/** Who is calling: the token's subject and the scope patterns it may read and write. */
export interface Principal {
  sub: string;
  scopes: readonly string[];
  /** Expiry, seconds since the epoch. */
  exp: number;
}

const Claims = z.object({
  sub: z.string().min(1).max(200),
  scopes: z.array(z.string().min(1).max(200)).max(1000),
  exp: z.number(),
});

export interface Auth {
  /** Verifies an HS256 token; throws AppError('unauthorized') when missing, invalid or expired. */
  verify(token: string | undefined | null): Promise<Principal>;
  /** Signs a token (dev tokens, tests, load drivers). */
  sign(claims: { sub: string; scopes: string[] }, ttlSeconds?: number): Promise<string>;
  /** Throws AppError('forbidden') unless the principal's patterns cover `scope`. */
  assertScope(principal: Principal, scope: string): void;
}

export function createAuth(options: { secret: string; clockToleranceSeconds?: number }): Auth {
  const key = new TextEncoder().encode(options.secret);
  return {
    async verify(token) {
      if (!token) throw new AppError('unauthorized', 'Missing bearer token');
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: ['HS256'],
          clockTolerance: options.clockToleranceSeconds ?? 5,
          requiredClaims: ['sub', 'exp'],
        });
        const claims = Claims.safeParse(payload);
        if (!claims.success)
          throw new AppError('unauthorized', 'Token claims are invalid (sub, scopes, exp)');
        return claims.data;
      } catch (err) {
        if (err instanceof AppError) throw err;
        const expired = err instanceof joseErrors.JWTExpired;
        throw new AppError('unauthorized', expired ? 'Token expired' : 'Invalid token', { cause: err });
      }
    },
    async sign(claims, ttlSeconds = 3600) {
      return new SignJWT({ scopes: claims.scopes })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(claims.sub)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
        .sign(key);
    },
    assertScope(principal, scope) {
      if (!scopeAllowed(principal.scopes, scope)) {
        throw new AppError('forbidden', `Token does not grant scope ${scope}`, { details: { scope } });
      }
    },
  };
}

/** The token from `Authorization: Bearer <jwt>`, or undefined. */
export function bearerToken(header: string | undefined | null): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}
