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

/**
 * True when `value` nests deeper than `max` levels. Recursive, but never more than `max + 1`
 * calls deep whatever the input (it stops descending there), so it cannot overflow itself; and it
 * allocates nothing, since it runs on every event received.
 */
export function depthExceeds(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (max < 1) return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (depthExceeds(value[i], max - 1)) return true;
    return false;
  }
  const record = value as Record<string, unknown>;
  for (const key in record) {
    if (Object.hasOwn(record, key) && depthExceeds(record[key], max - 1)) return true;
  }
  return false;
}

/**
 * Where a received event keeps its own JSON text, when the bus handed over the text it was
 * parsed from (see `singleEventJson`); a symbol, so JSON.stringify and Object.keys never see it.
 */
export const EVENT_JSON: unique symbol = Symbol('event JSON');

type WithJson = { [EVENT_JSON]?: string };

/** The event's JSON: the text it arrived as, or else serialised now. */
export function eventJson(event: object): string {
  return (event as WithJson)[EVENT_JSON] ?? JSON.stringify(event);
}

/** Remembers `json` as the text of `event` (only for text that `singleEventJson` vouched for). */
export function keepEventJson(event: object, json: string): void {
  (event as WithJson)[EVENT_JSON] = json;
}

/**
 * The JSON text of the only event of a message that passed `busMessageProblem`, cut out of the
 * text `raw` it was parsed from, so that fan-out can forward it instead of serialising it again.
 * `head` is `{"scope":<scope as JSON>,"events":[`: the layout JSON.stringify gives `{scope,
 * events}`, as every publisher in this repository writes it. Anything else (several events,
 * other spacing or key order) answers undefined and the event is serialised as before.
 *
 * Why the cut is exactly the event, whoever published: `raw` parsed to an object with exactly the
 * two keys `scope` and `events` (no extra key could ride along into the frame); it starts with
 * `head` and ends with `]}`; and the cut contains no `"events"` — so `raw` has a single `events`
 * key (a duplicate key, where JSON.parse keeps the last, would need a second one) whose array
 * runs from `head` to the final `]`, and a parsed one-element array is that one event's text.
 */
export function singleEventJson(
  message: { scope: string; events: readonly unknown[] },
  raw: string,
  head: string,
): string | undefined {
  if (message.events.length !== 1 || !raw.startsWith(head) || !raw.endsWith(']}')) return undefined;
  let keys = 0;
  for (const key in message) if (Object.hasOwn(message, key)) keys++;
  if (keys !== 2) return undefined;
  const json = raw.slice(head.length, raw.length - 2);
  return json.includes('"events"') ? undefined : json;
}
