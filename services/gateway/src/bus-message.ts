/**
 * Deepest nesting an event may have to be accepted from the bus. Records are flat (fields of
 * strings, numbers, nulls), so 32 is generous; what matters is that everything accepted can be
 * serialised again: JSON.stringify recurses and overflows the stack a few thousand levels down,
 * and a message published by anyone who can reach Redis must not be able to make it do so.
 */
export const MAX_EVENT_DEPTH = 32;

export type BusMessageProblem = 'shape' | 'scope' | 'id' | 'depth';

/**
 * Checks a message received on `scope`'s channel before it touches the stream: an object whose
 * `events` are objects of that scope with positive safe-integer ids, nested at most
 * MAX_EVENT_DEPTH. Returns what is wrong, or undefined. Dropping a bad message is always safe:
 * the bus may lose messages anyway and the stream fills any gap from the log.
 */
export function busMessageProblem(message: unknown, scope: string): BusMessageProblem | undefined {
  if (typeof message !== 'object' || message === null) return 'shape';
  const { scope: messageScope, events } = message as { scope?: unknown; events?: unknown };
  if (messageScope !== scope) return 'scope';
  if (!Array.isArray(events)) return 'shape';
  for (const event of events as unknown[]) {
    if (typeof event !== 'object' || event === null || Array.isArray(event)) return 'shape';
    const { id, scope: eventScope } = event as { id?: unknown; scope?: unknown };
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) return 'id';
    if (eventScope !== scope) return 'scope';
  }
  if (depthExceeds(events, MAX_EVENT_DEPTH + 1)) return 'depth';
  return undefined;
}

/** True when `value` nests deeper than `max` levels; iterative, so it cannot overflow itself. */
export function depthExceeds(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return true;
    const children = Array.isArray(v) ? v : Object.values(v);
    for (const child of children)
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}
