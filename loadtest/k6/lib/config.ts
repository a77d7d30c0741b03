/**
 * Configuration of the k6 scenarios, only from `-e NAME=value` / the environment:
 *
 * - BASE_URL: the one origin (load balancer), default http://localhost:8787
 * - API_URL, DELTA_URL, WS_URL: override where writes, reads and the WebSocket go
 * - SYNC_JWT_SECRET: sign HS256 tokens in k6; or TOKEN: a ready-made token (scopes `*`)
 * - per-script knobs (VUS, SCOPES, RATE, DURATION, ...) read with `intEnv`.
 */
const strip = (url: string) => url.replace(/\/+$/, '');

export const BASE_URL = strip(__ENV.BASE_URL || 'http://localhost:8787');
export const API_URL = strip(__ENV.API_URL || BASE_URL);
export const DELTA_URL = strip(__ENV.DELTA_URL || BASE_URL);
export const WS_URL = strip(__ENV.WS_URL || BASE_URL.replace(/^http/, 'ws'));

/** A whole number from the environment, or the default when unset or not a number. */
export function intEnv(name: string, fallback: number): number {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  return Number.isFinite(n) ? Math.floor(n) : fallback;
}

/** A string from the environment, or the default. */
export function strEnv(name: string, fallback: string): string {
  const raw = __ENV[name];
  return raw === undefined || raw === '' ? fallback : raw;
}
