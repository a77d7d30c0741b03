import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hostMatcher } from './host-check';

describe('hostMatcher', () => {
  it('answers the loopback names on the port by default, nothing else', () => {
    const accepts = hostMatcher(undefined, 8787);
    for (const host of ['localhost:8787', '127.0.0.1:8787', '[::1]:8787', 'LOCALHOST:8787']) {
      expect(accepts(host)).toBe(true);
    }
    for (const host of [
      'localhost',
      'localhost:80',
      'evil.example:8787',
      'evil.example',
      '',
      '127.0.0.1.evil:8787',
    ]) {
      expect(accepts(host)).toBe(false);
    }
  });

  it('takes name (any port), name:port and *', () => {
    const accepts = hostMatcher(['sync.internal', 'box:9000'], 8787);
    expect(accepts('sync.internal')).toBe(true);
    expect(accepts('sync.internal:443')).toBe(true);
    expect(accepts('box:9000')).toBe(true);
    expect(accepts('box:9001')).toBe(false);
    expect(accepts('localhost:8787')).toBe(false);
    expect(hostMatcher(['*'], 1)('anything')).toBe(true);
  });

  it('never accepts a host outside the default list, whatever its spelling', () => {
    const accepts = hostMatcher(undefined, 8787);
    fc.assert(
      fc.property(fc.string(), (host) => {
        const ok = accepts(host);
        expect(ok).toBe(
          ['localhost:8787', '127.0.0.1:8787', '[::1]:8787'].includes(host.trim().toLowerCase()),
        );
      }),
    );
  });
});
