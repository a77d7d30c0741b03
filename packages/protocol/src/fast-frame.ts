import * as z from 'zod/mini';
import type { AppendEventData, SyncEvent } from './events';
import type { ServerFrame, SyncFrame } from './frames';
import { MODEL_NAMES } from './models';
import { SCOPE_PATTERN } from './scope';

/**
 * A hand-written check of the hot frame — a `sync` frame, one per streamed piece on a viewer's
 * socket — exactly as strict as `ServerFrame` (zod), several times cheaper: zod's parse builds a
 * payload, an issue list and a copy of every object per frame (in a fresh Chromium page 86 µs per
 * frame against 12 µs for this check and 2 µs for `JSON.parse`; about a quarter of the client's
 * own work per streamed token, docs/benchmarks.md).
 *
 * `fastServerFrame(json)` takes what `JSON.parse` returned and answers either the frame, when it
 * is a `sync` frame that `ServerFrame.safeParse` accepts *and* returns unchanged (no key zod would
 * strip), or `undefined`: anything else — other frame types, invalid frames, frames with extra
 * keys — goes to `ServerFrame.safeParse` as before, which keeps its error reports. So it never
 * accepts what zod refuses, and it returns what zod would (compared by a property test against
 * zod on arbitrary and mutated frames, `fast-frame.property.test.ts`).
 *
 * Only for `JSON.parse` output: plain objects and arrays of JSON values (no getters, prototypes
 * or symbols), where zod's "plain object" is any non-null, non-array object.
 */
export function fastServerFrame(json: unknown): ServerFrame | undefined {
  if (!isObject(json) || json.type !== 'sync') return undefined;
  return fastSyncFrame(json) ? (json as unknown as SyncFrame) : undefined;
}

/**
 * Whether `data` is an `AppendEventData` (`AppendEventData.safeParse(data).success`), checked by
 * hand: the append event's piece, checked once per streamed piece by the client's store.
 */
export function isAppendEventData(data: unknown): data is AppendEventData {
  return (
    isObject(data) &&
    typeof data.field === 'string' &&
    data.field.length >= 1 &&
    isSafeInt(data.offset) &&
    data.offset >= 0 &&
    typeof data.text === 'string' &&
    typeof data.updated_at === 'string'
  );
}

/** zod's `z.uuid()` pattern (RFC 9562, versions 1–8, nil and max). */
const UUID = z.regexes.uuid();
const MODELS: ReadonlySet<unknown> = new Set(MODEL_NAMES);
const ACTIONS: ReadonlySet<unknown> = new Set(['insert', 'update', 'delete', 'append']);

type Obj = Record<string, unknown>;

/** zod's object and record check on `JSON.parse` output: non-null, not an array. */
function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** zod's `z.int()`: a finite number, an integer, within ±(2^53 − 1). */
function isSafeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** Own enumerable keys of `o`, counted (a `JSON.parse` object's are all its keys). */
function keyCount(o: Obj): number {
  let n = 0;
  for (const _ in o) n++;
  return n;
}

/** `SyncFrame`, with exactly its four keys (zod would strip any other). */
function fastSyncFrame(f: Obj): boolean {
  if (keyCount(f) !== 4) return false;
  if (typeof f.scope !== 'string') return false;
  if (!isSafeInt(f.latestSyncId) || f.latestSyncId < 0) return false;
  const events = f.events;
  if (!Array.isArray(events)) return false;
  for (const e of events) if (!fastSyncEvent(e)) return false;
  return true;
}

/** `SyncEvent`, with exactly its eight keys. */
function fastSyncEvent(e: unknown): e is SyncEvent {
  if (!isObject(e) || keyCount(e) !== 8) return false;
  if (!isSafeInt(e.id) || e.id <= 0) return false;
  if (typeof e.scope !== 'string' || !SCOPE_PATTERN.test(e.scope)) return false;
  if (!MODELS.has(e.model) || !ACTIONS.has(e.action)) return false;
  if (typeof e.model_id !== 'string' || !UUID.test(e.model_id)) return false;
  if (e.mutationId !== null && typeof e.mutationId !== 'string') return false;
  if (typeof e.created_at !== 'string') return false;
  const data = e.data;
  if (data === null) return true;
  // zod's record of string keys drops a `__proto__` key (JSON.parse makes it an own key): its
  // output would differ from the input, so such an event is zod's to parse.
  return isObject(data) && !Object.hasOwn(data, '__proto__');
}
