import { describe, expect, it } from 'vitest';
import { readConsoleConfig, TOKEN_STORAGE_KEY } from './config';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl';
const origin = 'http://127.0.0.1:8787';

function storage(values: Record<string, string>) {
  return { getItem: (k: string) => values[k] ?? null };
}

describe('readConsoleConfig', () => {
  it('prefers the injected config', () => {
    const config = readConsoleConfig({
      location: { origin, search: '?token=a.b.c' },
      __SYNC_CONFIG__: { url: 'https://sync.example.com/', token: JWT },
    });
    expect(config).toEqual({ url: 'https://sync.example.com', token: JWT, source: 'injected' });
  });

  it('falls back to ?token=, then the saved token, then none', () => {
    expect(readConsoleConfig({ location: { origin, search: `?token=${JWT}` } })).toEqual({
      url: origin,
      token: JWT,
      source: 'query',
    });
    expect(
      readConsoleConfig({
        location: { origin, search: '' },
        localStorage: storage({ [TOKEN_STORAGE_KEY]: JWT }),
      }),
    ).toMatchObject({ token: JWT, source: 'saved' });
    expect(readConsoleConfig({ location: { origin, search: '' } })).toEqual({
      url: origin,
      token: null,
      source: 'none',
    });
  });

  it('refuses hostile values', () => {
    const config = readConsoleConfig({
      location: { origin, search: '?token=abc%0D%0Ax-evil:1&url=javascript:alert(1)' },
      __SYNC_CONFIG__: { url: 42, token: '<script>' },
      localStorage: {
        getItem: () => {
          throw new Error('SecurityError');
        },
      },
    });
    expect(config).toEqual({ url: origin, token: null, source: 'none' });
    expect(readConsoleConfig({ location: { origin, search: '' }, __SYNC_CONFIG__: 'nope' }).token).toBeNull();
  });
});
