import type { WriteResult } from '@openagents/sync-protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { MutationError } from './errors';
import { MutationSender } from './mutation-sender';
import { TokenSource } from './token-source';
import type { PendingMutation } from './types';

const ORG = '00000000-0000-4000-8000-0000000000aa';
const uuid = (n: number) => `10000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

interface SeenRequest {
  url: string;
  method: string;
  key: string | null;
  authorization: string | null;
  body: unknown;
}

/**
 * The write API in memory: every request is recorded and waits until the test answers it
 * (`answer`, `fail`), so the order of requests and what overlaps is exactly what the test says.
 */
class FakeApi {
  readonly requests: SeenRequest[] = [];
  readonly #open: { resolve: (res: Response) => void; reject: (error: unknown) => void }[] = [];

  readonly fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const headers = new Headers(init?.headers);
    this.requests.push({
      url: String(input),
      method: init?.method ?? 'GET',
      key: headers.get('idempotency-key'),
      authorization: headers.get('authorization'),
      body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined,
    });
    return new Promise<Response>((resolve, reject) => this.#open.push({ resolve, reject }));
  }) as typeof fetch;

  /** Requests sent and not answered yet. */
  get waiting(): number {
    return this.#open.length;
  }

  answer(status: number, body: unknown, headers: Record<string, string> = {}) {
    const next = this.#open.shift();
    if (!next) throw new Error('no request is waiting for an answer');
    next.resolve(new Response(JSON.stringify(body), { status, headers }));
  }

  /** Answers the oldest request with the write result the real API gives for it. */
  commit(syncId: number) {
    const request = this.requests[this.requests.length - this.#open.length]!;
    const body = request.body as { id?: string; mutations?: { id: string }[] } | undefined;
    if (body?.mutations) {
      this.answer(200, { results: body.mutations.map((m, i) => result(m.id, syncId + i)) });
    } else {
      // An insert names its id in the body, an update or delete in the path.
      this.answer(200, result(body?.id ?? request.url.split('/').pop()!, syncId));
    }
  }

  fail(error: unknown) {
    const next = this.#open.shift();
    if (!next) throw new Error('no request is waiting for an answer');
    next.reject(error);
  }
}

function result(id: string, syncId: number): WriteResult {
  return { data: { id }, scope: `org:${ORG}`, syncId };
}

let made = 0;
function mutation(overrides: Partial<PendingMutation> = {}): PendingMutation {
  made++;
  return {
    mutationId: `key-${made}`,
    model: 'Agent',
    action: 'insert',
    id: uuid(made),
    data: { org_id: ORG, name: `agent ${made}` },
    status: 'sending',
    createdAt: '2026-12-01T00:00:00.000Z',
    attempts: 0,
    ...overrides,
  };
}

/**
 * A sender over the fake API with recording hooks. Backoff bounds are 1 s × 2^attempt capped at
 * 8 s, and the jitter always draws 0.5, so the n-th retry waits exactly 500 ms × 2^n (≤ 4 s).
 */
function sender(options: { tokens?: TokenSource } = {}) {
  const api = new FakeApi();
  const log: string[] = [];
  const committed: [string, WriteResult][] = [];
  const rejected: MutationError[] = [];
  const retrying: [string, number, string][] = [];
  const s = new MutationSender({
    baseUrl: 'https://api.test',
    fetch: api.fetch,
    tokens: options.tokens ?? new TokenSource({ token: 'tok' }),
    backoff: { initialDelayMs: 1_000, multiplier: 2, maxDelayMs: 8_000, random: () => 0.5 },
    hooks: {
      committed: (m, r) => {
        log.push(`committed ${m.mutationId}`);
        committed.push([m.mutationId, r]);
      },
      retrying: (m, attempts, message) => {
        log.push(`retrying ${m.mutationId}`);
        retrying.push([m.mutationId, attempts, message]);
      },
      rejected: (m, error) => {
        log.push(`rejected ${m.mutationId}`);
        rejected.push(error);
      },
    },
  });
  return { sender: s, api, log, committed, rejected, retrying };
}

const settle = () => vi.advanceTimersByTimeAsync(0);

/** Asserts that no request goes out for `ms - 1` milliseconds, and one does at `ms`. */
async function expectResentAfter(api: FakeApi, ms: number) {
  const before = api.requests.length;
  await vi.advanceTimersByTimeAsync(ms - 1);
  expect(api.requests).toHaveLength(before);
  await vi.advanceTimersByTimeAsync(1);
  expect(api.requests).toHaveLength(before + 1);
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('requests', () => {
  it('sends one write to its REST endpoint with its mutationId as the Idempotency-Key', async () => {
    const { sender: s, api, committed } = sender();
    const insert = mutation();
    const update = mutation({ action: 'update', id: uuid(1), data: { name: 'renamed' } });
    const remove = mutation({ model: 'CodeChange', action: 'delete', id: uuid(2), data: null });
    s.enqueue([insert]);
    s.enqueue([update]);
    s.enqueue([remove]);
    for (let i = 0; i < 3; i++) {
      await settle();
      api.commit(10 + i);
    }
    await settle();
    expect(api.requests).toEqual([
      {
        url: 'https://api.test/api/agents',
        method: 'POST',
        key: insert.mutationId,
        authorization: 'Bearer tok',
        body: { org_id: ORG, name: insert.data!.name, id: insert.id },
      },
      {
        url: `https://api.test/api/agents/${uuid(1)}`,
        method: 'PATCH',
        key: update.mutationId,
        authorization: 'Bearer tok',
        body: { name: 'renamed' },
      },
      {
        url: `https://api.test/api/code-changes/${uuid(2)}`,
        method: 'DELETE',
        key: remove.mutationId,
        authorization: 'Bearer tok',
        body: undefined,
      },
    ]);
    expect(committed).toEqual([
      [insert.mutationId, result(insert.id, 10)],
      [update.mutationId, result(uuid(1), 11)],
      [remove.mutationId, result(uuid(2), 12)],
    ]);
  });

  it('sends a batch as one POST /api/mutations with a mutationId per entry, committed together', async () => {
    const { sender: s, api, committed } = sender();
    const batch = [
      mutation({ batchId: 'b' }),
      mutation({ batchId: 'b', action: 'update', id: uuid(1), data: { name: 'x' } }),
      mutation({ batchId: 'b', action: 'delete', id: uuid(2), data: null }),
    ];
    s.enqueue(batch);
    await settle();
    expect(api.requests).toHaveLength(1);
    expect(api.requests[0]).toMatchObject({
      url: 'https://api.test/api/mutations',
      method: 'POST',
      key: null,
    });
    expect(api.requests[0]!.body).toEqual({
      mutations: [
        {
          mutationId: batch[0]!.mutationId,
          model: 'Agent',
          action: 'insert',
          id: batch[0]!.id,
          data: { ...batch[0]!.data, id: batch[0]!.id },
        },
        {
          mutationId: batch[1]!.mutationId,
          model: 'Agent',
          action: 'update',
          id: uuid(1),
          data: { name: 'x' },
        },
        { mutationId: batch[2]!.mutationId, model: 'Agent', action: 'delete', id: uuid(2) },
      ],
    });
    api.commit(20);
    await settle();
    expect(committed.map(([key, r]) => [key, r.syncId])).toEqual(batch.map((m, i) => [m.mutationId, 20 + i]));
  });

  it('sends a batch of one as a batch, not through the REST endpoint', async () => {
    const { sender: s, api } = sender();
    s.enqueue([mutation({ batchId: 'solo' })]);
    await settle();
    expect(api.requests[0]!.url).toBe('https://api.test/api/mutations');
  });

  it('rejects a 2xx whose body is not a write result (or a batch with the wrong count)', async () => {
    const { sender: s, api, rejected, committed } = sender();
    const one = mutation();
    const batch = [mutation({ batchId: 'b' }), mutation({ batchId: 'b' })];
    s.enqueue([one]);
    s.enqueue(batch);
    await settle();
    api.answer(200, { ok: true });
    await settle();
    api.answer(200, { results: [result(batch[0]!.id, 1)] });
    await settle();
    expect(committed).toEqual([]);
    expect(rejected.map((e) => [e.mutationId, e.status, e.code])).toEqual([
      [one.mutationId, 200, 'bad_response'],
      [batch[0]!.mutationId, 200, 'bad_response'],
      [batch[1]!.mutationId, 200, 'bad_response'],
    ]);
  });
});

