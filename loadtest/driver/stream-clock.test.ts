import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type ClockedReply, StreamClock, type StreamPhase } from './stream-clock';
import { decodeToken } from './stream-text';

const replies = (n: number): ClockedReply[] => Array.from({ length: n }, () => ({ startAt: 0, written: 0 }));

describe('StreamClock', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('drives every reply from one timer, on time, with the tick time in the token', async () => {
    const list = replies(50);
    const clock = new StreamClock(list, {
      tokens: 30,
      tokensPerSecond: 30,
      startSpreadMs: 500,
      openingMs: 100,
      tickMs: 5,
    });
    const writes: { at: number; count: number; stamp: number }[] = [];
    const done = clock.run((r, token, count, now) => {
      r.written += count;
      writes.push({ at: now, count, stamp: decodeToken(token, 0) });
    });
    // One interval, however many replies.
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(2_000);
    await done;
    expect(vi.getTimerCount()).toBe(0);
    expect(list.every((r) => r.written === 30)).toBe(true);
    expect(clock.tokensWritten).toBe(50 * 30);
    // A token is written at the first tick at or after its time, and says when.
    expect(writes.every((w) => w.stamp === w.at)).toBe(true);
    expect(writes.every((w) => w.count === 1)).toBe(true);
    // 30 tokens at 30/s from the last reply's start (490 ms): the last one is due at 1,457 ms.
    expect(clock.writingMs).toBeGreaterThanOrEqual(1_457);
    expect(clock.writingMs).toBeLessThan(1_457 + 5 + 1);
  });

  it('opens the steady window once every reply is past its opening and closes it at the first last token', async () => {
    const list = replies(4);
    const clock = new StreamClock(list, {
      tokens: 60,
      tokensPerSecond: 30,
      startSpreadMs: 400,
      openingMs: 500,
      tickMs: 5,
    });
    const phases: [StreamPhase, number][] = [];
    clock.onPhase = (phase) => phases.push([phase, Date.now() - 1_000_000]);
    const done = clock.run((r, _token, count) => {
      r.written += count;
    });
    await vi.advanceTimersByTimeAsync(3_000);
    await done;
    // The last reply starts at 300 ms and opens until 800 ms; the first writes its 60th token at
    // 59/30 s = 1,967 ms.
    expect(phases.map(([p]) => p)).toEqual(['start', 'steady', 'steady-end']);
    expect(phases[1]![1]).toBe(800);
    expect(phases[2]![1]).toBe(1_970);
    expect(clock.steadyMs).toBe(1_170);
    // Tokens written inside the window: all four replies at 30/s for ~1.17 s.
    expect(clock.steadyTokens).toBeGreaterThanOrEqual(4 * 34);
    expect(clock.steadyTokens).toBeLessThanOrEqual(4 * 36);
  });

  it('marks the whole writing time when the replies are too short for a steady window', async () => {
    const list = replies(2);
    const clock = new StreamClock(list, {
      tokens: 10,
      tokensPerSecond: 100,
      startSpreadMs: 0,
      openingMs: 1_000,
      tickMs: 5,
    });
    const phases: StreamPhase[] = [];
    clock.onPhase = (phase) => phases.push(phase);
    const done = clock.run((r, _token, count) => {
      r.written += count;
    });
    await vi.advanceTimersByTimeAsync(1_000);
    await done;
    expect(phases).toEqual(['start', 'steady', 'steady-end']);
    expect(clock.steadyTokens).toBe(20);
  });
});
