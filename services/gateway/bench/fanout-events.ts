import { randomUUID } from 'node:crypto';
import { unreachable } from '@openagents/sync-protocol';

/**
 * Pre-built events for the fan-out benchmark. Each event is a real `SyncEvent` (a Message insert)
 * whose JSON is assembled from fixed parts around three things known only at publish time: its
 * id, its publish timestamp `bench_t` (see `stampNow`), and `created_at`. Clients find `"bench_t":` with a byte search instead of parsing.
 */

/** The marker clients search for in received frames; one per event. */
export const STAMP_MARKER = '"bench_t":';

/**
 * A timestamp in ms (sub-millisecond) that processes and threads on one machine can compare:
 * CLOCK_MONOTONIC, which `process.hrtime` reads, is system-wide on Linux. (`performance.timeOrigin`
 * is not: each process samples it at start-up, and on a loaded machine two processes' origins can
 * differ by tens of milliseconds.)
 */
export function stampNow(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Scope names for the run, `agent:<uuid>`, deterministic in count. */
export function benchScopes(count: number): string[] {
  return Array.from({ length: count }, () => `agent:${randomUUID()}`);
}

/**
 * What the events are: `insert` — Message inserts with `contentBytes` of content (the fan-out
 * benchmark); `append` — append pieces of `contentBytes` characters to a streaming reply's
 * `content` (contract v1.1 section 5), one token per event, as an agent's reply streams.
 */
export type EventShape = 'insert' | 'append';

export interface BuiltEvent {
  scopeIndex: number;
  scope: string;
  id: number;
  /** The event's JSON. */
  json: string;
}

/**
 * Events round-robin over the scopes, ids 1, 2, 3… per scope, continuing across `next()` calls so
 * every phase of a run extends the same gap-free logs.
 */
export class EventSource {
  readonly scopes: readonly string[];
  readonly #ids: number[];
  readonly #heads: string[];
  readonly #tails: string[];
  readonly #shape: EventShape;
  readonly #content: string;
  #cursor = 0;

  constructor(scopes: readonly string[], contentBytes: number, shape: EventShape = 'insert') {
    this.scopes = scopes;
    this.#ids = scopes.map(() => 0);
    this.#shape = shape;
    const content = 'x'.repeat(contentBytes);
    this.#content = content;
    this.#heads = [];
    this.#tails = [];
    for (const scope of scopes) {
      const agentId = scope.slice('agent:'.length);
      const modelId = randomUUID();
      if (shape === 'append') {
        this.#heads.push(
          `,"scope":"${scope}","model":"Message","model_id":"${modelId}","action":"append","data":{"field":"content","offset":`,
        );
        this.#tails.push(`,"mutationId":null,"created_at":`);
        continue;
      }
      this.#heads.push(
        `,"scope":"${scope}","model":"Message","model_id":"${modelId}","action":"insert","data":{"id":"${modelId}","agent_id":"${agentId}","role":"assistant","content":"${content}",${STAMP_MARKER}`,
      );
      this.#tails.push(`,"mutationId":null,"created_at":`);
    }
  }

  /** Events published so far. */
  get count(): number {
    return this.#cursor;
  }

  /** The next event, stamped now. */
  next(): BuiltEvent {
    const scopeIndex = this.#cursor++ % this.scopes.length;
    const id = ++this.#ids[scopeIndex]!;
    const t = stampNow();
    const iso = `"${new Date().toISOString()}"`;
    if (this.#shape === 'append') {
      const offset = (id - 1) * this.#content.length;
      const json = `{"id":${id}${this.#heads[scopeIndex]}${offset},"text":"${this.#content}","updated_at":${iso},${STAMP_MARKER}${t}}${this.#tails[scopeIndex]}${iso}}`;
      return { scopeIndex, scope: this.scopes[scopeIndex]!, id, json };
    }
    const json = `{"id":${id}${this.#heads[scopeIndex]}${t},"created_at":${iso},"updated_at":${iso}}${this.#tails[scopeIndex]}${iso}}`;
    return { scopeIndex, scope: this.scopes[scopeIndex]!, id, json };
  }
}