describe('ordering', () => {
  it('sends one request at a time, in the order the writes were made, even across retries', async () => {
    const { sender: s, api, log } = sender();
    const [a, b, c] = [mutation(), mutation(), mutation()];
    s.enqueue([a]);
    s.enqueue([b]);
    await settle();
    expect(api.requests.map((r) => r.key)).toEqual([a.mutationId]);
    api.answer(503, { error: { code: 'unavailable', message: 'later' } });
    await settle();
    s.enqueue([c]);
    // b waits behind a's retry rather than overtaking it.
    await expectResentAfter(api, 500);
    expect(api.requests.map((r) => r.key)).toEqual([a.mutationId, a.mutationId]);
    api.commit(1);
    await settle();
    api.commit(2);
    await settle();
    api.commit(3);
    await settle();
    expect(api.requests.map((r) => r.key)).toEqual([a, a, b, c].map((m) => m.mutationId));
    expect(log).toEqual([
      `retrying ${a.mutationId}`,
      `committed ${a.mutationId}`,
      `committed ${b.mutationId}`,
      `committed ${c.mutationId}`,
    ]);
    expect(api.waiting).toBe(0);
  });

  it('goes on with the next write after a final rejection', async () => {
    const { sender: s, api, log } = sender();
    const [a, b] = [mutation(), mutation()];
    s.enqueue([a]);
    s.enqueue([b]);
    await settle();
    api.answer(422, { error: { code: 'invalid_body', message: 'bad' } });
    await settle();
    api.commit(1);
    await settle();
    expect(log).toEqual([`rejected ${a.mutationId}`, `committed ${b.mutationId}`]);
  });
});

