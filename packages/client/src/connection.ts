import { CLOSE_CODES, type ClientFrame } from '@openagents/sync-protocol';
import { type BackoffOptions, backoff } from './backoff';
import type { TokenSource } from './token-source';
import type { ConnectionStatus, SyncErrorEntry } from './types';

/** The slice of the WHATWG WebSocket the client uses (browsers, `ws`, undici all fit). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/**
 * What the client needs to know about the network: whether the device says it is online, and
 * its `online`/`offline` events. In a browser, `navigator.onLine` and `window`'s events.
 */
export interface NetworkMonitor {
  readonly onLine: boolean;
  addEventListener(type: 'online' | 'offline', listener: () => void): void;
  removeEventListener(type: 'online' | 'offline', listener: () => void): void;
}

/** The browser's network monitor, or undefined outside a browser (Node, workers without events). */
export function browserNetwork(): NetworkMonitor | undefined {
  const g = globalThis as {
    navigator?: { onLine?: boolean };
    addEventListener?: (type: string, listener: () => void) => void;
    removeEventListener?: (type: string, listener: () => void) => void;
  };
  const add = g.addEventListener;
  const remove = g.removeEventListener;
  if (typeof add !== 'function' || typeof remove !== 'function') return undefined;
  return {
    get onLine() {
      return g.navigator?.onLine !== false;
    },
    addEventListener: (type, listener) => add.call(g, type, listener),
    removeEventListener: (type, listener) => remove.call(g, type, listener),
  };
}

export interface ConnectionHooks {
  opened(): void;
  message(text: string): void;
  /** The socket that was open is gone (not called for attempts that never opened). */
  dropped(): void;
  status(status: ConnectionStatus): void;
  report(error: Omit<SyncErrorEntry, 'at'>): void;
}

export interface ConnectionOptions {
  /** ws(s)://…/sync, without the token. */
  url: string;
  WebSocket: WebSocketConstructor;
  tokens: TokenSource;
  backoff: Partial<BackoffOptions>;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  /** Upper bound of the random wait before reconnecting after a drain (close 1012). */
  drainJitterMs: number;
  /** Failed upgrades in a row after which the token is refreshed (a 401 looks like a plain close). */
  refreshAfterFailures: number;
  /** Network state and events (offline: wait for `online` instead of retrying). */
  network: NetworkMonitor | undefined;
  hooks: ConnectionHooks;
}

const OPEN = 1;

/**
 * One WebSocket, kept alive: opens it with the current token, pings it, notices when it dies and
 * reopens it after a backoff chosen by why it closed.
 *
 * | close                       | next step                                                   |
 * | --------------------------- | ----------------------------------------------------------- |
 * | 1012 (node draining)        | reconnect after a uniform wait in [0, drainJitterMs)         |
 * | 1013 (slow consumer)        | reconnect after backoff; scopes resume from their cursors    |
 * | 1008 (policy: token)        | refresh the token through getToken, then reconnect          |

 * | 1009 (frame too big)        | report, reconnect after backoff                              |
 * | never opened (e.g. 401)     | backoff; after `refreshAfterFailures` in a row, refresh token |
 * | anything else, ping timeout | backoff, growing per failed attempt                          |
 *
 * The attempt counter resets once a server frame arrives on a new socket, not at `open`: a
 * server that accepts and immediately closes must not turn into a tight loop.
 *
 * While a socket is open its token is refreshed `refreshMarginMs` before it expires and sent as
 * an `auth` frame, so a long-lived connection is not closed (1008) at the old token's `exp`.
 */
