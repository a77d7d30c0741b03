import type { ServerFrame } from '@openagents/sync-protocol';
import { createMemoryBus } from '@openagents/sync-server-kit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { event, FakeLog, SCOPE, silentLog, unitMetrics } from '../test/support/fake-log';
import { ScopeRegistry } from './scope-registry';
import { type SubscriberChannel, Subscription } from './subscription';

/**
 * A subscription over an in-memory log and bus, with a fake connection that records every frame
 * the client would read — catch-up frames sent on the channel and, once the channel joined the
 * scope's topic, the stream's fan-out — so a test sees the client's stream exactly.
 */
function setup() {
  const log = new FakeLog();
  const bus = createMemoryBus();
  const metrics = unitMetrics();
  const frames: ServerFrame[] = [];
  const topics = new Set<string>();
  let blocked = false;
  let waiters: (() => void)[] = [];
  const streams = new ScopeRegistry({
    bus,
    reads: log,
    metrics,
    log: silentLog,
    holdMs: 100,
    fanOut: (stream, events) => {
      if (!topics.has(stream.scope)) return;
      frames.push({
        type: 'sync',
        scope: stream.scope,
        events: [...events],
        latestSyncId: events.at(-1)!.id,
      });
    },
  });
  const channel: SubscriberChannel = {
    send: (frame) => {
      frames.push(frame);
      return true;
    },
    writable: () => (blocked ? new Promise<void>((r) => waiters.push(r)) : Promise.resolve()),
    joinTopic: (scope) => topics.add(scope),
    leaveTopic: (scope) => topics.delete(scope),
  };
  const subscription = new Subscription(SCOPE, channel, { streams, reads: log, metrics, log: silentLog });
  return {
    log,
    bus,
    frames,
    topics,
    subscription,
    streams,
    /** Publishes events on the bus (not in the log). */
    publish: (...list: number[]) => bus.publish({ scope: SCOPE, events: list.map((id) => event(id)) }),
    /** The event ids the client received, in order, over catch-up and live frames. */
    received: () => frames.flatMap((f) => (f.type === 'sync' ? f.events.map((e) => e.id) : [])),
    kinds: () => frames.map((f) => (f.type === 'bootstrap' && f.more ? 'bootstrap+' : f.type)),
    subscribedAt: () => frames.find((f) => f.type === 'subscribed')?.lastSyncId,
    blockWritable: () => {
      blocked = true;
    },
    unblockWritable: () => {
      blocked = false;
      const w = waiters;
      waiters = [];
      for (const wake of w) wake();
    },
  };
}

/** Another connection's subscription, live at `cursor` (it anchors the node's stream there). */
async function liveSubscriber(t: ReturnType<typeof setup>, cursor: number): Promise<Subscription> {
  const other = new Subscription(
    SCOPE,
    { send: () => true, writable: async () => {}, joinTopic: () => {}, leaveTopic: () => {} },
    { streams: t.streams, reads: t.log, metrics: unitMetrics(), log: silentLog },
  );
  await other.start(cursor);
  await settle();
  expect(other.isLive).toBe(true);
  return other;
}

/** Lets promise chains and zero-delay timers (the stream's flush) run. */
const settle = () => vi.advanceTimersByTimeAsync(0);