describe('retries', () => {
  it('retries network errors, 5xx and 429 with the same key and body, on a growing backoff', async () => {
    const { sender: s, api, retrying, committed } = sender();
    const m = mutation();
    s.enqueue([m]);
    await settle();
    api.fail(new TypeError('fetch failed'));
    await expectResentAfter(api, 500);
    api.answer(500, { error: { code: 'internal', message: 'oops' } });
    await expectResentAfter(api, 1_000);
    api.answer(502, 'Bad Gateway');
    await expectResentAfter(api, 2_000);
    api.answer(429, { error: { code: 'rate_limited', message: 'slow down' } });
    await expectResentAfter(api, 4_000);
    api.commit(7);
    await settle();
    expect(new Set(api.requests.map((r) => r.key))).toEqual(new Set([m.mutationId]));
    expect(new Set(api.requests.map((r) => JSON.stringify(r.body))).size).toBe(1);
    expect(retrying.map(([, attempts, message]) => [attempts, message])).toEqual([
      [1, 'network error: TypeError: fetch failed'],
      [2, 'HTTP 500'],
      [3, 'HTTP 502'],
      [4, 'HTTP 429'],
    ]);
    expect(committed).toEqual([[m.mutationId, result(m.id, 7)]]);
  });

  it('waits at least Retry-After (capped at 300 s) when the server gives one', async () => {
    const { sender: s, api } = sender();
    s.enqueue([mutation()]);
    await settle();
    api.answer(429, {}, { 'retry-after': '3' });
    await expectResentAfter(api, 3_000);
    api.answer(503, {}, { 'retry-after': '86400' });
    await expectResentAfter(api, 300_000);
  });

  it('continues the backoff of a write restored with earlier attempts', async () => {
    const { sender: s, api, retrying } = sender();
    s.enqueue([mutation({ attempts: 2 })]);
    await settle();
    api.answer(500, {});
    await expectResentAfter(api, 2_000);
    expect(retrying.map(([, attempts]) => attempts)).toEqual([3]);
  });

  it('does not retry a 4xx other than 401 and 429: the write, or the whole batch, is rejected', async () => {
    for (const status of [400, 403, 404, 409, 413, 422]) {
      const { sender: s, api, rejected, retrying } = sender();
      const batch = [mutation({ batchId: 'b' }), mutation({ batchId: 'b' })];
      const body = { error: { code: `code_${status}`, message: 'no' } };
      s.enqueue(batch);
      await settle();
      api.answer(status, body);
      await vi.advanceTimersByTimeAsync(600_000);
      expect(api.requests).toHaveLength(1);
      expect(retrying).toEqual([]);
      expect(rejected.map((e) => [e.mutationId, e.status, e.code, e.body])).toEqual(
        batch.map((m) => [m.mutationId, status, `code_${status}`, body]),
      );
    }
  });

  it('refreshes the token once on a 401 and resends; a second 401 is final', async () => {
    let n = 0;
    const getToken = vi.fn(async () => `fresh-${++n}`);
    const {
      sender: s,
      api,
      rejected,
      committed,
    } = sender({
      tokens: new TokenSource({ token: 'stale', getToken }),
    });
    const [a, b] = [mutation(), mutation()];
    s.enqueue([a]);
    s.enqueue([b]);
    await settle();
    api.answer(401, { error: { code: 'unauthorized', message: 'expired' } });
    await settle();
    api.commit(1);
    await settle();
    api.answer(401, { error: { code: 'unauthorized', message: 'expired' } });
    await settle();
    api.answer(401, { error: { code: 'unauthorized', message: 'still' } });
    await settle();
    expect(api.requests.map((r) => [r.key, r.authorization])).toEqual([
      [a.mutationId, 'Bearer stale'],
      [a.mutationId, 'Bearer fresh-1'],
      [b.mutationId, 'Bearer fresh-1'],
      [b.mutationId, 'Bearer fresh-2'],
    ]);
    expect(committed.map(([key]) => key)).toEqual([a.mutationId]);
    expect(rejected.map((e) => [e.mutationId, e.status, e.code])).toEqual([
      [b.mutationId, 401, 'unauthorized'],
    ]);
  });

  it('retryNow cuts the wait short; close ends it without a further request or hook', async () => {
    const { sender: s, api, log } = sender();
    const m = mutation();
    s.enqueue([m]);
    await settle();
    api.answer(500, {});
    await settle();
    s.retryNow();
    await settle();
    expect(api.requests).toHaveLength(2);
    api.answer(500, {});
    await settle();
    s.close();
    s.enqueue([mutation()]);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(api.requests).toHaveLength(2);
    expect(log).toEqual([`retrying ${m.mutationId}`, `retrying ${m.mutationId}`]);
  });

  it('calls no hook for an answer that arrives after close', async () => {
    const { sender: s, api, log } = sender();
    s.enqueue([mutation()]);
    await settle();
    s.close();
    api.commit(1);
    await settle();
    expect(log).toEqual([]);
  });
});

