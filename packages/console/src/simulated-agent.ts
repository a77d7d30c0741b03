import { createStreamWriter, MutationError, SyncClosedError } from '@openagents/sync-client';
import { MODEL_PATHS, type ModelName } from '@openagents/sync-protocol';
import { newId } from './new-id';

/**
 * A stand-in for a real LLM agent, run by the browser after the user sends a message. It writes
 * only through the public REST API, exactly as a worker-side agent would, so every other page
 * (and this one) sees the reply arrive through the gateway like any other synced change:
 *
 * 1. the agent goes `running`, and a first reasoning step appears;
 * 2. an empty assistant message is created, then its text is streamed into it with the client's
 *    stream writer, one token every 30–60 ms: offset-checked pieces whose events carry only the
 *    new text, batched by the writer two tokens (or 60 ms) at a time — on ONE streaming upload
 *    per reply where the runtime can stream a request body (Node: a worker-side agent, the load
 *    driver), else as appends, tokens written while a request is in flight going out together as
 *    one append (browsers);
 * 3. more reasoning steps are interleaved; a code change and/or a payment are proposed when the
 *    prompt asks for one (or, now and then, at random);
 * 4. the agent goes back to `idle` (or `error` if a write failed for good).
 */
export interface SimulatedReplyOptions {
  /** Origin of the API, e.g. `http://127.0.0.1:8787` (no trailing `/api`). */
  baseUrl: string;
  token: string;
  agentId: string;
  /** The agent's org, needed to propose a payment (payments live in the org scope). */
  orgId?: string;
  /** What the user wrote; the reply, reasoning and side effects are derived from it. */
  prompt: string;
  fetch?: typeof fetch;
  /**
   * How the tokens travel (the stream writer's `upload`): `auto` (default) streams them on one
   * request in Node with its own fetch and appends them in browsers; `stream` forces the streaming
   * upload (falling back to appends if the server has none), `append` one request per batch.
   */
  upload?: 'auto' | 'stream' | 'append';
  /** Milliseconds between two tokens; the default streams at 30–60 ms. */
  tokenDelayMs?: { min: number; max: number };
  /** Source of randomness in [0, 1); injectable so tests are deterministic. */
  random?: () => number;
  /** Called after each write the agent made, in order (the console counts them for display). */
  onWrite?: (write: SimulatedWrite) => void;
  signal?: AbortSignal;
}

export interface SimulatedWrite {
  model: ModelName;
  method: 'POST' | 'PATCH';
  id: string;
}

export interface SimulatedReplyResult {
  messageId: string;
  content: string;
  reasoningStepIds: string[];
  codeChangeId: string | null;
  paymentId: string | null;
  /** How many tokens were written into the message. */
  tokens: number;
  /**
   * How many requests carried them: streaming uploads opened (1 unless one was cut), or append
   * requests (fewer than tokens when the API is slower than the stream).
   */
  appendRequests: number;
}

/** Defaults for the simulated agent's pacing and retries. */
export const SIMULATED_AGENT_DEFAULTS = {
  tokenDelayMs: { min: 30, max: 60 },
  /** Attempts per write when the API answers 429/5xx or the network fails. */
  attempts: 4,
  retryBaseMs: 150,
  /**
   * The writer's client-side window (docs/client.md, "Streaming a reply"): a window closes at its
   * second token, or 60 ms after its first. At 30–60 ms a token that makes ~2 tokens per append
   * event (each event costs ~400 bytes to every viewer whatever it carries), and no token waits
   * more than 60 ms before it is sent, so each is durable well within 100 ms.
   */
  coalesceMs: 60,
  coalescePieces: 2,
} as const;

/** Raised when the API refuses a write for good (4xx other than 429, or retries exhausted). */
export class SimulatedAgentError extends Error {
  readonly status: number | null;
  constructor(message: string, status: number | null, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SimulatedAgentError';
    this.status = status;
  }
}

/**
 * Streams one simulated assistant reply into `agentId`'s chat through the API.
 *
 * @example
 * await runSimulatedReply({ baseUrl: location.origin, token, agentId, orgId, prompt: 'Fix the login bug' });
 */
