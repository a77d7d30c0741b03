import type { SyncEvent } from '@openagents/sync-protocol';
import { type Bus, createMemoryBus } from '@openagents/sync-server-kit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { event, FakeLog, SCOPE, silentLog, unitMetrics } from '../test/support/fake-log';
import { ScopeRegistry } from './scope-registry';
import type { StreamSubscriber } from './scope-stream';

function setup(bus: Bus = createMemoryBus()) {
  const log = new FakeLog();
  const fannedOut: SyncEvent[][] = [];
  const registry = new ScopeRegistry({
    bus,
    reads: log,
    metrics: unitMetrics(),
    log: silentLog,
    holdMs: 100,
    fanOut: (_stream, batch) => fannedOut.push([...batch]),
  });
  return { log, bus, registry, delivered: () => fannedOut.flat().map((e) => e.id) };
}

const subscriber = (): StreamSubscriber => ({ isLive: true, bufferEvents: () => {}, restart: () => {} });

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ScopeRegistry', () => {
  it('head check: a scope whose log is ahead of its stream is filled from the log, with no bus message', async () => {
    const { log, registry, delivered } = setup();
    const stream = await registry.join(SCOPE, subscriber());
    stream.anchor(0);
    log.append(2); // committed, but the publish was lost
    await registry.checkHeads();
    await vi.advanceTimersByTimeAsync(0);
    expect(log.calls.map((c) => c.kind)).toEqual(['heads', 'fresh']);
    expect(delivered()).toEqual([1, 2]);
    expect(registry.deltaReachable).toBe(true);
    // Up to date: the next check reads the heads and nothing else.
    await registry.checkHeads();
    expect(log.calls.map((c) => c.kind)).toEqual(['heads', 'fresh', 'heads']);
  });

  it('head check failing marks the delta source unreachable and fills nothing', async () => {
    const { log, registry } = setup();
    (await registry.join(SCOPE, subscriber())).anchor(0);
    log.fail('unavailable');
    await registry.checkHeads();
    expect(registry.deltaReachable).toBe(false);
    expect(log.count('fresh')).toBe(0);
  });

  it('one stream and one bus channel per scope; the last subscriber out leaves the channel', async () => {
    const { bus, registry, delivered } = setup();
    const a = subscriber();
    const b = subscriber();
    const stream = await registry.join(SCOPE, a);
    expect(await registry.join(SCOPE, b)).toBe(stream);
    expect(bus.activeScopes()).toBe(1);
    stream.anchor(0);
    await bus.publish({ scope: SCOPE, events: [event(1)] });
    await vi.advanceTimersByTimeAsync(0);
    expect(delivered()).toEqual([1]);
    registry.leave(SCOPE, a);
    expect(registry.size).toBe(1);
    registry.leave(SCOPE, b);
    expect(registry.size).toBe(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(bus.activeScopes()).toBe(0);
  });

  it('forgets a stream whose bus join failed, so the next subscriber tries again', async () => {
    const inner = createMemoryBus();
    let refuse = true;
    const bus: Bus = {
      ...inner,
      subscribe: (scope, handler) =>
        refuse ? Promise.reject(new Error('join refused')) : inner.subscribe(scope, handler),
    };
    const { registry } = setup(bus);
    await expect(registry.join(SCOPE, subscriber())).rejects.toThrow('join refused');
    expect(registry.size).toBe(0);
    refuse = false;
    await registry.join(SCOPE, subscriber());
    expect(registry.size).toBe(1);
    expect(inner.activeScopes()).toBe(1);
  });

  it('after a bus outage every active scope is filled from the log', async () => {
    const { log, registry, delivered } = setup();
    (await registry.join(SCOPE, subscriber())).anchor(0);
    log.append(3);
    registry.fillAll();
    await vi.advanceTimersByTimeAsync(0);
    expect(log.calls).toEqual([{ kind: 'fresh', from: 0 }]);
    expect(delivered()).toEqual([1, 2, 3]);
  });
});
