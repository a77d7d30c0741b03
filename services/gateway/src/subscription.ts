import { type BootstrapResponse, backoff, type ServerFrame, type SyncEvent } from '@openagents/sync-protocol';
import { AppError, type Logger, toAppError } from '@openagents/sync-server-kit';
import type { LogReads } from './log-reads';
import type { GatewayMetrics } from './metrics';
import type { ScopeRegistry } from './scope-registry';
import type { ScopeStream, StreamSubscriber } from './scope-stream';

/** What a subscription needs from its connection. */
export interface SubscriberChannel {
  /**
   * Writes a frame; false when the connection is gone (or was just closed as too slow).
   * `shareKey`: an object that identifies the frame's content across connections (a shared
   * snapshot or delta page), so a herd of clients receiving the same thing costs one serialisation.
   */
  send(frame: ServerFrame, shareKey?: object): boolean;
  /**
   * Resolves once the connection's send buffer has room for another bootstrap page (at once when
   * it has), or once the connection is gone: a paged bootstrap never runs ahead of its reader.
   */
  writable(): Promise<void>;
  /** Starts receiving the scope's fan-out (uWS topic). */
  joinTopic(scope: string): void;
  leaveTopic(scope: string): void;
  /** The subscription closed (unsubscribe, replaced, forbidden, connection gone): forget it. */
  ended?(subscription: Subscription): void;
}

export interface SubscriptionDeps {
  streams: ScopeRegistry;
  reads: LogReads;
  metrics: GatewayMetrics;
  log: Logger;
}

type State = 'catching_up' | 'live' | 'closed';

/** Attempts again when the delta source is unavailable during a catch-up, with jittered delays. */
const CATCH_UP_RETRIES = 5;
/** Bounds of those delays (full jitter): 500 ms doubling to 8 s, about 7.7 s in all on average. */
const CATCH_UP_BACKOFF = { initialDelayMs: 500, maxDelayMs: 8000 } as const;
/** Live events a catching-up subscription keeps at most before it reads them from the log instead. */
const MAX_BUFFERED_EVENTS = 10_000;
/** How long a subscriber ahead of its stream waits before asking the stream to fill again. */
const CONVERGE_WAIT_MS = 1000;

/**
 * One connection's subscription to one scope.
 *
 * The subscribe flow closes the race between "read the log" and "receive live events" (contract
 * section 7): (a) join the scope's stream first, so every event the stream emits from now on is
 * buffered here; (b) catch up from the log: a bootstrap at L when there is no cursor (or the
 * cursor was pruned: `reset: true`), else delta pages from the cursor; (c) merge the buffer:
 * drop ids <= cursor, read any gap from the log, and switch to live in the same synchronous step
 * that sees `cursor === stream.lastId`, so no event can slip between the last buffered one and
 * the first fanned-out one. After a bootstrap at L the first event sent is therefore L+1.
 */
export class Subscription implements StreamSubscriber {
  readonly scope: string;
  #state: State = 'catching_up';
  #buffer: SyncEvent[] = [];
  /** Id of the last event this client has been sent (or had): null until a bootstrap is sent. */
  #cursor: number | null = null;
  /** Bumped by `restart` and `close`; a flow whose generation is gone stops at its next step. */
  #generation = 0;
  #wake: (() => void) | undefined;
  #stream: ScopeStream | undefined;
  readonly #channel: SubscriberChannel;
  readonly #deps: SubscriptionDeps;

  constructor(scope: string, channel: SubscriberChannel, deps: SubscriptionDeps) {
    this.scope = scope;
    this.#channel = channel;
    this.#deps = deps;
  }

  get isLive(): boolean {
    return this.#state === 'live';
  }

  get isClosed(): boolean {
    return this.#state === 'closed';
  }

