import crypto from 'k6/crypto';
import encoding from 'k6/encoding';

/**
 * HS256 JWT signing inside k6 (no Node, no jose): base64url(header).base64url(claims), signed
 * with HMAC-SHA256. Produces the same tokens as server-kit's `createAuth().sign`.
 */
export function signHs256(claims: Record<string, unknown>, secret: string): string {
  const header = encoding.b64encode(JSON.stringify({ alg: 'HS256', typ: 'JWT' }), 'rawurl');
  const payload = encoding.b64encode(JSON.stringify(claims), 'rawurl');
  const signature = crypto.hmac('sha256', secret, `${header}.${payload}`, 'base64rawurl');
  return `${header}.${payload}.${signature}`;
}

/**
 * A bearer token for `sub` with the given scope patterns: signed here when SYNC_JWT_SECRET is
 * set, else the TOKEN from the environment (which then must grant the scopes).
 */
export function tokenFor(sub: string, scopes: string[] = ['*'], ttlSeconds = 4 * 3600): string {
  const secret = __ENV.SYNC_JWT_SECRET;
  if (secret) {
    const now = Math.floor(Date.now() / 1000);
    return signHs256({ sub, scopes, iat: now, exp: now + ttlSeconds }, secret);
  }
  const token = __ENV.TOKEN;
  if (!token) throw new Error('set SYNC_JWT_SECRET (to sign tokens) or TOKEN');
  return token;
}
