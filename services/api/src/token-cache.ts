import type { Auth, Principal } from '@openagents/sync-server-kit';
import { LRUCache } from 'lru-cache';

/**
 * Verifies bearer tokens through `auth`, remembering the ones that verified until they expire.
 * HS256 verification goes through WebCrypto (an async key import and HMAC per call), which was
 * the largest single CPU cost of a write in the benchmark; a client sends the same token with
 * every request, so the second request onwards is a map lookup. Failures are never cached, and a
 * cached token is refused the moment its `exp` passes.
 */
export function createTokenCache(
  auth: Pick<Auth, 'verify'>,
  options: { max?: number; now?: () => number } = {},
): (token: string | undefined) => Promise<Principal> {
  const now = options.now ?? Date.now;
  const cache = new LRUCache<string, Principal>({ max: options.max ?? 10_000 });
  return async (token) => {
    if (token) {
      const hit = cache.get(token);
      if (hit && hit.exp * 1000 > now()) return hit;
      if (hit) cache.delete(token);
    }
    const principal = await auth.verify(token);
    if (token) cache.set(token, principal);
    return principal;
  };
}
