/**
 * Where the console connects and with which token. The standalone server injects
 * `window.__SYNC_CONFIG__ = { url, token }` into the page; without it the console reads `?token=`
 * (and `?url=`) from the address, then a token saved from the token form, and otherwise asks.
 */
export interface SyncConsoleConfig {
  /** Base URL of the sync deployment (HTTP origin); defaults to the page's origin. */
  url?: string;
  token?: string;
}

export interface ConsoleConfig {
  url: string;
  token: string | null;
  /** Where the token came from, shown in the header. */
  source: 'injected' | 'query' | 'saved' | 'none';
}

/** The window fields the config is read from (a subset, so tests pass plain objects). */
export interface ConfigSource {
  location: { origin: string; search: string };
  __SYNC_CONFIG__?: unknown;
  localStorage?: Pick<Storage, 'getItem'>;
}

export const TOKEN_STORAGE_KEY = 'openagents-sync-console:token';

/** Resolves the console's config from the page, in the order described above. */
export function readConsoleConfig(source: ConfigSource): ConsoleConfig {
  const injected = asConfig(source.__SYNC_CONFIG__);
  const query = new URLSearchParams(source.location.search);
  const url = httpUrl(injected.url) ?? httpUrl(query.get('url')) ?? source.location.origin;
  if (injected.token) return { url, token: injected.token, source: 'injected' };
  const fromQuery = query.get('token');
  if (fromQuery && isTokenLike(fromQuery)) return { url, token: fromQuery, source: 'query' };
  const saved = safeGet(source.localStorage, TOKEN_STORAGE_KEY);
  if (saved && isTokenLike(saved)) return { url, token: saved, source: 'saved' };
  return { url, token: null, source: 'none' };
}

/** A JWT is three base64url parts; anything else is refused before it reaches a header. */
export function isTokenLike(value: string): boolean {
  return value.length <= 8192 && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(value);
}

function asConfig(value: unknown): SyncConsoleConfig {
  if (!value || typeof value !== 'object') return {};
  const { url, token } = value as Record<string, unknown>;
  const config: SyncConsoleConfig = {};
  if (typeof url === 'string') config.url = url;
  if (typeof token === 'string' && isTokenLike(token)) config.token = token;
  return config;
}

function httpUrl(value: string | null | undefined): string | null {
  if (!value) return null;
  try {
    const parsed = new URL(value);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null;
    return parsed.origin + parsed.pathname.replace(/\/+$/, '');
  } catch {
    return null;
  }
}

function safeGet(storage: Pick<Storage, 'getItem'> | undefined, key: string): string | null {
  try {
    return storage?.getItem(key) ?? null;
  } catch {
    return null;
  }
}
