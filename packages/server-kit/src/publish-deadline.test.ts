import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPublishDeadline } from './publish-deadline';

/** A promise settled from outside: a publish Redis has not answered yet. */
function pending() {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('createPublishDeadline', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gives the publishes of one turn one timer, and rejects those still open when it fires', async () => {
    const within = createPublishDeadline(1000);
    const sent = [pending(), pending(), pending()];
    const answers = sent.map((s) =>
      within(s.promise).then(
        () => 'ok',
        (err: Error) => err.message,
      ),
    );
    expect(vi.getTimerCount()).toBe(1);
    sent[0]!.resolve();
    sent[1]!.reject(new Error('connection lost'));
    await vi.advanceTimersByTimeAsync(999);
    await vi.advanceTimersByTimeAsync(1);
    expect(await Promise.all(answers)).toEqual([
      'ok',
      'connection lost',
      'redis publish timed out after 1000 ms',
    ]);
  });

  it('clears the timer once every publish of the turn has settled', async () => {
    const within = createPublishDeadline(1000);
    const a = pending();
    const b = pending();
    const answers = Promise.all([within(a.promise), within(b.promise)]);
    a.resolve();
    await Promise.resolve();
    expect(vi.getTimerCount()).toBe(1);
    b.resolve();
    await answers;
    expect(vi.getTimerCount()).toBe(0);
  });

  it('starts a new timer for the publishes of a later turn', async () => {
    const within = createPublishDeadline(1000);
    const first = within(pending().promise).catch((err: Error) => err.message);
    await vi.advanceTimersByTimeAsync(600);
    const second = within(pending().promise).catch((err: Error) => err.message);
    expect(vi.getTimerCount()).toBe(2);
    await vi.advanceTimersByTimeAsync(400);
    expect(await first).toBe('redis publish timed out after 1000 ms');
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(600);
    expect(await second).toBe('redis publish timed out after 1000 ms');
  });
});