/** A bootstrap of two pages at L=5, its first page sent and the client not yet ready for more. */
async function firstOfTwoPages(): Promise<ReturnType<typeof setup>> {
  const t = setup();
  t.log.append(5);
  t.log.bootstrapPages = 2;
  t.blockWritable();
  void t.subscription.start(undefined);
  await settle();
  expect(t.kinds()).toEqual(['bootstrap+']);
  return t;
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Subscription', () => {
  it('bootstrap pages at L, an event committed meanwhile, then live: the first event after the snapshot is L+1', async () => {
    const t = await firstOfTwoPages();
    // Event 6 commits and is published while the client reads the first page.
    t.log.append(1);
    await t.publish(6);
    await settle();
    expect(t.kinds()).toEqual(['bootstrap+']);
    t.unblockWritable();
    await settle();
    expect(t.kinds()).toEqual(['bootstrap+', 'bootstrap', 'sync', 'subscribed']);
    expect(t.frames.filter((f) => f.type === 'bootstrap').map((f) => f.lastSyncId)).toEqual([5, 5]);
    expect(t.received()).toEqual([6]);
    expect(t.subscribedAt()).toBe(6);
    // Live: the next event arrives through the fan-out (the topic), once.
    await t.publish(7);
    await settle();
    expect(t.received()).toEqual([6, 7]);
    expect(t.subscription.isLive).toBe(true);
  });

  it('a live event racing the resume read is buffered and sent once, after the replayed pages', async () => {
    const t = setup();
    t.log.append(5);
    t.log.hold();
    void t.subscription.start(3);
    await settle();
    expect(t.log.waiting).toBe(1);
    // Committed after the read's snapshot, published before the read answers.
    await t.publish(6);
    await settle();
    t.log.release();
    await settle();
    expect(t.kinds()).toEqual(['sync', 'sync', 'subscribed']);
    expect(t.received()).toEqual([4, 5, 6]);
    expect(t.subscribedAt()).toBe(6);
    expect(t.log.calls).toEqual([{ kind: 'resume', from: 3 }]);
  });

  it('a buffered live event that the resume read also returned is dropped (no duplicate)', async () => {
    const t = setup();
    t.log.append(5);
    // Another connection is live on the scope: the node's stream is anchored at 5.
    await liveSubscriber(t, 5);
    t.log.hold();
    void t.subscription.start(3);
    await settle();
    // 6 commits and is published while the resume read is in flight: the stream emits it and
    // this subscription buffers it; the read, answered after the commit, returns it too.
    t.log.append(1);
    await t.publish(6);
    await settle();
    t.log.release();
    await settle();
    expect(t.received()).toEqual([4, 5, 6]);
    expect(t.subscribedAt()).toBe(6);
    await t.publish(7);
    await settle();
    expect(t.received()).toEqual([4, 5, 6, 7]);
  });

  it('fills a gap between its cursor and the buffered events from the log before going live', async () => {
    const t = setup();
    t.log.append(5);
    t.log.hold();
    void t.subscription.start(3);
    await settle();
    // 6 commits but its publish is lost; 7 is published. The read saw neither.
    t.log.append(2);
    await t.publish(7);
    await settle();
    t.log.release();
    await settle();
    await vi.advanceTimersByTimeAsync(100); // the stream's hold for the missing 6 expires
    expect(t.received()).toEqual([4, 5, 6, 7]);
    expect(t.subscribedAt()).toBe(7);
  });

  it('a client ahead of the node’s stream waits for the stream to catch up, then goes live at its cursor', async () => {
    const t = setup();
    // Another connection is live on the scope: the node's stream is anchored at 5.
    t.log.append(5);
    await liveSubscriber(t, 5);
    // 6 and 7 commit; no publish arrives yet. The client resumes at 3 and reads up to 7.
    t.log.append(2);
    void t.subscription.start(3);
    await settle();
    // It asked the stream to fill; the stream read the log from 5 and emitted 6, 7: live at 7.
    expect(t.log.calls.slice(-2)).toEqual([
      { kind: 'resume', from: 3 },
      { kind: 'fresh', from: 5 },
    ]);
    expect(t.received()).toEqual([4, 5, 6, 7]);
    expect(t.subscribedAt()).toBe(7);
    expect(t.subscription.isLive).toBe(true);
    await t.publish(8);
    await settle();
    expect(t.received()).toEqual([4, 5, 6, 7, 8]);
  });

  it('retries its catch-up while the log is unavailable, with growing delays', async () => {
    // Full jitter under a doubling bound (500 ms, then 1 s): the middle of each window.
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const t = setup();
    t.log.fail('unavailable', 'unavailable');
    void t.subscription.start(undefined);
    await settle();
    expect(t.log.count('bootstrap')).toBe(1);
    await vi.advanceTimersByTimeAsync(249);
    expect(t.log.count('bootstrap')).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.log.count('bootstrap')).toBe(2);
    await vi.advanceTimersByTimeAsync(499);
    expect(t.log.count('bootstrap')).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.kinds()).toEqual(['bootstrap', 'subscribed']);
    random.mockRestore();
  });

  it('a cursor the log no longer covers gets a bootstrap with reset: true', async () => {
    const t = setup();
    t.log.append(9);
    t.log.fail('reset_required');
    void t.subscription.start(2);
    await settle();
    const bootstrap = t.frames.find((f) => f.type === 'bootstrap');
    expect(bootstrap).toMatchObject({ type: 'bootstrap', reset: true, lastSyncId: 9 });
    expect(t.subscribedAt()).toBe(9);
  });

  it('a paged bootstrap that outlives the retained log starts over from its first page', async () => {
    const t = await firstOfTwoPages();
    // The log is pruned past L=5 while the client reads the first page: the second page's read
    // answers 410, and the bootstrap is read again from its first page, at the new head.
    t.log.append(2);
    t.log.fail('reset_required');
    t.unblockWritable();
    await settle();
    t.unblockWritable();
    await settle();
    expect(t.kinds()).toEqual(['bootstrap+', 'bootstrap+', 'bootstrap', 'subscribed']);
    expect(t.frames.filter((f) => f.type === 'bootstrap').map((f) => f.lastSyncId)).toEqual([5, 7, 7]);
    expect(t.log.calls.filter((c) => c.kind === 'bootstrap').map((c) => c.from)).toEqual([
      undefined,
      '5:1',
      undefined,
      '7:1',
    ]);
    expect(t.subscribedAt()).toBe(7);
    expect(t.subscription.isLive).toBe(true);
  });

  it('closed during its catch-up, it sends nothing more and leaves the stream', async () => {
    const t = setup();
    t.log.append(3);
    t.log.hold();
    void t.subscription.start(1);
    await settle();
    t.subscription.close();
    t.log.release();
    await settle();
    expect(t.frames).toEqual([]);
    expect(t.streams.size).toBe(0);
  });
});
