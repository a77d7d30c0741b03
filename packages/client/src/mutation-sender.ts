import { MODEL_PATHS, MutationBatchResult, WriteResult } from '@openagents/sync-protocol';
import { type BackoffOptions, backoff } from './backoff';
import { MutationError } from './errors';
import { type HttpFailure, httpFailure, networkFailure } from './http-failure';
import type { TokenSource } from './token-source';
import type { PendingMutation } from './types';

export interface MutationSenderHooks {
  /** 2xx: the server committed it (or had already, under this key). */
  committed(mutation: PendingMutation, result: WriteResult): void;
  /** A retryable failure; the same request is sent again after a backoff. */
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

/** What goes out as one request: a single write, or an atomic batch (same `batchId`). */
type Group = readonly PendingMutation[];

type Outcome = { kind: 'committed'; results: WriteResult[] } | HttpFailure;

/**
 * Sends pending mutations over HTTP, one request at a time and in the order they were made (an
 * update must not overtake the insert of its record, nor a message the agent it belongs to).
 *
 * A single write goes to its REST endpoint with `Idempotency-Key: <mutationId>`; a batch goes to
 * `POST /api/mutations` with a mutationId per entry, all or nothing. Every try carries the same
 * keys, so a retry after a lost response cannot write twice: the server answers with the first
 * result. Network errors, 5xx and 429 are retried with capped exponential backoff and full
 * jitter, for as long as the client lives; a 401 triggers one token refresh; any other 4xx is
 * final and rolls back (the whole batch, for a batch).
 */
export class MutationSender {
  #o: MutationSenderOptions;
  #queue: Group[] = [];
  #running = false;
  #held = false;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(options: MutationSenderOptions) {
    this.#o = options;
  }

  /** Queues one write, or several with the same `batchId` to be committed atomically. */
  enqueue(group: Group): void {
    if (this.#closed || group.length === 0) return;
    this.#queue.push(group);
    if (!this.#running && !this.#held) void this.#drain();
  }

  /** Holds sending until `release` (while storage is read, so restored writes go first). */
  hold(): void {
    this.#held = true;
  }

  /**
   * Puts `earlier` (writes restored from storage, in their original order) ahead of the queue
   * and starts sending. Consecutive entries sharing a `batchId` go out as one batch again.
   */
  release(earlier: readonly PendingMutation[] = []): void {
    const queued = new Set(this.#queue.flat().map((m) => m.mutationId));
    const groups: PendingMutation[][] = [];
    for (const m of earlier) {
      if (queued.has(m.mutationId)) continue;
      const last = groups.at(-1);
      if (last && m.batchId !== undefined && last[0]!.batchId === m.batchId) last.push(m);
      else groups.push([m]);
    }
    this.#queue.unshift(...groups);
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
      while (!this.#closed && !this.#held && this.#queue.length > 0) {
        await this.#deliver(this.#queue[0]!);
        this.#queue.shift();
      }
    } finally {
      this.#running = false;
    }
  }

  async #deliver(group: Group): Promise<void> {
    let attempts = Math.max(...group.map((m) => m.attempts));
    let refreshed = false;
    const rejectAll = (status: number, body: unknown) => {
      for (const m of group) this.#o.hooks.rejected(m, new MutationError(m.mutationId, status, body));
    };
    while (!this.#closed) {
      const outcome: Outcome = await this.#sendOnce(group).catch((error: unknown) => ({
        kind: 'retry' as const,
        status: 0,
        message: `request failed: ${String(error)}`,
        retryAfterMs: 0,
      }));
      if (this.#closed) return;
      switch (outcome.kind) {
        case 'committed':
          for (const [i, m] of group.entries()) this.#o.hooks.committed(m, outcome.results[i]!);
          return;
        case 'unauthorized':
          if (!refreshed) {
            refreshed = true;
            await this.#o.tokens.refresh();
            continue;
          }
          rejectAll(401, outcome.body);
          return;
        case 'rejected':
          rejectAll(outcome.status, outcome.body);
          return;
        case 'retry': {
          const delay = Math.max(backoff(attempts, this.#o.backoff), outcome.retryAfterMs);
          attempts++;
          for (const m of group) this.#o.hooks.retrying(m, attempts, outcome.message);
          await this.#sleep(delay);
          break;
        }
      }
    }
  }

  async #sendOnce(group: Group): Promise<Outcome> {
    const headers: Record<string, string> = {};
    const token = await this.#o.tokens.get();
    if (token) headers.authorization = `Bearer ${token}`;
    const batch = group.length > 1 || group[0]!.batchId !== undefined;
    const request = batch ? batchRequest(this.#o.baseUrl, group) : singleRequest(this.#o.baseUrl, group[0]!);
    Object.assign(headers, request.headers);
    if (request.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await this.#o.fetch(request.url, {
        method: request.method,
        headers,
        ...(request.body !== undefined ? { body: request.body } : {}),
      });
    } catch (error) {
      return networkFailure(error);
    }
    const payload = await res.json().catch(() => null);
    if (res.ok) {
      const results = readResults(payload, batch, group.length);
      if (results) return { kind: 'committed', results };
      return {
        kind: 'rejected',
        status: res.status,
        body: { error: { code: 'bad_response', message: 'unreadable write result' } },
      };
    }
    return httpFailure(res, payload);
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

interface HttpRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
}

function singleRequest(baseUrl: string, m: PendingMutation): HttpRequest {
  const path = `${baseUrl}/api/${MODEL_PATHS[m.model]}`;
  const headers = { 'idempotency-key': m.mutationId };
  switch (m.action) {
    case 'insert':
      return { url: path, method: 'POST', headers, body: JSON.stringify({ ...m.data, id: m.id }) };
    case 'update':
      return {
        url: `${path}/${encodeURIComponent(m.id)}`,
        method: 'PATCH',
        headers,
        body: JSON.stringify(m.data ?? {}),
      };
    case 'delete':
      return { url: `${path}/${encodeURIComponent(m.id)}`, method: 'DELETE', headers };
  }
}

function batchRequest(baseUrl: string, group: Group): HttpRequest {
  const mutations = group.map((m) => ({
    mutationId: m.mutationId,
    model: m.model,
    action: m.action,
    id: m.id,
    ...(m.action === 'delete'
      ? {}
      : { data: m.action === 'insert' ? { ...m.data, id: m.id } : (m.data ?? {}) }),
  }));
  return {
    url: `${baseUrl}/api/mutations`,
    method: 'POST',
    headers: {},
    body: JSON.stringify({ mutations }),
  };
}

function readResults(payload: unknown, batch: boolean, count: number): WriteResult[] | undefined {
  if (!batch) {
    const one = WriteResult.safeParse(payload);
    return one.success ? [one.data] : undefined;
  }
  const many = MutationBatchResult.safeParse(payload);
  return many.success && many.data.results.length === count ? many.data.results : undefined;
}