export async function runSimulatedReply(options: SimulatedReplyOptions): Promise<SimulatedReplyResult> {
  const random = options.random ?? Math.random;
  const delay = options.tokenDelayMs ?? SIMULATED_AGENT_DEFAULTS.tokenDelayMs;
  const api = new AgentApi(options);
  const plan = planReply(options.prompt, random);
  const messageId = newId();
  const reasoningStepIds: string[] = [];
  const step = async (content: string) => {
    const id = newId();
    await api.create('ReasoningStep', {
      id,
      agent_id: options.agentId,
      message_id: messageId,
      content,
    });
    reasoningStepIds.push(id);
  };

  await api.update('Agent', options.agentId, { status: 'running' });
  try {
    await api.create('Message', { id: messageId, agent_id: options.agentId, role: 'assistant', content: '' });
    await step(plan.steps[0]!);

    const tokens = tokenize(plan.text);
    // Reasoning steps 2.. are spread evenly through the stream, as a real agent thinks while it writes.
    const stepEvery = Math.max(1, Math.floor(tokens.length / plan.steps.length));
    let content = '';
    let failure: unknown;
    const writer = createStreamWriter({
      baseUrl: options.baseUrl,
      token: options.token,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.upload ? { upload: options.upload } : {}),
      model: 'Message',
      id: messageId,
      field: 'content',
      offset: 0,
      maxRetries: SIMULATED_AGENT_DEFAULTS.attempts - 1,
      coalesceMs: SIMULATED_AGENT_DEFAULTS.coalesceMs,
      coalescePieces: SIMULATED_AGENT_DEFAULTS.coalescePieces,
      backoff: { initialDelayMs: SIMULATED_AGENT_DEFAULTS.retryBaseMs * 2, maxDelayMs: 5_000 },
      hooks: {
        appended: () => options.onWrite?.({ model: 'Message', method: 'POST', id: messageId }),
        failed: (error) => {
          failure = error;
        },
      },
    });
    for (let i = 0; i < tokens.length; i++) {
      await sleep(delay.min + random() * (delay.max - delay.min), options.signal);
      if (failure) break; // end() below reports it
      content += tokens[i];
      writer.write(tokens[i]!);
      const stepIndex = (i + 1) / stepEvery;
      if (Number.isInteger(stepIndex) && stepIndex < plan.steps.length) await step(plan.steps[stepIndex]!);
    }
    const streamed = await writer.end().catch((error: unknown) => {
      if (error instanceof SyncClosedError && options.signal?.aborted) throw options.signal.reason;
      throw error instanceof MutationError
        ? new SimulatedAgentError(
            `append to message ${messageId} failed: ${error.message}`,
            error.status === 0 ? null : error.status,
            { cause: error },
          )
        : error;
    });

    let codeChangeId: string | null = null;
    if (plan.codeChange) {
      codeChangeId = newId();
      await api.create('CodeChange', { id: codeChangeId, agent_id: options.agentId, ...plan.codeChange });
    }
    let paymentId: string | null = null;
    if (plan.payment && options.orgId) {
      paymentId = newId();
      await api.create('Payment', {
        id: paymentId,
        org_id: options.orgId,
        agent_id: options.agentId,
        amount: plan.payment.amount,
        currency: plan.payment.currency,
        status: 'pending',
      });
    }
    await api.update('Agent', options.agentId, { status: 'idle' });
    return {
      messageId,
      content,
      reasoningStepIds,
      codeChangeId,
      paymentId,
      tokens: tokens.length,
      appendRequests: streamed.requests,
    };
  } catch (error) {
    // Best effort: leave the agent visibly failed rather than stuck in `running`.
    if (!options.signal?.aborted) {
      await api.update('Agent', options.agentId, { status: 'error' }).catch(() => {});
    }
    throw error;
  }
}

/** What the simulated agent will say and do, decided up front from the prompt. */
export interface ReplyPlan {
  text: string;
  steps: string[];
  codeChange: { path: string; diff: string } | null;
  payment: { amount: number; currency: string } | null;
}

const CODE_WORDS = /\b(code|fix|bug|refactor|implement|function|patch|diff|test)s?\b/i;
const PAYMENT_WORDS = /\b(pay|payment|buy|purchase|invoice|charge|order|subscribe)s?\b/i;

/** Picks the reply text, reasoning steps and side effects for a prompt. */
export function planReply(prompt: string, random: () => number = Math.random): ReplyPlan {
  const topic = summarise(prompt);
  const wantsCode = CODE_WORDS.test(prompt) || random() < 0.2;
  const wantsPayment = PAYMENT_WORDS.test(prompt) || random() < 0.15;
  const file = pick(FILES, random);
  const steps = [
    `Reading the request: "${topic}".`,
    'Looking through the workspace for relevant context.',
    wantsCode ? `Drafting a change to ${file}.` : 'Weighing two ways to answer and picking the simpler one.',
    wantsPayment
      ? 'Estimating the cost of the external API calls this needs.'
      : 'Checking the answer once more.',
  ];
  const paragraphs = [
    `${pick(OPENERS, random)} "${topic}".`,
    pick(BODIES, random),
    wantsCode
      ? `I have proposed a small change to \`${file}\`: you can review the diff in the Code tab and apply or reject it.`
      : pick(CLOSERS, random),
  ];
  if (wantsPayment)
    paragraphs.push('This needs a paid API call, so I have queued a pending payment for approval.');
  return {
    text: paragraphs.join('\n\n'),
    steps,
    codeChange: wantsCode ? { path: file, diff: sampleDiff(file, topic) } : null,
    payment: wantsPayment ? { amount: 100 + Math.floor(random() * 4900), currency: 'USD' } : null,
  };
}

