import { MODELS } from '@openagents/sync-protocol';
import { createLogger, type Principal } from '@openagents/sync-server-kit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CommitMember, MutationOutcome } from './commit';
import { APPEND_STREAM_DEFAULTS, createAppendStreams } from './stream-upload';

/**
 * The streaming upload's timing against a commit path that records what it is given (the
 * pipeline's interface; Postgres is exercised by stream-upload*.pg.test.ts). Timers are fake,
 * setImmediate is real: a turn of the loop passes, a timer never fires unless advanced.
 */
const agent: Principal = { sub: 'agent', scopes: ['*'], exp: Date.now() / 1000 + 3600 };
const encoder = new TextEncoder();
const turn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * `signal`: the commit path says "committed" at once and answers only when the test calls
 * `answer()` (a publish waiting for the bus); otherwise it answers at once and never signals.
 */
function open(coalesceMs: number, signal = false) {
  const commits: string[] = [];
  const held: (() => void)[] = [];
  const streams = createAppendStreams(
    {
      async commit(member: CommitMember, onCommitted?: () => void): Promise<MutationOutcome[]> {
        commits.push(member.mutations.map((m) => (m.action === 'append' ? m.append.text : '')).join('|'));
        if (signal) {
          onCommitted?.();
          await new Promise<void>((resolve) => held.push(resolve));
        }
        return member.mutations.map(() => ({
          status: 200,
          body: { data: { id: 'm1' }, scope: 'agent:1', syncId: 1 },
          replayed: false,
        })) as MutationOutcome[];
      },
      charge: () => ({ allowed: true, retryAfterSeconds: 0 }) as never,
      count: () => {},
      log: createLogger({ name: 'test', level: 'silent' }),
      isDraining: () => false,
    },
    { ...APPEND_STREAM_DEFAULTS, coalesceMs, maxLineBytes: 1 << 20 },
  );
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
    },
  });
  const request = new Request('http://worker/api/messages/m1/append-stream', {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/x-ndjson' },
    duplex: 'half',
  } as RequestInit);
  const response = streams.open(request, agent, MODELS.Message, 'm1');
  const acks: string[] = [];
  const decoder = new TextDecoder();
  void response.body!.pipeTo(
    new WritableStream({
      write: (chunk) => {
        acks.push(...decoder.decode(chunk).split('\n').filter(Boolean));
      },
    }),
  );
  return {
    commits,
    acks,
    /** Answers the oldest held commit. */
    answer: () => held.shift()?.(),
    send: (...lines: [number, string][]) =>
      controller.enqueue(
        encoder.encode(
          lines.map(([offset, text]) => `${JSON.stringify({ field: 'content', offset, text })}\n`).join(''),
        ),
      ),
    end: () => controller.close(),
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('append stream coalescing', () => {
  it('STREAM_COALESCE_MS 0: a piece goes to commit in the same turn, with no timer', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const s = open(0);
    // Two lines in one chunk join; nothing waits for a timer.
    s.send([0, 'a'], [1, 'b']);
    for (let i = 0; i < 3; i++) await turn();
    expect(s.commits).toEqual(['ab']);
    s.send([2, 'c']);
    for (let i = 0; i < 3; i++) await turn();
    expect(s.commits).toEqual(['ab', 'c']);
    s.end();
  });

  it("sends the reply's next commit once the last one is committed, before its answer", async () => {
    const s = open(0, true);
    s.send([0, 'a']);
    for (let i = 0; i < 3; i++) await turn();
    s.send([1, 'b']);
    for (let i = 0; i < 3; i++) await turn();
    // `a` is committed but unanswered (its publish not acknowledged): `b` is already on its way.
    expect(s.commits).toEqual(['a', 'b']);
    expect(s.acks).toEqual([]);
    s.answer();
    s.answer();
    s.end();
    for (let i = 0; i < 5; i++) await turn();
    // Acknowledged in order, and `done` only after both.
    expect(s.acks.map((line) => JSON.parse(line))).toEqual([
      { offset: 0, length: 1, syncId: 1 },
      { offset: 1, length: 2, syncId: 1 },
      { done: true, length: 2 },
    ]);
  });

  it('a window of 40 ms holds its pieces until the timer fires', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const s = open(40);
    s.send([0, 'a']);
    for (let i = 0; i < 3; i++) await turn();
    s.send([1, 'b']);
    for (let i = 0; i < 3; i++) await turn();
    expect(s.commits).toEqual([]);
    vi.advanceTimersByTime(40);
    for (let i = 0; i < 3; i++) await turn();
    expect(s.commits).toEqual(['ab']);
    s.end();
  });
});
