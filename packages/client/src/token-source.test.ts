import { describe, expect, it, vi } from 'vitest';
import { TokenSource, tokenExpiry } from './token-source';

const b64 = (o: unknown) =>
  btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
const jwt = (payload: unknown) => `${b64({ alg: 'HS256' })}.${b64(payload)}.sig`;

describe('tokenExpiry', () => {
  it('reads exp in ms, and nothing from garbage', () => {
    expect(tokenExpiry(jwt({ exp: 1700000000 }))).toBe(1700000000_000);
    for (const t of ['', 'abc', 'a.b.c', jwt({}), jwt({ exp: 'soon' }), jwt(null), 'x.!!!.y']) {
      expect(tokenExpiry(t)).toBeUndefined();
    }
  });
});

describe('TokenSource', () => {
  it('fetches a token when none is given, shares concurrent refreshes, refreshes near exp', async () => {
    let now = 1_000_000;
    let n = 0;
    const getToken = vi.fn(async () => jwt({ exp: now / 1000 + 60, n: ++n }));
    const source = new TokenSource({ getToken, now: () => now, refreshMarginMs: 30_000 });
    const [a, b] = await Promise.all([source.get(), source.refresh()]);
    expect(a).toBe(b);
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(await source.get()).toBe(a);
    now += 45_000; // 15 s left: inside the margin
    expect(await source.get()).not.toBe(a);
    expect(getToken).toHaveBeenCalledTimes(2);
  });

  it('keeps the old token when getToken fails, and reports it', async () => {
    const onError = vi.fn();
    const source = new TokenSource({
      token: 'old',
      getToken: async () => Promise.reject(new Error('down')),
      onError,
    });
    expect(await source.refresh()).toBe('old');
    expect(onError).toHaveBeenCalledOnce();
  });

  it('a fixed token is used as is', async () => {
    expect(await new TokenSource({ token: 'fixed' }).get()).toBe('fixed');
    expect(await new TokenSource({}).get()).toBeUndefined();
  });
});
