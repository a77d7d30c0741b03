import { afterEach, describe, expect, it, vi } from 'vitest';
import { planReply, runSimulatedReply, SimulatedAgentError, tokenize } from './simulated-agent';

const AGENT = '6f1d3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e5f';
const ORG = '00000000-0000-4000-8000-000000000001';

interface Call {
  method: string;
  path: string;
  body: Record<string, unknown>;
  headers: Record<string, string>;
}

/** Records every request and answers with the given status script (default 200). */
function recordingFetch(statuses: (number | 'network')[] = []) {
  const calls: Call[] = [];
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    calls.push({
      method: init?.method ?? 'GET',
      path: url.pathname,
      body: JSON.parse(String(init?.body ?? '{}')),
      headers: init?.headers as Record<string, string>,
    });
    const status = statuses.shift() ?? 200;
    if (status === 'network') throw new TypeError('fetch failed');
    return new Response(
      JSON.stringify(
        status < 300
          ? { data: {}, scope: `agent:${AGENT}`, syncId: calls.length }
          : { error: { code: 'x', message: 'x' } },
      ),
      {
        status,
      },
    );
  }) as typeof fetch;
  return { calls, fetchFn };
}

/** A deterministic random source. */
function seq(...values: number[]) {
  let i = 0;
  return () => values[i++ % values.length]!;
}

const fast = { min: 0, max: 1 };

afterEach(() => {
  vi.useRealTimers();
});

describe('tokenize', () => {
  it('keeps whitespace so the tokens join back to the text', () => {
    const text = 'Hello  world,\n\nthis is\ta test.';
    const tokens = tokenize(text);
    expect(tokens.join('')).toBe(text);
    expect(tokens.length).toBe(6);
  });

  it('returns no tokens for blank text', () => {
    expect(tokenize('   ')).toEqual([]);
  });
});

describe('planReply', () => {
  it('proposes a code change when the prompt asks for code, and a payment when it asks to pay', () => {
    const plan = planReply('Please fix the bug and pay the invoice', seq(0.9));
    expect(plan.codeChange?.diff).toContain('@@');
    expect(plan.payment?.currency).toBe('USD');
    expect(plan.payment!.amount).toBeGreaterThan(0);
  });

  it('proposes neither for a plain question when chance says no', () => {
    const plan = planReply('What is the weather like?', seq(0.9));
    expect(plan.codeChange).toBeNull();
    expect(plan.payment).toBeNull();
    expect(plan.steps.length).toBeGreaterThan(1);
  });

  it('keeps a hostile prompt as plain text, shortened', () => {
    const plan = planReply(`<script>alert(1)</script> */ ${'x'.repeat(10_000)}`, seq(0.9));
    expect(plan.text.length).toBeLessThan(2_000);
    expect(plan.steps[0]!.length).toBeLessThan(200);
  });
});