export class Connection {
  #options: ConnectionOptions;
  #ws: WebSocketLike | undefined;
  #status: ConnectionStatus = 'idle';
  #wanted = false;
  #closed = false;
  #attempt = 0;
  #failedUpgrades = 0;
  #refreshToken = false;
  #everOpened = false;
  /** True while a token is being fetched for the next socket (so a second connect() waits). */
  #opening = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: ReturnType<typeof setTimeout> | undefined;
  #onlineListener: (() => void) | undefined;
  #tokenTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: ConnectionOptions) {
    this.#options = options;
    // A refreshed token goes to the open socket as an `auth` frame: the connection keeps its
    // subscriptions instead of being closed (1008) at the old token's expiry and reconnecting.
    options.tokens.onRefresh((token) => {
      if (this.send({ type: 'auth', token })) this.#armTokenRefresh();
    });
  }

  get status(): ConnectionStatus {
    return this.#status;
  }

  /** Starts (or keeps) connecting. */
  connect(): void {
    if (this.#closed) return;
    this.#wanted = true;
    if (this.#ws || this.#opening || this.#retryTimer || this.#onlineListener) return;
    void this.#open();
  }

  /** Closes the socket and stops reconnecting until `connect()`. */
  disconnect(): void {
    this.#wanted = false;
    this.#teardown(CLOSE_CODES.normal, 'client disconnect');
    this.#setStatus(this.#closed ? 'closed' : 'idle');
  }

  /** Terminal: like disconnect, and connect() no longer works. */
  close(): void {
    this.#closed = true;
    this.disconnect();
  }

  /** Skips the current backoff wait (e.g. the network just came back). */
  retryNow(): void {
    if (!this.#wanted || this.#ws || !this.#retryTimer) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    void this.#open();
  }

  /**
   * The device says the network is gone (the browser's `offline` event): whatever the socket
   * looks like, it cannot carry anything now. Drop it, say `offline` at once — rather than `open`
   * until a ping times out — and wait for `online`.
   */
  networkLost(): void {
    if (!this.#wanted || this.#closed || this.#onlineListener) return;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const ws = this.#ws;
    const wasOpen = ws?.readyState === OPEN;
    this.#detach();
    if (ws) {
      try {
        ws.close(CLOSE_CODES.networkLost, 'network offline');
      } catch {}
    }
    if (wasOpen) this.#options.hooks.dropped();
    this.#waitForOnline();
  }

  /** Sends a frame if the socket is open; returns whether it went out. */
  send(frame: ClientFrame): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  async #open(): Promise<void> {
    this.#setStatus(this.#everOpened || this.#attempt > 0 ? 'reconnecting' : 'connecting');
    const refresh = this.#refreshToken;
    this.#refreshToken = false;
    this.#opening = true;
    let token: string | undefined;
    try {
      token = refresh ? await this.#options.tokens.refresh() : await this.#options.tokens.get();
    } finally {
      this.#opening = false;
    }
    if (!this.#wanted || this.#ws || this.#retryTimer || this.#onlineListener) return;
    const url = token ? `${this.#options.url}?token=${encodeURIComponent(token)}` : this.#options.url;
    let ws: WebSocketLike;
    try {
      ws = new this.#options.WebSocket(url);
    } catch (error) {
      this.#options.hooks.report({ kind: 'connection', code: 'socket_error', message: String(error) });
      this.#scheduleReconnect(this.#nextBackoff());
      return;
    }
    this.#ws = ws;
    let opened = false;
    let heard = false;
    ws.onopen = () => {
      opened = true;
      this.#everOpened = true;
      this.#failedUpgrades = 0;
      this.#setStatus('open');
      this.#startPing();
      this.#armTokenRefresh();
      this.#options.hooks.opened();
    };
    ws.onmessage = (ev) => {
      if (this.#pongTimer) {
        clearTimeout(this.#pongTimer);
        this.#pongTimer = undefined;
      }
      if (!heard) {
        heard = true;
        this.#attempt = 0;
      }
      if (typeof ev.data === 'string') this.#options.hooks.message(ev.data);
      else
        this.#options.hooks.report({
          kind: 'frame',
          code: 'binary_frame',
          message: 'ignored a non-text frame',
        });
    };
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#afterClose(ev.code, ev.reason, opened);
    };
  }

  #afterClose(code: number, reason: string, opened: boolean): void {
    this.#detach();
    if (opened) this.#options.hooks.dropped();
    if (!this.#wanted) return;
    let delay: number;
    switch (code) {
      case CLOSE_CODES.serviceRestart:
        delay = backoff(0, { ...this.#options.backoff, initialDelayMs: this.#options.drainJitterMs });
        break;
      case CLOSE_CODES.policyViolation:
        this.#refreshToken = true;
        delay = this.#nextBackoff();
        break;
      case CLOSE_CODES.messageTooBig:
        this.#options.hooks.report({
          kind: 'connection',
          code: 'message_too_big',
          message: reason || 'close 1009',
        });
        delay = this.#nextBackoff();
        break;
      default:
        if (!opened && ++this.#failedUpgrades >= this.#options.refreshAfterFailures) {
          this.#failedUpgrades = 0;
          this.#refreshToken = true;
        }
        delay = this.#nextBackoff();
    }
    if (
      code !== CLOSE_CODES.serviceRestart &&
      code !== CLOSE_CODES.tryAgainLater &&
      code !== CLOSE_CODES.pingTimeout
    ) {
      this.#options.hooks.report({
        kind: 'connection',
        code: opened ? `close_${code}` : 'connect_failed',
        message: reason || (opened ? `socket closed (${code})` : 'could not open the socket'),
      });
    }
    this.#scheduleReconnect(delay);
  }

  #nextBackoff(): number {
    return backoff(this.#attempt++, this.#options.backoff);
  }

  #scheduleReconnect(delay: number): void {
    if (this.#options.network?.onLine === false) {
      this.#waitForOnline();
      return;
    }
    this.#setStatus('reconnecting');
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#wanted && !this.#ws) void this.#open();
    }, delay);
  }

  #waitForOnline(): void {
    const network = this.#options.network;
    if (!network) {
      this.#scheduleReconnect(this.#nextBackoff());
      return;
    }
    this.#setStatus('offline');
    this.#onlineListener = () => {
      this.#clearOnline();
      if (this.#wanted && !this.#ws) void this.#open();
    };
    network.addEventListener('online', this.#onlineListener);
  }

  #startPing(): void {
    this.#stopPing();
    this.#pingTimer = setInterval(() => {
      if (!this.send({ type: 'ping', t: Date.now() })) return;
      this.#pongTimer ??= setTimeout(() => {
        this.#pongTimer = undefined;
        // No frame at all since the ping: the connection is dead even if TCP has not noticed.
        this.#options.hooks.report({ kind: 'connection', code: 'ping_timeout', message: 'no pong in time' });
        const ws = this.#ws;
        if (!ws) return;
        this.#detach();
        try {
          ws.close(CLOSE_CODES.pingTimeout, 'ping timeout');
        } catch {}
        this.#afterCloseFromTimeout();
      }, this.#options.pongTimeoutMs);
    }, this.#options.pingIntervalMs);
  }

  #afterCloseFromTimeout(): void {
    this.#options.hooks.dropped();
    if (this.#wanted) this.#scheduleReconnect(this.#nextBackoff());
  }

  /** Refreshes the token shortly before it expires, while the socket is open (see onRefresh). */
  #armTokenRefresh(): void {
    if (this.#tokenTimer) clearTimeout(this.#tokenTimer);
    this.#tokenTimer = undefined;
    const delay = this.#options.tokens.refreshDelay();
    if (delay === undefined) return;
    this.#tokenTimer = setTimeout(() => {
      this.#tokenTimer = undefined;
      // A new token reaches the socket through onRefresh; an unchanged one (getToken failed)
      // is left to expire: the server then closes with 1008 and the reconnect refreshes again.
      if (this.#ws?.readyState === OPEN) void this.#options.tokens.refresh();
    }, delay);
  }

  #stopPing(): void {
    if (this.#tokenTimer) clearTimeout(this.#tokenTimer);
    this.#tokenTimer = undefined;
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    if (this.#pongTimer) clearTimeout(this.#pongTimer);
    this.#pingTimer = undefined;
    this.#pongTimer = undefined;
  }

  /** Forgets the current socket without reacting to its close event. */
  #detach(): void {
    this.#stopPing();
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws) {
      ws.onopen = null;
      ws.onmessage = null;
      ws.onclose = null;
    }
  }

  #teardown(code: number, reason: string): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#clearOnline();
    const ws = this.#ws;
    const wasOpen = ws?.readyState === OPEN;
    this.#detach();
    if (ws) {
      try {
        ws.close(code, reason);
      } catch {}
    }
    if (wasOpen) this.#options.hooks.dropped();
  }

  #clearOnline(): void {
    if (!this.#onlineListener) return;
    this.#options.network?.removeEventListener('online', this.#onlineListener);
    this.#onlineListener = undefined;
  }

  #setStatus(status: ConnectionStatus): void {
    if (this.#status === status) return;
    this.#status = status;
    this.#options.hooks.status(status);
  }
}
