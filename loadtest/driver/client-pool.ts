import { Worker } from 'node:worker_threads';
import { Histogram } from './histogram';
import type {
  ConnectionSpec,
  StreamSnapshot,
  StreamTracking,
  ViewerTransport,
  WorkerCommand,
  WorkerReply,
  WorkerSnapshot,
} from './worker-messages';

/** Distributive Omit over the command union, so each variant keeps its own fields. */
type CommandBody = WorkerCommand extends infer C ? (C extends WorkerCommand ? Omit<C, 'seq'> : never) : never;

/** Everything the workers counted, summed, with the latency histogram merged. */
export interface PoolSnapshot extends Omit<WorkerSnapshot, 'latency' | 'caughtUpAt' | 'streams'> {
  latency: Histogram;
  /** The viewers' streamed texts, merged over workers (when the connections track them). */
  streams?: PoolStreams;
  /** When the last connection caught up (null while any lags). */
  caughtUpAt: number | null;
}

export interface PoolStreams extends Omit<StreamSnapshot, 'latency' | 'openingLatency' | 'appendLatency'> {
  latency: Histogram;
  appendLatency: Histogram;
  openingLatency: Histogram;
}

const WORKER_URL = new URL('./client-worker.ts', import.meta.url).href;

/**
 * Client connections spread over worker threads. Workers load TypeScript through tsx's API, so
 * the pool works the same under `node --import tsx` and under vitest.
 */
export class ClientPool {
  readonly #workers: Worker[];
  readonly #pending = new Map<number, (reply: WorkerReply) => void>();
  /** Per connection, in the order opened: its worker and its index among that worker's. */
  readonly #placement: { worker: number; index: number }[] = [];
  /** How many connections each worker holds. */
  readonly #heldBy: number[];
  #seq = 0;

