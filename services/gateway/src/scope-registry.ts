import { ScopeStream, type ScopeStreamDeps, type StreamSubscriber } from './scope-stream';

/** A scope that is always valid, used to probe the delta source when no scope is active. */
const PROBE_SCOPE = 'gateway:probe';

/**
 * The node's streams, one per scope with local subscribers. The bus channel of a scope is joined
 * when its first local subscriber arrives and left after its last one goes (reference counted),
 * so a node holds one bus subscription per active scope however many clients share it.
 */
export class ScopeRegistry {
  readonly #streams = new Map<string, ScopeStream>();
  readonly #deps: ScopeStreamDeps;
  #headCheckRunning = false;
  /** Result of the last heads call: the delta source answered. */
  deltaReachable = false;

  constructor(deps: ScopeStreamDeps) {
    this.#deps = deps;
  }

  get size(): number {
    return this.#streams.size;
  }

  get(scope: string): ScopeStream | undefined {
    return this.#streams.get(scope);
  }

  values(): IterableIterator<ScopeStream> {
    return this.#streams.values();
  }

  /** Adds a subscriber to the scope's stream; resolves once the bus channel is joined. */
  async join(scope: string, subscriber: StreamSubscriber): Promise<ScopeStream> {
    let stream = this.#streams.get(scope);
    if (!stream) {
      stream = new ScopeStream(scope, this.#deps, (failed) => {
        if (this.#streams.get(scope) === failed) this.#remove(failed);
      });
      this.#streams.set(scope, stream);
      this.#deps.metrics.activeScopes.set(this.#streams.size);
    }
    stream.addSubscriber(subscriber);
    // While the bus is down a channel join waits for Redis to come back; a subscribe should not.
    // Reading the log without the join in place is safe then: the stream is filled from the log
    // when the bus reports 'up' again, and by every head check until then.
    if (this.#deps.bus.isHealthy()) await stream.ready;
    return stream;
  }

  /** Removes a subscriber; the last one out closes the stream and leaves the bus channel. */
  leave(scope: string, subscriber: StreamSubscriber): void {
    const stream = this.#streams.get(scope);
    if (!stream?.removeSubscriber(subscriber)) return;
    if (stream.subscriberCount === 0) this.#remove(stream);
  }

  #remove(stream: ScopeStream): void {
    stream.close();
    this.#streams.delete(stream.scope);
    this.#deps.metrics.activeScopes.set(this.#streams.size);
  }

  /**
   * One `heads` call for every active scope on this node; a scope whose head in the log is ahead
   * of what the stream emitted is filled from the log. This is what delivers an event whose
   * publish the bus lost while no later event of the scope arrives to reveal the gap. Cost: one
   * indexed query per node per interval, whatever the number of scopes and clients.
   */
  async checkHeads(): Promise<void> {
    if (this.#headCheckRunning) return;
    this.#headCheckRunning = true;
    try {
      const anchored = [...this.#streams.values()].filter((s) => s.lastId !== null);
      const scopes = anchored.length > 0 ? anchored.map((s) => s.scope) : [PROBE_SCOPE];
      const heads = await this.#deps.reads.heads(scopes);
      this.deltaReachable = true;
      for (const stream of anchored) {
        const head = heads.get(stream.scope) ?? 0;
        if (stream.lastId !== null && head > stream.lastId) stream.fill('head_check');
      }
    } catch (err) {
      this.deltaReachable = false;
      this.#deps.log.warn({ err: (err as Error).message }, 'head check failed');
    } finally {
      this.#headCheckRunning = false;
    }
  }

  /** After a bus outage: every active scope re-reads its log from where it stopped. */
  fillAll(): void {
    for (const stream of this.#streams.values()) stream.fill('reconnect');
  }

  closeAll(): void {
    for (const stream of [...this.#streams.values()]) this.#remove(stream);
  }
}
