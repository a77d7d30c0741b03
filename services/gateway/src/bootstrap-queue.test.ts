import type { BootstrapResponse } from '@openagents/sync-protocol';
import type { DeltaSource } from '@openagents/sync-server-kit';
import { describe, expect, it } from 'vitest';
import { queueBootstraps } from './bootstrap-queue';

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
});
