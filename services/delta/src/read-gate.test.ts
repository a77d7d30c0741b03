import { AppError } from '@openagents/sync-server-kit';
import { describe, expect, it } from 'vitest';
import { createReadGate } from './read-gate';

describe('createReadGate', () => {
  it('runs at most `concurrency` at once, lines up `queue` more in order, refuses the rest', async () => {
    const gate = createReadGate({ concurrency: 2, queue: 2 });
    const releases: (() => void)[] = [];
    const started: number[] = [];
    const job = (n: number) =>
      gate.run(
        () =>
          new Promise<number>((resolve) => {
            started.push(n);
            releases.push(() => resolve(n));
          }),
      );
    const runs = [job(1), job(2), job(3), job(4)];
    await Promise.resolve();
    expect(started).toEqual([1, 2]);
    expect([gate.active, gate.waiting]).toEqual([2, 2]);
    const refused = await job(5).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).code).toBe('unavailable');
    releases[0]!();
    await runs[0];
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2, 3]);
    for (const release of releases.slice(1)) release();
    releases[2]!();
    await runs[2];
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2, 3, 4]);
    releases[3]!();
    expect(await Promise.all(runs)).toEqual([1, 2, 3, 4]);
    expect([gate.active, gate.waiting]).toEqual([0, 0]);
  });

  it('frees the slot when the work fails', async () => {
    const gate = createReadGate({ concurrency: 1, queue: 0 });
    await expect(gate.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await gate.run(async () => 7)).toBe(7);
  });
});
