import type { SyncEvent } from '@openagents/sync-protocol';
import { createMemoryBus } from '@openagents/sync-server-kit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  event,
  events,
  FakeLog,
  ids,
  metricValue,
  SCOPE,
  silentLog,
  unitMetrics,
} from '../test/support/fake-log';
import { ScopeStream, type StreamSubscriber } from './scope-stream';

const HOLD_MS = 100;

/** A stream over an in-memory log, recording every batch it fans out. */
function setup() {
  const log = new FakeLog();
  const metrics = unitMetrics();
  const fannedOut: SyncEvent[][] = [];
  const stream = new ScopeStream(SCOPE, {
    bus: createMemoryBus(),
    reads: log,
    metrics,
    log: silentLog,
    holdMs: HOLD_MS,
    fanOut: (_stream, batch) => fannedOut.push([...batch]),
  });
  const delivered = () => fannedOut.flat().map((e) => e.id);
  const receive = (...list: SyncEvent[]) => stream.receive({ scope: SCOPE, events: list });
  const counter = (name: 'gapFills' | 'duplicatesDropped', labels: Record<string, string> = {}) =>
    metricValue(metrics[name], labels);
  return { log, stream, fannedOut, delivered, receive, counter };
}

/** A subscriber still catching up: records what the stream buffers for it. */
function catchingUp(): StreamSubscriber & { buffered: number[]; restarts: number[] } {
  const buffered: number[] = [];
  const restarts: number[] = [];
  return {
    isLive: false,
    buffered,
    restarts,
    bufferEvents: (list) => buffered.push(...ids(list)),
    restart: (from) => restarts.push(from),
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ScopeStream', () => {
  it('holds an early event until the missing one arrives, then emits both in order in one batch', async () => {
    const { stream, fannedOut, receive, log } = setup();
    stream.anchor(0);
    receive(event(2));
    await vi.advanceTimersByTimeAsync(HOLD_MS - 1);
    expect(fannedOut).toEqual([]);
    receive(event(1));
    await vi.advanceTimersByTimeAsync(0);
    expect(fannedOut.map(ids)).toEqual([[1, 2]]);
    expect(stream.lastId).toBe(2);
    expect(log.calls).toEqual([]);
  });

  it('fills a gap from the log once the hold expires, and emits the log’s events in order', async () => {
    const { stream, delivered, receive, log, counter } = setup();
    log.append(3);
    stream.anchor(0);
    receive(event(3));
    await vi.advanceTimersByTimeAsync(HOLD_MS - 1);
    expect(log.count('fresh')).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(log.calls).toEqual([{ kind: 'fresh', from: 0 }]);
    expect(delivered()).toEqual([1, 2, 3]);
    expect(await counter('gapFills', { reason: 'gap' })).toBe(1);
  });

  it('drops duplicates: an id at or below lastId, or one already held, is emitted once', async () => {
    const { stream, delivered, receive, counter } = setup();
    stream.anchor(0);
    receive(event(1));
    await vi.advanceTimersByTimeAsync(0);
    receive(event(1), event(3));
    receive(event(3));
    receive(event(2));
    await vi.advanceTimersByTimeAsync(0);
    expect(delivered()).toEqual([1, 2, 3]);
    expect(await counter('duplicatesDropped')).toBe(2);
  });

  it('holds what arrives before it is anchored and starts after the anchor', async () => {
    const { stream, delivered, receive } = setup();
    receive(event(2), event(3), event(4));
    await vi.advanceTimersByTimeAsync(HOLD_MS * 10);
    expect(delivered()).toEqual([]);
    stream.anchor(2);
    expect(delivered()).toEqual([3, 4]);
  });

  it('buffers batches for subscribers still catching up', async () => {
    const { stream, receive } = setup();
    const subscriber = catchingUp();
    stream.addSubscriber(subscriber);
    stream.anchor(0);
    receive(event(1), event(2));
    await vi.advanceTimersByTimeAsync(0);
    expect(subscriber.buffered).toEqual([1, 2]);
  });

  it('backs off its gap fills while the log fails, and fills once it answers', async () => {
    const { stream, delivered, receive, log } = setup();
    log.append(2);
    log.fail('unavailable', 'unavailable');
    stream.anchor(0);
    receive(event(2));
    await vi.advanceTimersByTimeAsync(HOLD_MS); // first fill: fails
    expect(log.count('fresh')).toBe(1);
    await vi.advanceTimersByTimeAsync(2 * HOLD_MS - 1); // the second waits twice as long
    expect(log.count('fresh')).toBe(1);
    await vi.advanceTimersByTimeAsync(1); // second fill: fails
    expect(log.count('fresh')).toBe(2);
    await vi.advanceTimersByTimeAsync(4 * HOLD_MS); // third: answers
    expect(log.count('fresh')).toBe(3);
    expect(delivered()).toEqual([1, 2]);
  });

  it('restarts every subscriber from its position when the log pruned its cursor', async () => {
    const { stream, receive, log } = setup();
    const subscriber = catchingUp();
    stream.addSubscriber(subscriber);
    stream.anchor(5);
    log.fail('reset_required');
    receive(event(8));
    await vi.advanceTimersByTimeAsync(HOLD_MS);
    expect(subscriber.restarts).toEqual([5]);
    expect(stream.lastId).toBeNull();
  });

  it('runs one fill at a time; a request during a fill makes it read once more', async () => {
    const { stream, delivered, log } = setup();
    log.append(2);
    stream.anchor(0);
    log.hold();
    stream.fill('head_check');
    stream.fill('head_check');
    expect(log.waiting).toBe(1);
    log.append(1);
    log.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(log.calls).toEqual([
      { kind: 'fresh', from: 0 },
      { kind: 'fresh', from: 3 },
    ]);
    expect(delivered()).toEqual([1, 2, 3]);
  });

  it('emits nothing once closed', async () => {
    const { stream, delivered, receive } = setup();
    stream.anchor(0);
    stream.close();
    receive(...events(1, 2));
    await vi.advanceTimersByTimeAsync(HOLD_MS * 2);
    expect(delivered()).toEqual([]);
  });
});
