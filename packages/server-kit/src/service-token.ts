import type { Auth } from './auth';

/**
 * The bearer token one of our services presents to another (the gateway to the delta service):
 * a service token (`"use": "service"`, see auth.ts), signed on first use and again once half its
 * lifetime has passed, so a call never carries one about to expire.
 *
 * @example
 *   const token = serviceTokenSource(auth, 'service:gateway', { ttlSeconds: 3600 });
 *   createHttpDeltaSource({ baseUrl, token });
 */
export function serviceTokenSource(
  auth: Pick<Auth, 'signService'>,
  sub: string,
  options: { ttlSeconds: number; now?: () => number },
): () => Promise<string> {
  const now = options.now ?? Date.now;
  let token: { value: string; renewAt: number } | undefined;
  return async () => {
    if (!token || now() >= token.renewAt) {
      const value = await auth.signService(sub, options.ttlSeconds);
      token = { value, renewAt: now() + (options.ttlSeconds * 1000) / 2 };
    }
    return token.value;
  };
}
