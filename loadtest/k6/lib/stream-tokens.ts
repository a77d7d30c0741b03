/**
 * The stream scenario's tokens (k6 and the Node driver share them): each carries the wall-clock
 * millisecond it was generated at, so a viewer measures generation-to-screen latency from the text
 * alone. A token is a space and 8 base-36 digits of `Date.now()` (fixed width until 2059): 9
 * UTF-16 code units, so in a reply made of whole tokens token k always sits at offset 9k.
 */
export const TOKEN_LENGTH = 9;
const DIGITS = TOKEN_LENGTH - 1;

/**
 * A reply's first second is its stream opening (the upload's connection and first commit, the
 * viewers' first event): its tokens are measured apart from the steady state that follows.
 */
export const OPENING_MS = 1000;

/** How many tokens of a reply written at `tokensPerSecond` fall in its opening. */
export function openingTokens(tokensPerSecond: number, openingMs = OPENING_MS): number {
  return Math.ceil((openingMs * tokensPerSecond) / 1000);
}

export function encodeToken(ms: number): string {
  let digits = Math.floor(ms).toString(36);
  while (digits.length < DIGITS) digits = `0${digits}`;
  return ` ${digits}`;
}

/**
 * The generation time of the token at `text[start…start+9)`; NaN when it is not one. Reads the
 * digits by char code: no substring, no regular expression (viewers decode every token they see).
 */
export function decodeToken(text: string, start: number): number {
  if (start + TOKEN_LENGTH > text.length || text.charCodeAt(start) !== 32) return Number.NaN;
  let ms = 0;
  for (let i = start + 1; i < start + TOKEN_LENGTH; i++) {
    const c = text.charCodeAt(i);
    let digit: number;
    if (c >= 48 && c <= 57) digit = c - 48;
    else if (c >= 97 && c <= 122) digit = c - 87;
    else return Number.NaN;
    ms = ms * 36 + digit;
  }
  return ms;
}

/**
 * Calls `seen(ms, k)` with the generation time and index of every token completed by growing a
 * text from `before` code units to `text.length`; returns how many tokens that was.
 */
export function forEachCompletedToken(
  text: string,
  before: number,
  seen: (ms: number, index: number) => void,
): number {
  let completed = 0;
  // Token k (0-based) ends at 9(k+1): the first one completed is the first that ends past `before`.
  for (let k = Math.floor(before / TOKEN_LENGTH); (k + 1) * TOKEN_LENGTH <= text.length; k++) {
    const at = decodeToken(text, k * TOKEN_LENGTH);
    if (!Number.isNaN(at)) seen(at, k);
    completed++;
  }
  return completed;
}