describe('writes made before storage is read', () => {
  it('holds new writes until release, then sends the restored ones first, batches regrouped', async () => {
    const { sender: s, api } = sender();
    s.hold();
    const fresh = mutation();
    s.enqueue([fresh]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(api.requests).toEqual([]);
    const restored = [
      mutation(),
      mutation({ batchId: 'b1' }),
      mutation({ batchId: 'b1' }),
      mutation({ batchId: 'b2' }),
      mutation(),
    ];
    // `fresh` is in storage too by now: it must not go out twice.
    s.release([...restored, fresh]);
    for (let i = 0; i < 5; i++) {
      await settle();
      api.commit(i * 10 + 1);
    }
    await settle();
    const sent = api.requests.map((r) => {
      const body = r.body as { mutations?: { mutationId: string }[] } | undefined;
      return body?.mutations ? body.mutations.map((m) => m.mutationId) : [r.key];
    });
    expect(sent).toEqual([
      [restored[0]!.mutationId],
      [restored[1]!.mutationId, restored[2]!.mutationId],
      [restored[3]!.mutationId],
      [restored[4]!.mutationId],
      [fresh.mutationId],
    ]);
    expect(api.waiting).toBe(0);
  });

  it('release with nothing restored sends what was queued while held', async () => {
    const { sender: s, api } = sender();
    s.hold();
    s.enqueue([mutation()]);
    await settle();
    expect(api.requests).toHaveLength(0);
    s.release();
    await settle();
    expect(api.requests).toHaveLength(1);
  });
});
