import { afterEach, describe, expect, it, vi } from 'vitest';
import { randomUuid } from './random-uuid';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

afterEach(() => vi.unstubAllGlobals());

describe('randomUuid', () => {
  it('gives distinct v4 uuids, also without crypto.randomUUID (insecure contexts)', () => {
    const native = globalThis.crypto;
    vi.stubGlobal('crypto', { getRandomValues: (a: Uint8Array) => native.getRandomValues(a) });
    const ids = new Set(Array.from({ length: 500 }, () => randomUuid()));
    expect(ids.size).toBe(500);
    for (const id of ids) expect(id).toMatch(V4);
    vi.unstubAllGlobals();
    expect(randomUuid()).toMatch(V4);
  });
});
