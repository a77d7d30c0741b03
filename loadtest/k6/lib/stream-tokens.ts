/**
 * The stream scenario's tokens (k6 and the Node driver share them): each carries the wall-clock
 * millisecond it was generated at, so a viewer measures generation-to-screen latency from the text
 * alone. A token is a space and 8 base-36 digits of `Date.now()` (fixed width until 2059): 9
 * UTF-16 code units, so in a reply made of whole tokens token k always sits at offset 9k.
 */
export const TOKEN_LENGTH = 9;
const DIGITS = TOKEN_LENGTH - 1;

export function encodeToken(ms: number): string {
  let digits = Math.floor(ms).toString(36);
  while (digits.length < DIGITS) digits = `0${digits}`;
  return ` ${digits}`;
}

/** The generation time of the token at `text[start…start+9)`; NaN when it is not one. */
export function decodeToken(text: string, start: number): number {
  if (text.charCodeAt(start) !== 32) return Number.NaN;
  const digits = text.slice(start + 1, start + TOKEN_LENGTH);
  if (digits.length !== DIGITS || !/^[0-9a-z]+$/.test(digits)) return Number.NaN;
  return Number.parseInt(digits, 36);
}

/**
 * Calls `seen(ms)` with the generation time of every token completed by growing a text from
 * `before` code units to `text.length`; returns how many tokens that was.
 */
export function forEachCompletedToken(text: string, before: number, seen: (ms: number) => void): number {
  let completed = 0;
  // Token k (1-based) ends at 9k: the first one completed is the first that ends past `before`.
  for (let k = Math.floor(before / TOKEN_LENGTH) + 1; k * TOKEN_LENGTH <= text.length; k++) {
    const at = decodeToken(text, (k - 1) * TOKEN_LENGTH);
    if (!Number.isNaN(at)) seen(at);
    completed++;
  }
  return completed;
}
