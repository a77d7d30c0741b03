// Test fixtures of the stream writer's tests (not exported by the package).

/** Emoji (astral, ZWJ sequences, flags), combining marks, CJK, newlines. */
export const ALPHABET = [
  'a',
  'Z',
  ' ',
  '\n',
  'é',
  'e\u0301',
  'n\u0303\u0323',
  '😀',
  '👨‍👩‍👧',
  '🇫🇷',
  '語',
  '𝕏',
  'ё',
  '"',
  '\\',
];

/** A deterministic pseudo-random source (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The text and its pieces, cut at any code unit: inside surrogate pairs and before combining marks too. */
export function textInPieces(seed: number, units: number): { text: string; pieces: string[] } {
  const random = prng(seed);
  let text = '';
  while (text.length < units) text += ALPHABET[Math.floor(random() * ALPHABET.length)];
  const pieces: string[] = [];
  for (let i = 0; i < text.length; ) {
    const n = 1 + Math.floor(random() * 4);
    pieces.push(text.slice(i, i + n));
    i += n;
  }
  return { text, pieces };
}
