import type { SyncEvent } from '@openagents/sync-protocol';

/** What travels on a scope's channel: committed events of one scope, ascending by id. */
export interface BusMessage {
  scope: string;
  events: SyncEvent[];
}

/**
 * Receives one message of a scope. `raw` is the JSON text the message was parsed from, when it
 * came over the wire (the Redis buses): a subscriber that forwards the events as JSON can reuse
 * their text instead of serialising the parsed objects again. It is what anyone who can publish
 * sent, so it is only as trustworthy as the checks the subscriber makes on `message`.
 */
export type BusHandler = (message: BusMessage, raw?: string) => void;
export type BusStatus = 'up' | 'down';

/**
 * Publish/subscribe of committed events, one channel per scope. The log in Postgres is the truth:
 * the bus is a fast path that may drop, duplicate or reorder messages, and subscribers must
 * tolerate all three (the gateway checks ids and fills gaps from the log).
 */
export interface Bus {
  readonly kind: 'redis' | 'memory';
  /** Publishes events of one scope. Rejects when the bus is unreachable; it never waits for a reconnect. */
  publish(message: BusMessage): Promise<void>;
  /**
   * Adds a handler for a scope's channel; the underlying channel is joined on the first handler and
   * left after the last. Resolves once the channel subscription is confirmed, so anything published
   * afterwards reaches the handler. Returns the function that removes this handler.
   */
  subscribe(scope: string, handler: BusHandler): Promise<() => Promise<void>>;
  /**
   * Called with 'down' when the subscription connection is lost and 'up' when it is back with every
   * channel re-joined; messages published in between were missed and must be recovered from the log.
   */
  onStatus(listener: (status: BusStatus) => void): () => void;
  /** True while publishing and subscribing work. */
  isHealthy(): boolean;
  /** Number of scopes with at least one handler. */
  activeScopes(): number;
  close(): Promise<void>;
}

/** Handler bookkeeping shared by the implementations: handlers per scope, status listeners. */
export class HandlerTable {
  readonly #handlers = new Map<string, Set<BusHandler>>();
  readonly #statusListeners = new Set<(status: BusStatus) => void>();

  /** Adds a handler; true when it is the scope's first (the channel must be joined). */
  add(scope: string, handler: BusHandler): boolean {
    let set = this.#handlers.get(scope);
    const first = set === undefined;
    if (!set) {
      set = new Set();
      this.#handlers.set(scope, set);
    }
    set.add(handler);
    return first;
  }

  /** Removes a handler; true when it was the scope's last (the channel can be left). */
  remove(scope: string, handler: BusHandler): boolean {
    const set = this.#handlers.get(scope);
    if (!set?.delete(handler)) return false;
    if (set.size > 0) return false;
    this.#handlers.delete(scope);
    return true;
  }

  /** Every scope with at least one handler. */
  scopes(): string[] {
    return [...this.#handlers.keys()];
  }

  has(scope: string): boolean {
    return this.#handlers.has(scope);
  }

  /**
   * Hands a received message to its scope's handlers. It runs inside the Redis client's event
   * emitter (or a microtask of the memory bus), where a throw would end the process: a payload
   * that is not an object with a string scope (JSON `null`, a number, anything anyone with
   * access to Redis publishes) is dropped, and a throwing handler does not stop the others.
   * What the events inside must look like is the subscriber's business (the gateway checks).
   */
  dispatch(message: BusMessage, raw?: string): void {
    if (typeof message !== 'object' || message === null || typeof message.scope !== 'string') return;
    const set = this.#handlers.get(message.scope);
    if (!set) return;
    for (const handler of set) {
      try {
        handler(message, raw);
      } catch {
        // A handler's own failure is its own to report (the gateway's are guarded and counted).
      }
    }
  }

  get size(): number {
    return this.#handlers.size;
  }

  onStatus(listener: (status: BusStatus) => void): () => void {
    this.#statusListeners.add(listener);
    return () => this.#statusListeners.delete(listener);
  }

  emitStatus(status: BusStatus): void {
    for (const listener of this.#statusListeners) listener(status);
  }
}