  constructor(workerCount: number) {
    const code = `import('tsx/esm/api').then(({ tsImport }) => tsImport(${JSON.stringify(WORKER_URL)}, ${JSON.stringify(import.meta.url)}))`;
    this.#workers = Array.from({ length: Math.max(1, workerCount) }, () => {
      const worker = new Worker(code, { eval: true });
      worker.on('message', (reply: WorkerReply) => {
        const resolve = this.#pending.get(reply.seq);
        this.#pending.delete(reply.seq);
        resolve?.(reply);
      });
      worker.on('error', (err) => {
        console.error('load driver worker failed:', err);
      });
      return worker;
    });
    this.#heldBy = this.#workers.map(() => 0);
  }

  get workerCount(): number {
    return this.#workers.length;
  }

  #call(worker: Worker, command: CommandBody, timeoutMs = 120_000): Promise<WorkerReply> {
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        reject(new Error(`worker did not answer ${command.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(seq, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      worker.postMessage({ ...command, seq });
    });
  }

  #all(command: CommandBody, timeoutMs?: number): Promise<WorkerReply[]> {
    return Promise.all(this.#workers.map((w) => this.#call(w, command, timeoutMs)));
  }

  /**
   * Opens the connections (round-robin over workers) and waits until each has its scopes live.
   * Returns how many are ready; failures are counted, not thrown. A later call adds connections
   * (numbered on from the earlier ones) and, unless `keepCounters`, resets every counter.
   */
  async open(
    specs: readonly ConnectionSpec[],
    options: {
      measureLatency: boolean;
      timeoutMs: number;
      keepCounters?: boolean;
      streams?: StreamTracking;
      /** WebSocket client of contract-protocol connections (`ws` when omitted). */
      transport?: ViewerTransport;
    },
  ): Promise<{ ready: number; failed: number; firstError?: string }> {
    const shares: ConnectionSpec[][] = this.#workers.map(() => []);
    for (const spec of specs) {
      const worker = this.#placement.length % shares.length;
      this.#placement.push({ worker, index: this.#heldBy[worker]!++ });
      shares[worker]!.push(spec);
    }
    const replies = await Promise.all(
      this.#workers.map((w, i) =>
        this.#call(
          w,
          {
            type: 'open',
            specs: shares[i]!,
            measureLatency: options.measureLatency,
            timeoutMs: options.timeoutMs,
            ...(options.keepCounters ? { keepCounters: true } : {}),
            ...(options.streams ? { streams: options.streams } : {}),
            ...(options.transport ? { transport: options.transport } : {}),
          },
          options.timeoutMs + 10_000,
        ),
      ),
    );
    let ready = 0;
    let failed = 0;
    let firstError: string | undefined;
    for (const r of replies) {
      if (r.type !== 'opened') continue;
      ready += r.ready;
      failed += r.failed;
      firstError ??= r.firstError;
    }
    return firstError === undefined ? { ready, failed } : { ready, failed, firstError };
  }

  async window(): Promise<void> {
    await this.#all({ type: 'window' });
  }

  /**
   * Cuts every connection, or only those numbered in `connections` (in the order opened), keeping
   * their cursors.
   */
  async drop(connections?: readonly number[]): Promise<void> {
    await this.#some('drop', connections);
  }

  /**
   * Reconnects every connection, or only those numbered in `connections`, which must have been
   * dropped; each resumes its scopes from its cursors. Answers once the reconnects are under way.
   */
  async resume(connections?: readonly number[]): Promise<void> {
    await this.#some('resume', connections);
  }

  async #some(type: 'drop' | 'resume', connections: readonly number[] | undefined): Promise<void> {
    if (connections === undefined) {
      await this.#all({ type });
      return;
    }
    const local: number[][] = this.#workers.map(() => []);
    for (const n of connections) {
      const at = this.#placement[n];
      if (at) local[at.worker]!.push(at.index);
    }
    await Promise.all(
      this.#workers.flatMap((w, i) =>
        local[i]!.length > 0 ? [this.#call(w, { type, connections: local[i]! })] : [],
      ),
    );
  }

  async expect(heads: ReadonlyMap<string, number>): Promise<void> {
    await this.#all({ type: 'expect', heads: [...heads] });
  }

  async snapshot(): Promise<PoolSnapshot> {
    const replies = await this.#all({ type: 'snapshot' }, 30_000);
    const total: PoolSnapshot = {
      connections: 0,
      open: 0,
      ready: 0,
      delivered: 0,
      duplicates: 0,
      lost: 0,
      frames: 0,
      errors: {},
      unexpectedCloses: 0,
      reconnects: 0,
      latency: new Histogram(),
      caughtUp: 0,
      caughtUpAt: 0,
      behind: 0,
      bootstrapRecords: 0,
      bootstrapFrames: 0,
      snapshotCovered: 0,
      resumePairs: [],
    };
    const pairs = new Set<string>();
    for (const reply of replies) {
      if (reply.type !== 'snapshot') continue;
      const s = reply.snapshot;
      total.connections += s.connections;
      total.open += s.open;
      total.ready += s.ready;
      total.delivered += s.delivered;
      total.duplicates += s.duplicates;
      total.lost += s.lost;
      total.frames += s.frames;
      for (const [code, n] of Object.entries(s.errors)) total.errors[code] = (total.errors[code] ?? 0) + n;
      total.unexpectedCloses += s.unexpectedCloses;
      total.reconnects += s.reconnects;
      total.latency.merge(s.latency);
      total.caughtUp += s.caughtUp;
      // A worker with no connections is trivially caught up.
      const at = s.connections === 0 ? 0 : s.caughtUpAt;
      total.caughtUpAt = total.caughtUpAt === null || at === null ? null : Math.max(total.caughtUpAt, at);
      total.behind += s.behind;
      total.bootstrapRecords += s.bootstrapRecords;
      total.bootstrapFrames += s.bootstrapFrames;
      total.snapshotCovered += s.snapshotCovered;
      for (const p of s.resumePairs) pairs.add(p);
      if (s.streams) mergeStreams(total, s.streams);
    }
    total.resumePairs = [...pairs];
    return total;
  }

  /**
   * Polls until every connection reached the heads given to `expect` (or the deadline passes);
   * returns the last snapshot either way.
   */
  async waitCaughtUp(timeoutMs: number, pollMs = 50): Promise<PoolSnapshot> {
    const deadline = Date.now() + timeoutMs;
    let last = await this.snapshot();
    while (last.caughtUpAt === null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, pollMs));
      last = await this.snapshot();
    }
    return last;
  }

  /** Closes every connection and stops the workers. */
  async close(): Promise<void> {
    await this.#all({ type: 'close' }, 10_000).catch(() => {});
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}

function mergeStreams(total: PoolSnapshot, s: StreamSnapshot): void {
  total.streams ??= {
    tokens: 0,
    skipped: 0,
    gaps: 0,
    latency: new Histogram(),
    openingLatency: new Histogram(),
    appendLatency: new Histogram(),
    texts: [],
    loopDelayP99Ms: 0,
    loopDelayMaxMs: 0,
  };
  const into = total.streams;
  // The worst viewer thread's: its lag is in the latencies of every viewer it holds.
  into.loopDelayP99Ms = Math.max(into.loopDelayP99Ms, s.loopDelayP99Ms);
  into.loopDelayMaxMs = Math.max(into.loopDelayMaxMs, s.loopDelayMaxMs);
  into.tokens += s.tokens;
  into.skipped += s.skipped;
  into.gaps += s.gaps;
  into.latency.merge(s.latency);
  into.openingLatency.merge(s.openingLatency);
  into.appendLatency.merge(s.appendLatency);
  for (const text of s.texts) {
    const same = into.texts.find((t) => t[0] === text[0] && t[2] === text[2]);
    if (same) same[3] += text[3];
    else into.texts.push([...text]);
  }
}
