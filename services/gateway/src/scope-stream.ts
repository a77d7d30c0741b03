import { backoff, type SyncEvent } from '@openagents/sync-protocol';
import type { Bus, BusMessage, Logger } from '@openagents/sync-server-kit';
import { busMessageProblem, keepEventJson, singleEventJson } from './bus-message';
import type { LogReads } from './log-reads';
import type { GatewayMetrics } from './metrics';

/** Longest wait between gap fills while the log keeps failing to answer. */
const MAX_HOLD_BACKOFF_MS = 5000;

/** What a stream needs from a subscriber (implemented by `Subscription`). */
export interface StreamSubscriber {
  /** True once the subscriber receives the stream through the uWS topic (fan-out). */
  readonly isLive: boolean;
  /** Events emitted while the subscriber is still catching up: it buffers them. */
  bufferEvents(events: readonly SyncEvent[]): void;
  /** The stream lost its position (its cursor was pruned from the log): start over. */
  restart(fromId: number): void;
}

export type GapFillReason = 'gap' | 'head_check' | 'reconnect';

export interface ScopeStreamDeps {
  bus: Bus;
  reads: LogReads;
  metrics: GatewayMetrics;
  log: Logger;
  holdMs: number;
  /** Writes one ordered batch to every live subscriber of the scope (serialised once). */
  fanOut(stream: ScopeStream, events: readonly SyncEvent[]): void;
}

/**
 * One ordered stream of a scope on this node, shared by every local subscriber of the scope.
 *
 * The bus may drop, duplicate or reorder messages; this is where that is undone. `lastId` is the
 * id of the last event the stream has emitted, so every live subscriber has received exactly
 * the events up to `lastId`, in order. A bus event with id `lastId + 1` is emitted; one with an
 * id <= `lastId` (or already held) is a duplicate and dropped; one further ahead is held in
 * `#pending` for up to `holdMs`, since the missing ones are usually just behind it. When the hold
 * expires the gap is read from the log (one fill in flight per scope), and whatever the fill
 * returns goes through the same path as bus events, so ids still leave in order, exactly once.
 *
 * A stream starts unanchored (`lastId` null): events arriving then are held. The first
 * subscriber to finish its catch-up anchors it at its cursor; head checks and bus reconnects
 * fill an anchored stream from the log when it is behind.
 */
export class ScopeStream {
  readonly scope: string;
  readonly #subscribers = new Set<StreamSubscriber>();
  #lastId: number | null = null;
  readonly #pending = new Map<number, SyncEvent>();
  readonly #deps: ScopeStreamDeps;
  #flushScheduled = false;
  #holdTimer: NodeJS.Timeout | undefined;
  #filling = false;
  #fillAgain: GapFillReason | null = null;
  #closed = false;
  /** Fills that failed in a row: the hold before the next one backs off while the log is unreachable. */
  #failedFills = 0;
  /** How a bus message of this scope starts when it is laid out as JSON.stringify does (see `receive`). */
  readonly #rawHead: string;
  /** Settles when the bus channel is joined (resolves) or joining failed (rejects). */
  readonly #joined: Promise<void>;
  #leaveBus: (() => Promise<void>) | undefined;