/** Splits text into word-ish tokens that keep their leading whitespace, like an LLM stream. */
export function tokenize(text: string): string[] {
  return text.match(/\s*\S+/g) ?? [];
}

const OPENERS = [
  'Sure, here is how I would approach',
  'Good question. Let me work through',
  'Happy to help with',
  'Here is my take on',
];
const BODIES = [
  'First I would pin down what "done" looks like, then make the smallest change that gets there, and keep every step observable so we can roll back if anything surprises us.',
  'The quickest safe path is to reproduce the behaviour, write down the expected outcome, and only then change code. That keeps the fix honest and gives us a regression test for free.',
  'There are two reasonable options. The simple one covers the common case today; the general one costs more up front but avoids a second migration later. I would start simple.',
];
const CLOSERS = [
  'Let me know if you want me to go deeper on any part of this.',
  'Tell me which direction you prefer and I will carry on from there.',
  'That should be enough to get going; ping me if something does not add up.',
];
const FILES = [
  'src/auth/session.ts',
  'src/billing/invoice.ts',
  'src/agents/scheduler.ts',
  'src/api/routes.ts',
];

function sampleDiff(path: string, topic: string): string {
  const note = topic.replace(/\*\//g, '* /').slice(0, 60);
  return [
    `--- a/${path}`,
    `+++ b/${path}`,
    '@@ -12,7 +12,9 @@',
    ' export async function run(input: Input): Promise<Output> {',
    '-  const result = await step(input);',
    '-  return result;',
    `+  // ${note}`,
    '+  const result = await step(input);',
    '+  if (!result.ok) throw new StepError(result.reason);',
    '+  return result.value;',
    ' }',
    '',
  ].join('\n');
}

function summarise(prompt: string): string {
  const oneLine = prompt.replace(/\s+/g, ' ').trim();
  return oneLine.length > 80 ? `${oneLine.slice(0, 77)}...` : oneLine;
}

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.min(items.length - 1, Math.floor(random() * items.length))]!;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The few REST calls the agent makes, with retries on 429/5xx/network errors. */
class AgentApi {
  #options: SimulatedReplyOptions;
  #fetch: typeof fetch;

  constructor(options: SimulatedReplyOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  create(model: ModelName, data: Record<string, unknown> & { id: string }): Promise<void> {
    // The id doubles as the idempotency key: a retried POST never creates a second record.
    return this.#send('POST', model, `/api/${MODEL_PATHS[model]}`, data, data.id, data.id);
  }

  update(model: ModelName, id: string, data: Record<string, unknown>): Promise<void> {
    return this.#send('PATCH', model, `/api/${MODEL_PATHS[model]}/${id}`, data, id, null);
  }

  async #send(
    method: 'POST' | 'PATCH',
    model: ModelName,
    path: string,
    body: unknown,
    id: string,
    idempotencyKey: string | null,
  ): Promise<void> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#options.token}`,
      'content-type': 'application/json',
    };
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    const url = new URL(path, this.#options.baseUrl).toString();
    let lastError: SimulatedAgentError | null = null;
    for (let attempt = 0; attempt < SIMULATED_AGENT_DEFAULTS.attempts; attempt++) {
      if (attempt > 0) {
        await sleep(
          SIMULATED_AGENT_DEFAULTS.retryBaseMs * 2 ** (attempt - 1) * random01(),
          this.#options.signal,
        );
      }
      let response: Response;
      try {
        const init: RequestInit = { method, headers, body: JSON.stringify(body) };
        if (this.#options.signal) init.signal = this.#options.signal;
        response = await this.#fetch(url, init);
      } catch (cause) {
        if (this.#options.signal?.aborted) throw cause;
        lastError = new SimulatedAgentError(`${method} ${path} failed: network error`, null, { cause });
        continue;
      }
      if (response.ok) {
        await response.body?.cancel().catch(() => {});
        this.#options.onWrite?.({ model, method, id });
        return;
      }
      const detail = await response.text().catch(() => '');
      lastError = new SimulatedAgentError(
        `${method} ${path} answered ${response.status}: ${detail.slice(0, 200)}`,
        response.status,
      );
      if (response.status !== 429 && response.status < 500) throw lastError;
    }
    throw lastError ?? new SimulatedAgentError(`${method} ${path} failed`, null);
  }
}

/** Full jitter for retries; kept apart from the injected `random` so retries never skew the plan. */
function random01(): number {
  return 0.5 + Math.random() / 2;
}
