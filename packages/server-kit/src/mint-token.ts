import { createAuth } from './auth';

/** A lifetime: seconds, or a number with `s`, `m`, `h` or `d` (`90`, `15m`, `1h`, `7d`). */
export type Ttl = number | string;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Seconds of a lifetime such as `1h`; throws on anything else or on a value ≤ 0. */
export function parseTtl(ttl: Ttl): number {
  const match = typeof ttl === 'number' ? null : /^\s*(\d+)\s*([smhd]?)\s*$/.exec(ttl);
  const seconds =
    typeof ttl === 'number' ? ttl : match ? Number(match[1]) * UNIT_SECONDS[match[2] || 's']! : Number.NaN;
  if (!Number.isSafeInteger(seconds) || seconds <= 0) {
    throw new Error(
      `Invalid ttl ${JSON.stringify(ttl)}: use seconds or a number with s, m, h or d (e.g. 1h)`,
    );
  }
  return seconds;
}

export interface MintTokenOptions {
  /** The HS256 secret the services verify with (SYNC_JWT_SECRET). */
  secret: string;
  /** The user the token speaks for. */
  sub: string;
  /**
   * Scope patterns it may read and write: exact (`org:7f1c…`), a prefix ending in `*`
   * (`agent:*`), or `*` for everything (keep that for tools you trust).
   */
  scopes: readonly string[];
  /** Lifetime, e.g. `1h` or 3600; keep it short and mint a new one when it runs out. */
  ttl: Ttl;
  /** `kid` header, when the services verify by key id (SYNC_JWT_KEYS). */
  kid?: string;
  /** `iss`, when the services require one (SYNC_JWT_ISSUER). */
  issuer?: string;
  /** `aud`, when the services require one (SYNC_JWT_AUDIENCE). */
  audience?: string;
}

/**
 * Signs a client token for your users: call it from your own server (a `/token` route behind
 * your login) and hand the result to the browser. Scope it to what the user may see — their
 * org and its agents — rather than `*`.
 *
 * @example
 *   app.get('/token', requireLogin, async (req, res) => {
 *     const token = await mintToken({
 *       secret: process.env.SYNC_JWT_SECRET!,
 *       sub: req.user.id,
 *       scopes: [`org:${req.user.orgId}`, ...req.user.agentIds.map((id) => `agent:${id}`)],
 *       ttl: '1h',
 *     });
 *     res.json({ token });
 *   });
 */
export async function mintToken(options: MintTokenOptions): Promise<string> {
  const ttlSeconds = parseTtl(options.ttl);
  if (options.sub.length === 0 || options.sub.length > 200) throw new Error('sub must be 1..200 characters');
  if (options.scopes.length === 0) throw new Error('A token needs at least one scope');
  for (const scope of options.scopes) {
    if (scope.length === 0 || scope.length > 200 || /\s/.test(scope)) {
      throw new Error(`Invalid scope ${JSON.stringify(scope)}: 1..200 characters, no spaces`);
    }
  }
  const auth = createAuth({
    secret: options.secret,
    ...(options.kid === undefined ? {} : { kid: options.kid }),
    ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
    ...(options.audience === undefined ? {} : { audience: options.audience }),
  });
  return auth.sign({ sub: options.sub, scopes: [...options.scopes] }, ttlSeconds);
}
