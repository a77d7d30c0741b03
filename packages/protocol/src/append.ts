import type { AppendEventData } from './events';

/** What applying an append piece did: grew the text, found it already there, or found a hole before it. */
export type AppendOutcome =
  | { kind: 'applied'; text: string }
  | { kind: 'covered' }
  | { kind: 'gap'; length: number };

/**
 * Applies one append piece to the text a reader holds, by offset and idempotently: offsets are
 * UTF-16 code units, so slicing is exact even when a piece ends inside a surrogate pair or
 * between a letter and its combining mark (the next piece completes it).
 *
 * - `offset + text.length <= current.length`: the piece is already covered (a duplicate, or a
 *   piece the snapshot already held) and changes nothing;
 * - `offset <= current.length`: the part beyond the current end is appended;
 * - `offset > current.length`: a piece is missing in between — the reader must catch up first.
 *
 * @example
 * applyAppend('Hel', { field: 'content', offset: 3, text: 'lo', updated_at }) // applied 'Hello'
 */
export function applyAppend(current: string, piece: Pick<AppendEventData, 'offset' | 'text'>): AppendOutcome {
  const end = piece.offset + piece.text.length;
  if (piece.offset > current.length) return { kind: 'gap', length: current.length };
  if (end <= current.length) return { kind: 'covered' };
  return { kind: 'applied', text: current + piece.text.slice(current.length - piece.offset) };
}