/** Commands a producer process accepts over IPC. */
export type ProducerCommand =
  | { cmd: 'init'; scopes: string[]; contentBytes: number; shape?: EventShape }
  /** Publish as fast as credits allow for `durationMs`. */
  | { cmd: 'saturate'; durationMs: number }
  /**
   * Publish `rate` events per second for `durationMs`, what is due every `roundMs` at once (as
   * a writer's commit rounds publish; default 1 ms, about one event at a time).
   */
  | { cmd: 'rate'; rate: number; durationMs: number; roundMs?: number }
  /** Saturation flow control: publish at most up to this many events in total. */
  | { cmd: 'credit'; upTo: number }
  | { cmd: 'exit' };

/** What a producer process reports over IPC. */
export type ProducerReport =
  | { type: 'ready'; port?: number }
  | { type: 'done'; published: number; total: number; elapsedMs: number };

/**
 * The publishing loop shared by both producers (Redis publisher, in-process uWS publisher):
 * saturation with credits (the bench keeps at most a window of undelivered events in flight, so
 * the pipeline stays full without unbounded queues) or a fixed rate paced against the clock.
 */
export class Producer {
  #source: EventSource | undefined;
  #credit = 0;
  readonly #publish: (event: BuiltEvent) => void;

  constructor(publish: (event: BuiltEvent) => void) {
    this.#publish = publish;
  }

  init(scopes: readonly string[], contentBytes: number, shape?: EventShape): void {
    this.#source = new EventSource(scopes, contentBytes, shape);
  }

  credit(upTo: number): void {
    this.#credit = Math.max(this.#credit, upTo);
  }

  async saturate(durationMs: number): Promise<ProducerReport> {
    const source = this.#requireSource();
    const start = performance.now();
    const first = source.count;
    while (performance.now() - start < durationMs) {
      let burst = 0;
      while (source.count < this.#credit && burst++ < 500) this.#publish(source.next());
      await new Promise((r) => setImmediate(r));
    }
    return this.#done(first, start);
  }

  async rate(rate: number, durationMs: number, roundMs = 1): Promise<ProducerReport> {
    const source = this.#requireSource();
    const start = performance.now();
    const first = source.count;
    for (;;) {
      const elapsed = performance.now() - start;
      const due = Math.min(Math.floor((elapsed * rate) / 1000), Math.floor((durationMs * rate) / 1000));
      while (source.count - first < due) this.#publish(source.next());
      if (elapsed >= durationMs) break;
      await new Promise((r) => setTimeout(r, roundMs));
    }
    return this.#done(first, start);
  }

  #done(first: number, start: number): ProducerReport {
    const source = this.#requireSource();
    return {
      type: 'done',
      published: source.count - first,
      total: source.count,
      elapsedMs: performance.now() - start,
    };
  }

  #requireSource(): EventSource {
    if (!this.#source) throw new Error('producer not initialised');
    return this.#source;
  }
}

/** Wires a Producer to this child process's IPC channel. */
export function serveProducerIpc(producer: Producer, onExit: () => Promise<void> | void): void {
  const send = (report: ProducerReport) => process.send?.(report);
  process.on('message', (message: ProducerCommand) => {
    switch (message.cmd) {
      case 'init':
        producer.init(message.scopes, message.contentBytes, message.shape);
        break;
      case 'saturate':
        void producer.saturate(message.durationMs).then(send);
        break;
      case 'rate':
        void producer.rate(message.rate, message.durationMs, message.roundMs).then(send);
        break;
      case 'credit':
        producer.credit(message.upTo);
        break;
      case 'exit':
        void Promise.resolve(onExit()).then(() => process.exit(0));
        break;
      default:
        unreachable(message);
    }
  });
  process.on('disconnect', () => process.exit(0));
}
