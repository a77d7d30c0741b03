/**
 * In-memory stand-ins for what the gateway's streams and subscriptions read and publish through,
 * for unit tests driven by fake timers: a scope log behind the `LogReads` interface whose reads
 * can be held back and failed on demand, and builders of events and bus messages.
 */
import type { BootstrapResponse, DeltaResponse, HttpErrorCode, SyncEvent } from '@openagents/sync-protocol';
import { AppError, createLogger, createRegistry } from '@openagents/sync-server-kit';
import type { LogReads } from '../../src/log-reads';
import { createGatewayMetrics } from '../../src/metrics';

export const SCOPE = 'org:0b2b5a4e-8f3c-4d58-9a43-3a3f1c2b7a10';

/** The sum of a prom-client metric's values whose labels include `labels`. */
export async function metricValue(
  metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> },
  labels: Record<string, string> = {},
): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((n, v) => n + v.value, 0);
}

export const silentLog = createLogger({ name: 'gateway-unit', level: 'silent' });

export function unitMetrics() {
  return createGatewayMetrics(createRegistry('gateway-unit', { defaultMetrics: false }));
}

/** Event `id` of `scope` (a valid SyncEvent: it passes the bus-message checks). */
export function event(id: number, scope = SCOPE): SyncEvent {
  return {
    id,
    scope,
    model: 'Message',
    model_id: `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`,
    action: 'insert',
    data: { content: `m${id}` },
    mutationId: null,
    created_at: new Date(0).toISOString(),
  };
}

export const events = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => event(from + i));

export const ids = (list: readonly { id: number }[]) => list.map((e) => e.id);

interface Held {
  release: () => void;
}

/**
 * One scope's log: ids 1..head. `hold()` makes the next reads wait until released; `fail(code)`
 * makes the next read fail with that code. `calls` records every read, for asserting which
 * path (log or bus) delivered what.
 */
export class FakeLog implements LogReads {
  head = 0;
  /** Bootstrap records per page; a bootstrap of more pages carries `nextCursor`. */
  bootstrapPages = 1;
  readonly calls: { kind: 'fresh' | 'resume' | 'bootstrap' | 'heads'; from?: number | string }[] = [];
  #failures: HttpErrorCode[] = [];
  #holding = false;
  #held: Held[] = [];

  /** Appends `n` events to the log (not to the bus) and returns them. */
  append(n: number): SyncEvent[] {
    const added = events(this.head + 1, this.head + n);
    this.head += n;
    return added;
  }

  fail(...codes: HttpErrorCode[]): void {
    this.#failures.push(...codes);
  }

  /** Reads wait from now on until `release()`. */
  hold(): void {
    this.#holding = true;
  }

  /** Lets every waiting read go on (each reads the log as it is at that moment). */
  release(): void {
    this.#holding = false;
    const held = this.#held;
    this.#held = [];
    for (const h of held) h.release();
  }

  get waiting(): number {
    return this.#held.length;
  }

  fresh(scope: string, lastSyncId: number): Promise<DeltaResponse> {
    this.calls.push({ kind: 'fresh', from: lastSyncId });
    return this.#read(() => this.#delta(scope, lastSyncId));
  }

  resume(scope: string, lastSyncId: number): Promise<DeltaResponse> {
    this.calls.push({ kind: 'resume', from: lastSyncId });
    return this.#read(() => this.#delta(scope, lastSyncId));
  }

  bootstrap(scope: string, cursor?: string): Promise<BootstrapResponse> {
    this.calls.push({ kind: 'bootstrap', ...(cursor === undefined ? {} : { from: cursor }) });
    return this.#read(() => {
      const page = cursor === undefined ? 0 : Number(cursor.split(':')[1]);
      const lastSyncId = cursor === undefined ? this.head : Number(cursor.split(':')[0]);
      const more = page + 1 < this.bootstrapPages;
      return {
        scope,
        models: {
          Agent: [],
          Message: [{ id: `page-${page}` }],
          Payment: [],
          CodeChange: [],
          ReasoningStep: [],
          ToolCall: [],
        },
        lastSyncId,
        ...(more ? { nextCursor: `${lastSyncId}:${page + 1}` } : {}),
      };
    });
  }

  heads(scopes: readonly string[]): Promise<Map<string, number>> {
    this.calls.push({ kind: 'heads' });
    return this.#read(() => new Map(scopes.map((s) => [s, s === SCOPE ? this.head : 0])));
  }

  count(kind: 'fresh' | 'resume' | 'bootstrap' | 'heads'): number {
    return this.calls.filter((c) => c.kind === kind).length;
  }

  #delta(scope: string, lastSyncId: number): DeltaResponse {
    const found = events(lastSyncId + 1, this.head).map((e) => ({ ...e, scope }));
    return { scope, events: found, latestSyncId: this.head, hasMore: false };
  }

  async #read<T>(answer: () => T): Promise<T> {
    if (this.#holding) await new Promise<void>((release) => this.#held.push({ release }));
    const code = this.#failures.shift();
    if (code) throw new AppError(code, `fake log: ${code}`);
    return answer();
  }
}