  /**
   * Joins the scope's bus channel at once; `onJoinFailed` runs (before `ready` rejects) when the
   * bus refuses the join, so the owner can forget the stream.
   */
  constructor(scope: string, deps: ScopeStreamDeps, onJoinFailed?: (stream: ScopeStream) => void) {
    this.scope = scope;
    this.#deps = deps;
    this.#rawHead = `{"scope":${JSON.stringify(scope)},"events":[`;
    this.#joined = deps.bus.subscribe(scope, this.receive).then(
      (leave) => {
        this.#leaveBus = leave;
      },
      (err) => {
        onJoinFailed?.(this);
        throw err;
      },
    );
    this.#joined.catch(() => {});
  }

  /** Resolves when the bus channel is joined; rejects when joining failed. */
  get ready(): Promise<void> {
    return this.#joined;
  }

  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  addSubscriber(subscriber: StreamSubscriber): void {
    this.#subscribers.add(subscriber);
  }

  /** False when `subscriber` was not one. */
  removeSubscriber(subscriber: StreamSubscriber): boolean {
    return this.#subscribers.delete(subscriber);
  }

  /** Id of the last event emitted to subscribers, or null before the stream is anchored. */
  get lastId(): number | null {
    return this.#lastId;
  }

  get liveCount(): number {
    let n = 0;
    for (const s of this.#subscribers) if (s.isLive) n++;
    return n;
  }

  /**
   * Bus handler: every message for the scope lands here. It runs inside the bus (ioredis' event
   * emitter, the in-process bus's microtask), where a throw would end the process: a malformed
   * message is dropped and counted, and anything unexpected is caught and logged.
   *
   * `raw`, the text the message was parsed from (Redis buses), lets a one-event message keep its
   * event's JSON, which fan-out then forwards as it came instead of serialising the event again:
   * streaming replies arrive as one small event per message, and this is most of their cost.
   */
  readonly receive = (message: BusMessage, raw?: string): void => {
    try {
      if (this.#closed) return;
      const problem = busMessageProblem(message, this.scope);
      if (problem) {
        this.#deps.metrics.busMessagesDropped.inc({ reason: problem });
        this.#deps.log.warn({ scope: this.scope, problem }, 'dropped a malformed bus message');
        return;
      }
      this.#deps.metrics.tally.busEvents += message.events.length;
      if (raw !== undefined) {
        const json = singleEventJson(message, raw, this.#rawHead);
        if (json !== undefined) keepEventJson(message.events[0]!, json);
      }
      this.#hold(message.events);
      this.#scheduleFlush();
    } catch (err) {
      this.#deps.metrics.handlerErrors.inc({ where: 'bus' });
      this.#deps.log.error({ scope: this.scope, err: (err as Error).message }, 'bus message handler failed');
    }
  };

  /** Sets the position of an unanchored stream (no-op once anchored) and emits what it can. */
  anchor(lastId: number): void {
    if (this.#lastId !== null || this.#closed) return;
    this.#lastId = lastId;
    this.#flush();
  }

  /**
   * Reads the log from `lastId` and emits what it finds: after a hold expired (`gap`), when the
   * head check saw the log ahead (`head_check`), after a bus outage (`reconnect`), or when a
   * subscriber's catch-up got ahead of the stream. One fill per scope at a time; a request while
   * one runs makes it go once more.
   */
  fill(reason: GapFillReason): void {
    if (this.#closed || this.#lastId === null) return;
    if (this.#filling) {
      this.#fillAgain = reason;
      return;
    }
    this.#filling = true;
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    this.#deps.metrics.gapFills.inc({ reason });
    void this.#runFill().finally(() => {
      this.#filling = false;
      const again = this.#fillAgain;
      this.#fillAgain = null;
      if (again && !this.#closed) this.fill(again);
      else this.#armHold();
    });
  }

  /** Stops the stream and leaves its bus channel (once joined); errors are logged, never thrown. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#holdTimer);
    this.#pending.clear();
    this.#joined
      .then(() => this.#leaveBus?.())
      .catch((err) => this.#deps.log.debug({ err: (err as Error).message }, 'leaving bus channel failed'));
  }

  async #runFill(): Promise<void> {
    try {
      for (;;) {
        const from = this.#lastId;
        if (from === null || this.#closed) return;
        const response = await this.#deps.reads.fresh(this.scope, from);
        this.#failedFills = 0;
        if (this.#closed) return;
        this.#hold(response.events);
        this.#flush();
        if (!response.hasMore || this.#lastId === from) return;
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'reset_required') {
        this.#deps.log.warn({ scope: this.scope, lastId: this.#lastId }, 'stream cursor pruned; restarting');
        this.#restartAll();
        return;
      }
      this.#failedFills++;
      this.#deps.log.warn({ scope: this.scope, err: (err as Error).message }, 'gap fill failed');
    }
  }

  /** Every subscriber starts over from where the stream was; the stream waits for a new anchor. */
  #restartAll(): void {
    const from = this.#lastId ?? 0;
    this.#lastId = null;
    this.#pending.clear();
    for (const s of [...this.#subscribers]) s.restart(from);
  }

  #hold(events: readonly SyncEvent[]): void {
    const lastId = this.#lastId;
    for (const event of events) {
      if ((lastId !== null && event.id <= lastId) || this.#pending.has(event.id)) {
        this.#deps.metrics.duplicatesDropped.inc();
        continue;
      }
      this.#pending.set(event.id, event);
    }
  }

  /** Coalesces everything that arrives in one tick into one batch (one frame per scope). */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#scheduledFlush);
  }

  /** The tick's flush; one function per stream rather than a closure per event. */
  readonly #scheduledFlush = (): void => {
    this.#flushScheduled = false;
    try {
      this.#flush();
    } catch (err) {
      this.#deps.metrics.handlerErrors.inc({ where: 'bus' });
      this.#deps.log.error({ scope: this.scope, err: (err as Error).message }, 'flushing bus events failed');
    }
  };

  #flush(): void {
    if (this.#lastId === null || this.#closed) return;
    const batch: SyncEvent[] = [];
    let next = this.#lastId + 1;
    for (let event = this.#pending.get(next); event; event = this.#pending.get(next)) {
      batch.push(event);
      this.#pending.delete(next);
      next++;
    }
    for (const id of this.#pending.keys()) if (id < next) this.#pending.delete(id);
    if (batch.length > 0) {
      this.#lastId = next - 1;
      this.#emit(batch);
    }
    this.#armHold();
  }

  /** Starts the hold timer while early events wait for a gap; clears it when none wait. */
  #armHold(): void {
    if (this.#pending.size === 0 || this.#lastId === null) {
      clearTimeout(this.#holdTimer);
      this.#holdTimer = undefined;
      return;
    }
    if (this.#holdTimer || this.#filling || this.#closed) return;
    this.#holdTimer = setTimeout(
      () => {
        this.#holdTimer = undefined;
        this.fill('gap');
      },
      // The first hold is exactly holdMs; after failed fills, a jittered backoff on top of it.
      this.#deps.holdMs +
        (this.#failedFills &&
          backoff(this.#failedFills - 1, {
            initialDelayMs: this.#deps.holdMs * 2,
            maxDelayMs: MAX_HOLD_BACKOFF_MS,
          })),
    );
  }

  #emit(batch: SyncEvent[]): void {
    this.#deps.fanOut(this, batch);
    for (const s of this.#subscribers) if (!s.isLive) s.bufferEvents(batch);
  }
}
