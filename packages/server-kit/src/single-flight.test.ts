import { describe, expect, it } from 'vitest';
import { createSingleFlight } from './single-flight';

describe('createSingleFlight', () => {
  it('shares one run among concurrent callers of a key, and starts afresh once it settled', async () => {
    const flights = createSingleFlight<number>();
    let starts = 0;
    const start = async () => ++starts;
    const a = flights.run('k', start);
    const b = flights.run('k', start);
    const other = flights.run('other', start);
    expect([a.joined, b.joined, other.joined]).toEqual([false, true, false]);
    expect(await Promise.all([a.promise, b.promise, other.promise])).toEqual([1, 1, 2]);
    const later = flights.run('k', start);
    expect(later.joined).toBe(false);
    expect(await later.promise).toBe(3);
  });

  it('hands a failure to every joined caller and does not keep it', async () => {
    const flights = createSingleFlight<number>();
    const failing = flights.run('k', async () => {
      throw new Error('down');
    });
    const joined = flights.run('k', async () => 1);
    await expect(failing.promise).rejects.toThrow('down');
    await expect(joined.promise).rejects.toThrow('down');
    expect(await flights.run('k', async () => 2).promise).toBe(2);
  });
});
