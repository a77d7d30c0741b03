import type { Principal } from '@openagents/sync-server-kit';
import type { SubscriberChannel, Subscription } from './subscription';
import type { TokenBucket } from './token-bucket';
import type { WebSocket } from './uws';

/**
 * Per-connection state, held by uWS as the socket's user data (never fields on the socket). It
 * is the connection's frame-rate token bucket too (`tokens`, `updatedAt`, `refusedInARow`):
 * inline, one object less per connection.
 */
export interface UserData extends TokenBucket {
  id: number;
  principal: Principal;
  /** Client address (socket peer, or the trusted proxy header): the key of the per-IP limits. */
  ip: string;
  /** Bumped by every `auth` frame; a verification that finishes after a newer one is ignored. */
  authGeneration: number;
  subscriptions: Map<string, Subscription>;
  /**
   * Bytes of catch-up frames (bootstrap, replayed pages) sent since the send buffer was last
   * below the limit. A large snapshot legitimately fills the buffer; the slow-consumer limit
   * applies on top of it, so only live traffic the client fails to read counts against it.
   */
  catchUpBytes: number;
  /** Set first thing in the close handler: the socket must not be touched afterwards. */
  closed: boolean;
  /** When the upgrade was accepted (ms since epoch), for the connection-lifetime histogram. */
  openedAt: number;
  /**
   * Paged bootstraps waiting for the send buffer to drain before their next page (or the close);
   * undefined while none waits, which is almost always.
   */
  writableWaiters: (() => void)[] | undefined;
  channel: SubscriberChannel | undefined;
}

/** A `/sync` socket of this node. */
export type Socket = WebSocket<UserData>;

/** The uWS topic a scope's live fan-out is published on. */
export const topicOf = (scope: string): string => `scope:${scope}`;

/**
 * The node's open sockets and, per scope, the sockets receiving its live fan-out.
 *
 * `isOpen(ws)` is true exactly while the socket's close handler has not run: touching a closed
 * uWS socket (even `getUserData`) throws, so every path that may hold a stale socket (promise
 * chains, timers, the drain schedule) asks here first.
 */
export class ConnectionRegistry {
  readonly #open = new Set<Socket>();
  /** Live sockets of each scope: the topic's subscribers, for counts and backpressure checks. */
  readonly #live = new Map<string, Set<Socket>>();
  #nextId = 1;

  /** A fresh connection id (for logs; never a metric label). */
  newId(): number {
    return this.#nextId++;
  }

  get size(): number {
    return this.#open.size;
  }

  isOpen(ws: Socket): boolean {
    return this.#open.has(ws);
  }

  opened(ws: Socket): void {
    this.#open.add(ws);
  }

  closed(ws: Socket): void {
    this.#open.delete(ws);
  }

  /** The open sockets now (a copy: closing them while iterating is safe). */
  list(): Socket[] {
    return [...this.#open];
  }

  /** Send-buffer sizes of the open sockets, for the scrape-time histogram. */
  bufferedAmounts(): number[] {
    return [...this.#open].map((ws) => ws.getBufferedAmount());
  }

  /** The socket starts receiving the scope's fan-out. */
  joinTopic(ws: Socket, scope: string): void {
    ws.subscribe(topicOf(scope));
    let set = this.#live.get(scope);
    if (!set) {
      set = new Set();
      this.#live.set(scope, set);
    }
    set.add(ws);
  }

  /** `socketOpen`: false once the close handler ran (uWS already dropped its topics). */
  leaveTopic(ws: Socket, scope: string, socketOpen: boolean): void {
    const set = this.#live.get(scope);
    if (set?.delete(ws) && set.size === 0) this.#live.delete(scope);
    if (socketOpen) ws.unsubscribe(topicOf(scope));
  }

  /** The sockets receiving the scope's fan-out on this node. */
  live(scope: string): ReadonlySet<Socket> | undefined {
    return this.#live.get(scope);
  }
}