  bufferEvents(events: readonly SyncEvent[]): void {
    if (this.#state !== 'catching_up') return;
    if (this.#buffer.length + events.length > MAX_BUFFERED_EVENTS) {
      // A long catch-up on a busy scope: drop the buffer rather than grow it; the merge step
      // sees the stream ahead of the cursor and reads the difference from the log instead.
      this.#buffer = [];
    } else {
      for (const e of events) this.#buffer.push(e);
    }
    this.#wakeUp();
  }

  restart(fromId: number): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'live') this.#channel.leaveTopic(this.scope);
    this.#state = 'catching_up';
    this.#buffer = [];
    this.#cursor = fromId;
    this.#generation++;
    this.#wakeUp();
    void this.#run(this.#generation);
  }

  /** Runs the subscribe flow from `lastSyncId` (0 or undefined: bootstrap). */
  start(lastSyncId: number | undefined): Promise<void> {
    this.#cursor = lastSyncId ? lastSyncId : null;
    return this.#run(this.#generation);
  }

  /** Safe at any point of the flow: the flow notices at its next step and stops. */
  close(): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'live') this.#channel.leaveTopic(this.scope);
    this.#state = 'closed';
    this.#generation++;
    this.#buffer = [];
    this.#wakeUp();
    this.#deps.streams.leave(this.scope, this);
    this.#channel.ended?.(this);
  }

  async #run(generation: number): Promise<void> {
    const gone = () => generation !== this.#generation;
    try {
      this.#stream = await this.#deps.streams.join(this.scope, this);
      if (gone()) return;
      this.#deps.log.debug({ scope: this.scope, cursor: this.#cursor }, 'subscription catching up');
      await this.#withRetry(gone, () => this.#catchUp(gone));
      if (gone()) return;
      await this.#converge(gone);
    } catch (err) {
      if (gone()) return;
      const error = toAppError(err);
      this.#deps.log.warn({ scope: this.scope, err: error.message }, 'subscribe failed');
      this.#deps.metrics.resumes.inc({ outcome: 'error' });
      this.#channel.send({
        type: 'error',
        code: 'internal',
        message: `Subscribing to ${this.scope} failed (${error.code}); subscribe again with backoff`,
        scope: this.scope,
      });
      this.close();
    }
  }

  /**
   * Step (b): brings the client to some cursor from the log. The first catch-up may be served
   * from the shared resume cache (`initial`); later ones, which fill gaps, read fresh.
   */
  async #catchUp(gone: () => boolean, initial = true): Promise<void> {
    const { reads, metrics } = this.#deps;
    const from = this.#cursor;
    if (from !== null) {
      try {
        await this.#replay(gone, (c) => (initial ? reads.resume(this.scope, c) : reads.fresh(this.scope, c)));
        if (!gone() && initial) metrics.resumes.inc({ outcome: 'delta' });
        return;
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'reset_required')) throw err;
      }
    }
    const reset = from !== null;
    const lastSyncId = await this.#bootstrap(gone, reset);
    if (lastSyncId === undefined) return;
    this.#cursor = lastSyncId;
    metrics.resumes.inc({ outcome: reset ? 'reset' : 'bootstrap' });
  }

  /**
   * Sends the scope's bootstrap, page by page; resolves with its lastSyncId, or undefined when the
   * subscription went away meanwhile.
   *
   * A paged bootstrap (contract v1.1): one `bootstrap` frame per page, `more: true` on all but
   * the last, the next page read only once the socket drained the previous one, so the send
   * buffer holds about a page whatever the scope's size. Live events arriving meanwhile are
   * buffered (bufferEvents) and merged by `converge` from the bootstrap's lastSyncId L, which
   * every page carries: the client resumes from L after the last page, so the first event it
   * gets next is L+1 (docs/delta.md has why pages plus events after L are the state).
   */
  async #bootstrap(gone: () => boolean, reset: boolean): Promise<number | undefined> {
    const { reads, metrics } = this.#deps;
    let cursor: string | undefined;
    let lastSyncId: number | undefined;
    for (;;) {
      let page: BootstrapResponse;
      try {
        // Dropped unread if it is still waiting in the node's line once this flow is gone.
        page = await reads.bootstrap(this.scope, cursor, () => !gone());
      } catch (err) {
        // The bootstrap outlived the retained log after L: start it over from its first page.
        // The client drops pages of a bootstrap whose lastSyncId changes (replica.ts).
        if (cursor !== undefined && err instanceof AppError && err.code === 'reset_required') {
          cursor = undefined;
          lastSyncId = undefined;
          continue;
        }
        throw err;
      }
      if (gone()) return undefined;
      if (lastSyncId !== undefined && page.lastSyncId !== lastSyncId) {
        throw new AppError('internal', `bootstrap pages of ${this.scope} disagree on lastSyncId`);
      }
      lastSyncId = page.lastSyncId;
      cursor = page.nextCursor;
      this.#channel.send(
        {
          type: 'bootstrap',
          scope: this.scope,
          models: page.models,
          lastSyncId: page.lastSyncId,
          ...(reset ? { reset: true as const } : {}),
          ...(cursor !== undefined ? { more: true as const } : {}),
        },
        page,
      );
      metrics.bootstrapPages.inc();
      if (cursor === undefined) return lastSyncId;
      await this.#channel.writable();
      if (gone()) return undefined;
    }
  }

  /** Sends delta pages from the cursor until the source has no more. */
  async #replay(
    gone: () => boolean,
    read: (cursor: number) => Promise<{ events: SyncEvent[]; hasMore: boolean }>,
  ): Promise<void> {
    for (;;) {
      const cursor = this.#cursor!;
      const page = await read(cursor);
      if (gone()) return;
      // The page itself when it starts right after the cursor (the usual case): shared pages
      // (resume cache, single-flight) then share their serialisation too.
      const events =
        page.events[0]?.id === cursor + 1 ? page.events : page.events.filter((e) => e.id > cursor);
      if (events.length > 0) {
        if (events[0]!.id !== cursor + 1 || !isContiguous(events)) {
          throw new AppError('internal', `delta source returned a non-contiguous page for ${this.scope}`);
        }
        this.#sendSync(events, events);
      }
      if (!page.hasMore || events.length === 0) return;
    }
  }

  /** Step (c): merges what the stream buffered and goes live. */
  async #converge(gone: () => boolean): Promise<void> {
    for (;;) {
      const stream = this.#stream!;
      if (gone()) return;
      let cursor = this.#cursor!;
      stream.anchor(cursor);
      const ready: SyncEvent[] = [];
      let gap = false;
      let i = 0;
      for (; i < this.#buffer.length; i++) {
        const e = this.#buffer[i]!;
        if (e.id <= cursor) continue;
        if (e.id !== cursor + 1) {
          gap = true;
          break;
        }
        ready.push(e);
        cursor = e.id;
      }
      this.#buffer = gap ? this.#buffer.slice(i) : [];
      if (ready.length > 0) this.#sendSync(ready);
      const streamAt = stream.lastId;
      if (!gap && streamAt === cursor) {
        // Synchronously with the check above: from here on the stream's fan-out reaches us.
        this.#state = 'live';
        this.#channel.joinTopic(this.scope);
        this.#channel.send({ type: 'subscribed', scope: this.scope, lastSyncId: cursor });
        this.#deps.log.debug({ scope: this.scope, cursor }, 'subscription live');
        return;
      }
      this.#deps.log.debug({ scope: this.scope, cursor, streamAt, gap }, 'subscription converging');
      if (gap || streamAt === null || streamAt > cursor) {
        await this.#withRetry(gone, () => this.#catchUp(gone, false));
        if (this.#cursor === cursor && !gone()) {
          // The log had nothing after the cursor: wait for the stream (or the buffer) to move.
          await this.#waitForEvents();
        }
        continue;
      }
      // The log showed us events the stream has not emitted yet: let the stream catch up.
      stream.fill('gap');
      await this.#waitForEvents();
    }
  }

  #sendSync(events: SyncEvent[], shareKey?: object): void {
    const latestSyncId = events[events.length - 1]!.id;
    this.#cursor = latestSyncId;
    this.#channel.send({ type: 'sync', scope: this.scope, events, latestSyncId }, shareKey);
  }

  #waitForEvents(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, CONVERGE_WAIT_MS);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  #wakeUp(): void {
    this.#wake?.();
  }

  /** Retries a step while the delta source is unavailable; other errors go straight up. */
  async #withRetry(gone: () => boolean, step: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await step();
      } catch (err) {
        const error = toAppError(err);
        if (error.code !== 'unavailable' || attempt >= CATCH_UP_RETRIES) throw error;
        await new Promise((r) => setTimeout(r, backoff(attempt, CATCH_UP_BACKOFF)));
        if (gone()) return;
      }
    }
  }
}

function isContiguous(events: readonly SyncEvent[]): boolean {
  for (let i = 1; i < events.length; i++) if (events[i]!.id !== events[i - 1]!.id + 1) return false;
  return true;
}
