import { MODEL_PATHS, WriteResult } from '@openagents/sync-protocol';
import { type BackoffOptions, backoff, isRetryable } from './backoff';
import { MutationError } from './errors';
import type { TokenSource } from './token-source';
import type { PendingMutation } from './types';

export interface MutationSenderHooks {
  /** 2xx: the server committed it (or had already, under this key). */
  committed(mutation: PendingMutation, result: WriteResult): void;
  /** A retryable failure; the same request is sent again after `delayMs`. */
  retrying(mutation: PendingMutation, attempts: number, message: string): void;
  /** A final refusal: roll back. */
  rejected(mutation: PendingMutation, error: MutationError): void;
}

export interface MutationSenderOptions {
  /** Base http(s) URL, without a trailing slash. */
  baseUrl: string;
  fetch: typeof fetch;
  tokens: TokenSource;
  backoff: Partial<BackoffOptions>;
  hooks: MutationSenderHooks;
}

type Outcome =
  | { kind: 'committed'; result: WriteResult }
  | { kind: 'retry'; status: number; message: string; retryAfterMs: number }
  | { kind: 'unauthorized'; body: unknown }
  | { kind: 'rejected'; status: number; body: unknown };

/**
 * Sends pending mutations over HTTP, one at a time and in the order they were made (an update
 * must not overtake the insert of its record, nor a message the agent it belongs to).
 *
 * Every try of one mutation carries the same `Idempotency-Key` (its mutationId), so a retry after
 * a lost response cannot write twice: the server answers with the first result. Network errors,
 * 5xx and 429 are retried with capped exponential backoff and full jitter, for as long as the
 * client lives; a 401 triggers one token refresh; any other 4xx is final and rolls back.
 */
export class MutationSender {
  #o: MutationSenderOptions;
  #queue: PendingMutation[] = [];
  #running = false;
  #held = false;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(options: MutationSenderOptions) {
    this.#o = options;
  }

  enqueue(mutation: PendingMutation): void {
    if (this.#closed) return;
    this.#queue.push(mutation);
    if (!this.#running && !this.#held) void this.#drain();
  }

  /** Holds sending until `release` (while storage is read, so restored writes go first). */
  hold(): void {
    this.#held = true;
  }

  /** Puts `earlier` (e.g. writes restored from storage) ahead of the queue and starts sending. */
  release(earlier: PendingMutation[] = []): void {
    const queued = new Set(this.#queue.map((m) => m.mutationId));
    this.#queue.unshift(...earlier.filter((m) => !queued.has(m.mutationId)));
    this.#held = false;
    if (!this.#running && !this.#closed && this.#queue.length > 0) void this.#drain();
  }

  /** Cuts the current backoff wait short (the network is back). */
  retryNow(): void {
    this.#wake?.();
  }

  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#wake?.();
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (!this.#closed && this.#queue.length > 0) {
        await this.#deliver(this.#queue[0]!);
        this.#queue.shift();
      }
    } finally {
      this.#running = false;
    }
  }

  async #deliver(mutation: PendingMutation): Promise<void> {
    let attempts = mutation.attempts;
    let refreshed = false;
    while (!this.#closed) {
      const outcome: Outcome = await this.#sendOnce(mutation).catch((error: unknown) => ({
        kind: 'retry' as const,
        status: 0,
        message: `request failed: ${String(error)}`,
        retryAfterMs: 0,
      }));
      if (this.#closed) return;
      switch (outcome.kind) {
        case 'committed':
          this.#o.hooks.committed(mutation, outcome.result);
          return;
        case 'unauthorized':
          if (!refreshed) {
            refreshed = true;
            await this.#o.tokens.refresh();
            continue;
          }
          this.#o.hooks.rejected(mutation, new MutationError(mutation.mutationId, 401, outcome.body));
          return;
        case 'rejected':
          this.#o.hooks.rejected(
            mutation,
            new MutationError(mutation.mutationId, outcome.status, outcome.body),
          );
          return;
        case 'retry': {
          const delay = Math.max(backoff(attempts, this.#o.backoff), outcome.retryAfterMs);
          attempts++;
          this.#o.hooks.retrying(mutation, attempts, outcome.message);
          await this.#sleep(delay);
          break;
        }
      }
    }
  }

  async #sendOnce(m: PendingMutation): Promise<Outcome> {
    const path = `${this.#o.baseUrl}/api/${MODEL_PATHS[m.model]}`;
    const headers: Record<string, string> = { 'idempotency-key': m.mutationId };
    const token = await this.#o.tokens.get();
    if (token) headers.authorization = `Bearer ${token}`;
    let url = path;
    let method: string;
    let body: string | undefined;
    switch (m.action) {
      case 'insert':
        method = 'POST';
        body = JSON.stringify({ ...m.data, id: m.id });
        break;
      case 'update':
        method = 'PATCH';
        url = `${path}/${encodeURIComponent(m.id)}`;
        body = JSON.stringify(m.data ?? {});
        break;
      case 'delete':
        method = 'DELETE';
        url = `${path}/${encodeURIComponent(m.id)}`;
        break;
    }
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await this.#o.fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
    } catch (error) {
      return { kind: 'retry', status: 0, message: `network error: ${String(error)}`, retryAfterMs: 0 };
    }
    const payload = await res.json().catch(() => null);
    if (res.ok) {
      const parsed = WriteResult.safeParse(payload);
      if (parsed.success) return { kind: 'committed', result: parsed.data };
      return {
        kind: 'rejected',
        status: res.status,
        body: { error: { code: 'bad_response', message: 'unreadable write result' } },
      };
    }
    if (res.status === 401) return { kind: 'unauthorized', body: payload };
    if (isRetryable(res.status)) {
      const retryAfter = Number(res.headers.get('retry-after'));
      return {
        kind: 'retry',
        status: res.status,
        message: `HTTP ${res.status}`,
        retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 300) * 1000 : 0,
      };
    }
    return { kind: 'rejected', status: res.status, body: payload };
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }
}
