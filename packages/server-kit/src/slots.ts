/**
 * A counting semaphore with a first-come line: at most `size` holders at once. A slot given back
 * passes straight to the first in line, never freed in between, so a newcomer cannot overtake
 * those already waiting. The delta service's bootstrap gate, the gateway's bootstrap line and
 * pool shares (`sharePool`) are built on it.
 *
 * @example
 *   const slots = createSlots(4);
 *   if (!slots.tryTake()) await slots.take();
 *   try { await work(); } finally { slots.give(); }
 */
export interface Slots {
  /** Takes a slot if one is free now; false (and nothing taken) otherwise. */
  tryTake(): boolean;
  /** Resolves once a slot is the caller's: at once when one is free, else in turn. */
  take(): Promise<void>;
  /** Gives a held slot back: to the first in line, or free. */
  give(): void;
  /** Slots held now. */
  readonly active: number;
  /** Callers waiting in line for a slot. */
  readonly waiting: number;
}

/** Slots for `size` holders at once (at least one). */
export function createSlots(size: number): Slots {
  const total = Math.max(1, size);
  let free = total;
  const line: (() => void)[] = [];
  const tryTake = () => {
    if (free === 0) return false;
    free--;
    return true;
  };
  return {
    tryTake,
    take: () => (tryTake() ? Promise.resolve() : new Promise<void>((resolve) => line.push(resolve))),
    give() {
      const next = line.shift();
      if (next) next();
      else free = Math.min(total, free + 1);
    },
    get active() {
      return total - free;
    },
    get waiting() {
      return line.length;
    },
  };
}
