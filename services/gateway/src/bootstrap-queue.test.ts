import type { BootstrapResponse, ServerFrame } from '@openagents/sync-protocol';
import { createMemoryBus, type DeltaSource } from '@openagents/sync-server-kit';
import { describe, expect, it } from 'vitest';
import { metricValue, silentLog, unitMetrics } from '../test/support/fake-log';
import { BootstrapSkipped, queueBootstraps } from './bootstrap-queue';
import { createLogReads } from './log-reads';
import { ScopeRegistry } from './scope-registry';
import { Subscription } from './subscription';

/** A source whose bootstraps finish only when the test says so. */
function heldSource() {
  const started: string[] = [];
  const finish = new Map<string, (ok: boolean) => void>();
  const source: DeltaSource = {
    bootstrap: (scope) =>
      new Promise<BootstrapResponse>((resolve, reject) => {
        started.push(scope);
        finish.set(scope, (ok) =>
          ok ? resolve({ scope, models: {}, lastSyncId: 0 } as BootstrapResponse) : reject(new Error('down')),
        );
      }),
    delta: async (scope) => ({ scope, events: [], latestSyncId: 0, hasMore: false }),
    heads: async (scopes) => new Map(scopes.map((s) => [s, 0])),
  };
  return { source, started, finish };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('queueBootstraps', () => {
  it('asks at most `concurrency` bootstraps at once and starts the rest in order as slots free', async () => {
    const { source, started, finish } = heldSource();
    const queued = queueBootstraps(source, 2);
    const pages = ['a', 'b', 'c', 'd', 'e'].map((s) => queued.bootstrap(`agent:${s}`));
    await settle();
    expect(started).toEqual(['agent:a', 'agent:b']);
    finish.get('agent:b')!(true);
    await settle();
    expect(started).toEqual(['agent:a', 'agent:b', 'agent:c']);
    // A failed read frees its slot too, and the failure goes to its own caller only.
    finish.get('agent:a')!(false);
    await expect(pages[0]).rejects.toThrow('down');
    await settle();
    expect(started).toEqual(['agent:a', 'agent:b', 'agent:c', 'agent:d']);
    for (const s of ['c', 'd']) finish.get(`agent:${s}`)!(true);
    await settle();
    finish.get('agent:e')!(true);
    expect((await Promise.all(pages.slice(1))).map((p) => p.scope)).toEqual([
      'agent:b',
      'agent:c',
      'agent:d',
      'agent:e',
    ]);
  });

  it('lets deltas and heads through while bootstraps wait', async () => {
    const { source } = heldSource();
    const queued = queueBootstraps(source, 1);
    void queued.bootstrap('agent:a');
    void queued.bootstrap('agent:b');
    expect((await queued.delta('agent:b', 0)).hasMore).toBe(false);
    expect(await queued.heads(['agent:b'])).toEqual(new Map([['agent:b', 0]]));
  });

  it('drops a queued read nobody wants any more when its turn comes, and passes the slot on', async () => {
    const { source, started, finish } = heldSource();
    const queued = queueBootstraps(source, 1);
    const wanted = { b: true, c: true };
    const a = queued.bootstrap('agent:a', {}, () => true);
    const b = queued.bootstrap('agent:b', {}, () => wanted.b);
    // b rejects while the test awaits a: its outcome is taken at once (no unhandled rejection).
    const bOutcome = b.then(
      () => 'resolved',
      (err: unknown) => err,
    );
    const c = queued.bootstrap('agent:c', {}, () => wanted.c);
    await settle();
    // b's client left while it waited.
    wanted.b = false;
    finish.get('agent:a')!(true);
    await a;
    await settle();
    expect(started).toEqual(['agent:a', 'agent:c']);
    expect(await bOutcome).toBeInstanceOf(BootstrapSkipped);
    finish.get('agent:c')!(true);
    expect((await c).scope).toBe('agent:c');
    // A read that got its slot at once is sent whatever `wanted` says later: it is already out.
    let late = true;
    const d = queued.bootstrap('agent:d', {}, () => late);
    late = false;
    await settle();
    expect(started).toContain('agent:d');
    finish.get('agent:d')!(true);
    await d;
  });
});

describe('bootstraps of closed subscriptions (log reads over the line)', () => {
  /** The node's reads over a held source, one bootstrap at a time. */
  function node() {
    const held = heldSource();
    const metrics = unitMetrics();
    const reads = createLogReads(queueBootstraps(held.source, 1), { metrics });
    const streams = new ScopeRegistry({
      bus: createMemoryBus(),
      reads,
      metrics,
      log: silentLog,
      holdMs: 100,
      fanOut: () => {},
    });
    const subscribe = (scope: string) => {
      const frames: ServerFrame[] = [];
      const subscription = new Subscription(
        scope,
        {
          send: (frame) => {
            frames.push(frame);
            return true;
          },
          writable: async () => {},
          joinTopic: () => {},
          leaveTopic: () => {},
        },
        { streams, reads, metrics, log: silentLog },
      );
      const done = subscription.start(undefined);
      return { subscription, frames, done };
    };
    return { ...held, metrics, reads, subscribe };
  }

  it('a client that subscribes and leaves while its bootstrap waits in line costs no read', async () => {
    const t = node();
    const busy = t.subscribe('agent:busy');
    const left = t.subscribe('agent:left');
    const stays = t.subscribe('agent:stays');
    await settle();
    expect(t.started).toEqual(['agent:busy']);
    left.subscription.close();
    t.finish.get('agent:busy')!(true);
    await busy.done;
    await settle();
    // The line went from busy straight to stays: left's bootstrap was never asked of the source.
    expect(t.started).toEqual(['agent:busy', 'agent:stays']);
    await left.done;
    expect(left.frames).toEqual([]);
    expect(await metricValue(t.metrics.bootstrapsSkipped)).toBe(1);
    t.finish.get('agent:stays')!(true);
    await stays.done;
    expect(stays.frames.map((f) => f.type)).toEqual(['bootstrap', 'subscribed']);
  });

  it('a read shared by two subscriptions is dropped only when both left', async () => {
    const t = node();
    const busy = t.subscribe('agent:busy');
    const first = t.subscribe('agent:shared');
    const second = t.subscribe('agent:shared');
    await settle();
    first.subscription.close();
    t.finish.get('agent:busy')!(true);
    await busy.done;
    await settle();
    // The second still waits for it: read once, for it.
    expect(t.started).toEqual(['agent:busy', 'agent:shared']);
    t.finish.get('agent:shared')!(true);
    await Promise.all([first.done, second.done]);
    expect(second.frames.map((f) => f.type)).toEqual(['bootstrap', 'subscribed']);
    expect(first.frames).toEqual([]);
    expect(await metricValue(t.metrics.bootstrapsSkipped)).toBe(0);

    const again = t.subscribe('agent:busy-again');
    const third = t.subscribe('agent:both-left');
    const fourth = t.subscribe('agent:both-left');
    await settle();
    third.subscription.close();
    fourth.subscription.close();
    t.finish.get('agent:busy-again')!(true);
    await again.done;
    await settle();
    expect(t.started.filter((s) => s === 'agent:both-left')).toEqual([]);
    await Promise.all([third.done, fourth.done]);
    expect(await metricValue(t.metrics.bootstrapsSkipped)).toBe(1);
  });
});
