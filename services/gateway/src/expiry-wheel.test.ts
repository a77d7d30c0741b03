import { describe, expect, it } from 'vitest';
import { ExpiryWheel } from './expiry-wheel';

describe('ExpiryWheel', () => {
  it('expires items once their second has passed, and not removed ones', () => {
    const expired: string[] = [];
    const wheel = new ExpiryWheel<string>((item) => expired.push(item));
    wheel.add('a', 10_000);
    wheel.add('b', 10_400);
    wheel.add('c', 12_000);
    wheel.add('d', 10_999);
    wheel.remove('d', 10_999);
    wheel.expireDue(9_999);
    expect(expired).toEqual([]);
    wheel.expireDue(10_000);
    expect(expired).toEqual(['a']);
    wheel.expireDue(11_000);
    expect(expired).toEqual(['a', 'b']);
    expect(wheel.size).toBe(1);
    wheel.expireDue(12_500);
    expect(expired).toEqual(['a', 'b', 'c']);
    expect(wheel.size).toBe(0);
    wheel.stop();
  });
});
