import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';

/** Request headers a browser app sends to the API and the delta service. */
export const CORS_ALLOW_HEADERS = ['Authorization', 'Content-Type', 'Idempotency-Key', 'Cache-Control'];
/** Response headers a browser app may read: `Age` of a shared read, `Retry-After` of a 429. */
export const CORS_EXPOSE_HEADERS = ['Age', 'Retry-After'];

/**
 * CORS for an allow-list of origins (`ALLOWED_ORIGINS`). An origin on the list gets
 * `Access-Control-Allow-Origin` with its own name (never `*`, no credentials: tokens travel in
 * the Authorization header, not in cookies) and an answer to its preflight; any other origin gets
 * no CORS header, so the browser keeps the response from its page. An empty list adds nothing at
 * all: preflights are then routed like any request.
 *
 * @example
 *   app.use('*', corsFor(config.ALLOWED_ORIGINS));
 */
export function corsFor(origins: readonly string[]): MiddlewareHandler {
  if (origins.length === 0) return (_c, next) => next();
  const allowed = new Set(origins);
  return cors({
    origin: (origin) => (allowed.has(origin) ? origin : null),
    allowMethods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
    allowHeaders: CORS_ALLOW_HEADERS,
    exposeHeaders: CORS_EXPOSE_HEADERS,
    maxAge: 600,
  });
}
