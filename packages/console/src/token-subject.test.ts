import { describe, expect, it } from 'vitest';
import { tokenSubject } from './token-subject';

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('tokenSubject', () => {
  it('reads sub from the payload', () => {
    expect(tokenSubject(`${encode({ alg: 'HS256' })}.${encode({ sub: 'user-ü-1' })}.sig`)).toBe('user-ü-1');
  });

  it('falls back to anonymous for anything unreadable', () => {
    for (const token of [
      '',
      'a.b.c',
      `x.${encode({ sub: 42 })}.y`,
      `x.${encode({ sub: 'a'.repeat(500) })}.y`,
    ]) {
      expect(tokenSubject(token)).toBe('anonymous');
    }
  });
});
