import { describe, expect, it } from 'vitest';
import { createSlots } from './slots';

describe('createSlots', () => {
  it('holds at most its size, and hands a slot given back to the first in line', async () => {
    const slots = createSlots(2);
    expect([slots.tryTake(), slots.tryTake(), slots.tryTake()]).toEqual([true, true, false]);
    const order: string[] = [];
    const first = slots.take().then(() => order.push('first'));
    const second = slots.take().then(() => order.push('second'));
    expect([slots.active, slots.waiting]).toEqual([2, 2]);
    slots.give();
    // The slot went to `first` without being freed: a newcomer at once finds none.
    expect(slots.tryTake()).toBe(false);
    await first;
    expect(order).toEqual(['first']);
    expect([slots.active, slots.waiting]).toEqual([2, 1]);
    slots.give();
    await second;
    expect(order).toEqual(['first', 'second']);
    slots.give();
    slots.give();
    expect([slots.active, slots.waiting]).toEqual([0, 0]);
  });

  it('resolves take at once when a slot is free, and never counts more free slots than its size', async () => {
    const slots = createSlots(1);
    await slots.take();
    expect(slots.active).toBe(1);
    slots.give();
    slots.give();
    expect([slots.tryTake(), slots.tryTake()]).toEqual([true, false]);
  });
});
