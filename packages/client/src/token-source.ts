/** Seconds-since-epoch `exp` claim of a JWT, in ms; undefined when absent or unreadable. */
export function tokenExpiry(token: string): number | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = JSON.parse(atob(base64.padEnd(base64.length + ((4 - (base64.length % 4)) % 4), '=')));
    return typeof json?.exp === 'number' && Number.isFinite(json.exp) ? json.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export interface TokenSourceOptions {
  token?: string;
  getToken?: () => Promise<string>;
  /** Refresh through getToken when the token expires within this many ms. */
  refreshMarginMs?: number;
  now?: () => number;
  onError?: (error: unknown) => void;
}

/**
 * The bearer token for HTTP calls and the WebSocket upgrade. Reads the token's `exp` without
 * verifying it (only the server can) to refresh shortly before it runs out; concurrent refreshes
 * share one getToken call.
 */
export class TokenSource {
  #token: string | undefined;
  #getToken: (() => Promise<string>) | undefined;
  #marginMs: number;
  #now: () => number;
  #onError: (error: unknown) => void;
  #refreshing: Promise<string | undefined> | undefined;
  readonly #listeners = new Set<(token: string) => void>();

  constructor(options: TokenSourceOptions) {
    this.#token = options.token;
    this.#getToken = options.getToken;
    this.#marginMs = options.refreshMarginMs ?? 30_000;
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
  }

  /** The current token, refreshed first when missing or about to expire. */
  async get(): Promise<string | undefined> {
    if (!this.#getToken) return this.#token;
    if (this.#token === undefined) return this.refresh();
    const exp = tokenExpiry(this.#token);
    if (exp !== undefined && exp - this.#now() < this.#marginMs) return this.refresh();
    return this.#token;
  }

  /** Asks getToken for a new token (e.g. after a 401); keeps the old one if that fails. */
  refresh(): Promise<string | undefined> {
    const getToken = this.#getToken;
    if (!getToken) return Promise.resolve(this.#token);
    this.#refreshing ??= (async () => {
      try {
        const previous = this.#token;
        this.#token = await getToken();
        if (this.#token !== previous) for (const listener of [...this.#listeners]) listener(this.#token);
      } catch (error) {
        this.#onError(error);
      } finally {
        this.#refreshing = undefined;
      }
      return this.#token;
    })();
    return this.#refreshing;
  }

  /**
   * Calls `listener` with every new token a refresh brings (e.g. so an open socket can switch to
   * it with an `auth` frame). Returns the function that removes the listener.
   */
  onRefresh(listener: (token: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Milliseconds until the current token should be refreshed (its `exp` minus the margin, at
   * least 0), or undefined when it cannot be (no getToken, or no readable `exp`).
   */
  refreshDelay(): number | undefined {
    if (!this.#getToken || this.#token === undefined) return undefined;
    const exp = tokenExpiry(this.#token);
    return exp === undefined ? undefined : Math.max(0, exp - this.#marginMs - this.#now());
  }
}