describe('runSimulatedReply', () => {
  it('streams the reply as appends to one assistant message, between running and idle', async () => {
    const { calls, fetchFn } = recordingFetch();
    const result = await runSimulatedReply({
      baseUrl: 'http://sync.test',
      token: 'tok',
      agentId: AGENT,
      orgId: ORG,
      prompt: 'fix the login code and buy credits',
      fetch: fetchFn,
      tokenDelayMs: fast,
      random: seq(0.5),
    });

    expect(calls[0]).toMatchObject({
      method: 'PATCH',
      path: `/api/agents/${AGENT}`,
      body: { status: 'running' },
    });
    expect(calls.at(-1)).toMatchObject({
      method: 'PATCH',
      path: `/api/agents/${AGENT}`,
      body: { status: 'idle' },
    });
    expect(calls[1]).toMatchObject({
      method: 'POST',
      path: '/api/messages',
      body: { id: result.messageId, agent_id: AGENT, role: 'assistant', content: '' },
    });
    for (const call of calls) expect(call.headers.authorization).toBe('Bearer tok');

    // The content is streamed as offset-checked appends: each continues where the last ended,
    // together they are the reply, and none carries the whole text so far.
    const appends = calls.filter(
      (c) => c.method === 'POST' && c.path === `/api/messages/${result.messageId}/append`,
    );
    expect(calls.some((c) => c.method === 'PATCH' && c.path.startsWith('/api/messages/'))).toBe(false);
    expect(appends.length).toBe(result.appendRequests);
    expect(result.tokens).toBe(tokenize(result.content).length);
    expect(appends.length).toBeGreaterThan(1);
    expect(appends.length).toBeLessThanOrEqual(result.tokens);
    let streamed = '';
    for (const a of appends) {
      expect(a.body).toEqual({ field: 'content', offset: streamed.length, text: expect.any(String) });
      streamed += String(a.body.text);
    }
    expect(streamed).toBe(result.content);

    const steps = calls.filter((c) => c.path === '/api/reasoning-steps');
    expect(steps.length).toBe(result.reasoningStepIds.length);
    expect(steps.length).toBeGreaterThanOrEqual(3);
    for (const s of steps) expect(s.body).toMatchObject({ agent_id: AGENT, message_id: result.messageId });

    const codeChange = calls.find((c) => c.path === '/api/code-changes');
    expect(codeChange?.body).toMatchObject({ id: result.codeChangeId, agent_id: AGENT });
    const payment = calls.find((c) => c.path === '/api/payments');
    expect(payment?.body).toMatchObject({
      id: result.paymentId,
      org_id: ORG,
      agent_id: AGENT,
      status: 'pending',
    });

    // Creates carry their id as idempotency key, so a retried POST never duplicates a record.
    for (const c of calls.filter((c) => c.method === 'POST')) {
      expect(c.headers['idempotency-key']).toBe(c.body.id);
    }
  });

  it('skips the payment when it does not know the org', async () => {
    const { calls, fetchFn } = recordingFetch();
    const result = await runSimulatedReply({
      baseUrl: 'http://sync.test',
      token: 'tok',
      agentId: AGENT,
      prompt: 'pay the invoice',
      fetch: fetchFn,
      tokenDelayMs: fast,
      random: seq(0.9),
    });
    expect(result.paymentId).toBeNull();
    expect(calls.some((c) => c.path === '/api/payments')).toBe(false);
  });

  it('retries 503 and network errors with the same idempotency key', async () => {
    const { calls, fetchFn } = recordingFetch([200, 503, 'network', 200]);
    const result = await runSimulatedReply({
      baseUrl: 'http://sync.test',
      token: 'tok',
      agentId: AGENT,
      prompt: 'hello',
      fetch: fetchFn,
      tokenDelayMs: fast,
      random: seq(0.9),
    });
    const creates = calls.filter((c) => c.path === '/api/messages');
    expect(creates.length).toBe(3);
    expect(new Set(creates.map((c) => c.headers['idempotency-key'])).size).toBe(1);
    expect(result.content.length).toBeGreaterThan(0);
  });

  it('does not retry a 403, and marks the agent as errored', async () => {
    const { calls, fetchFn } = recordingFetch([200, 403]);
    const error = await runSimulatedReply({
      baseUrl: 'http://sync.test',
      token: 'tok',
      agentId: AGENT,
      prompt: 'hello',
      fetch: fetchFn,
      tokenDelayMs: fast,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SimulatedAgentError);
    expect((error as SimulatedAgentError).status).toBe(403);
    expect(calls.filter((c) => c.path === '/api/messages').length).toBe(1);
    expect(calls.at(-1)).toMatchObject({ path: `/api/agents/${AGENT}`, body: { status: 'error' } });
  });

  it('stops streaming when an append is refused, and marks the agent as errored', async () => {
    // running, message, first reasoning step, then the first append is refused.
    const { calls, fetchFn } = recordingFetch([200, 200, 200, 400]);
    const error = await runSimulatedReply({
      baseUrl: 'http://sync.test',
      token: 'tok',
      agentId: AGENT,
      prompt: 'hello',
      fetch: fetchFn,
      tokenDelayMs: fast,
      random: seq(0.9),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SimulatedAgentError);
    expect((error as SimulatedAgentError).status).toBe(400);
    expect(calls.filter((c) => c.path.endsWith('/append')).length).toBe(1);
    expect(calls.at(-1)).toMatchObject({ path: `/api/agents/${AGENT}`, body: { status: 'error' } });
  });

  it('sends its tokens two per append (the writer window), none held past 60 ms', async () => {
    vi.useFakeTimers({ now: 0 });
    const { calls, fetchFn } = recordingFetch();
    const sentAt: number[] = [];
    const timed = ((input: string | URL | Request, init?: RequestInit) => {
      if (String(input).endsWith('/append')) sentAt.push(Date.now());
      return fetchFn(input, init);
    }) as typeof fetch;
    const run = runSimulatedReply({
      baseUrl: 'http://sync.test',
      token: 'tok',
      agentId: AGENT,
      prompt: 'hello',
      fetch: timed,
      tokenDelayMs: { min: 45, max: 45 },
      random: seq(0.9),
    });
    await vi.advanceTimersByTimeAsync(60_000);
    const result = await run;
    const tokens = tokenize(result.content);
    const texts = calls.filter((c) => c.path.endsWith('/append')).map((c) => c.body.text);
    const pairs = tokens.flatMap((t, i) => (i % 2 === 0 ? [t + (tokens[i + 1] ?? '')] : []));
    expect(texts).toEqual(pairs);
    // Token 2k is written at 45·(2k+1) ms (after the first call's few ms): its pair goes 45 ms later.
    for (const [k, at] of sentAt.slice(0, -1).entries()) expect(at).toBe(45 * (2 * k + 2));
  });

  it('stops streaming when aborted', async () => {
    vi.useFakeTimers();
    const { calls, fetchFn } = recordingFetch();
    const controller = new AbortController();
    const run = runSimulatedReply({
      baseUrl: 'http://sync.test',
      token: 'tok',
      agentId: AGENT,
      prompt: 'hello',
      fetch: fetchFn,
      tokenDelayMs: { min: 20, max: 20 },
      signal: controller.signal,
    });
    // Aborted once the reply is streaming (its first append went out)…
    await vi.waitFor(() => expect(calls.some((c) => c.path.endsWith('/append'))).toBe(true));
    let outcome: unknown = 'pending';
    run.then(
      () => (outcome = 'finished'),
      (error: unknown) => (outcome = error),
    );
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome).toBe(controller.signal.reason);
    // …nothing more is sent, however long the remaining tokens would have taken.
    const count = calls.length;
    await vi.advanceTimersByTimeAsync(600_000);
    expect(calls.length).toBe(count);
    expect(calls.some((c) => c.body.status === 'idle')).toBe(false);
  });
});
