import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalScope, canonicalScopePattern, SCOPE_PATTERN, scopeAllowed } from './scope';

const UUID = '5e79a1c0-3b2d-4c1e-9f00-aa11bb22cc33';

describe('canonicalScope', () => {
  it('lowercases the uuid of org: and agent: scopes and leaves other kinds alone', () => {
    expect(canonicalScope(`org:${UUID.toUpperCase()}`)).toBe(`org:${UUID}`);
    expect(canonicalScope(`agent:${UUID.slice(0, 8).toUpperCase()}${UUID.slice(8)}`)).toBe(`agent:${UUID}`);
    expect(canonicalScope(`org:${UUID}`)).toBe(`org:${UUID}`);
    expect(canonicalScope('team:ABC')).toBe('team:ABC');
  });

  it('refuses what is not a scope', () => {
    for (const bad of [
      '',
      'ORG:x',
      'org:',
      'no colon',
      `org:${'a'.repeat(129)}`,
      'org:a b',
      42,
      null,
      ['org:a'],
    ]) {
      expect(canonicalScope(bad)).toBeUndefined();
    }
  });

  it('is idempotent and always yields a valid scope (property)', () => {
    const scopeLike = fc.oneof(
      fc.uuid().map((u) => `org:${u.toUpperCase()}`),
      fc.uuid().map((u) => `agent:${u}`),
      fc.string({ maxLength: 140 }),
      fc.stringMatching(SCOPE_PATTERN),
    );
    fc.assert(
      fc.property(scopeLike, (s) => {
        const c = canonicalScope(s);
        if (c === undefined) return;
        expect(SCOPE_PATTERN.test(c)).toBe(true);
        expect(canonicalScope(c)).toBe(c);
        expect(c.toLowerCase() === s.toLowerCase()).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('scopeAllowed', () => {
  it('compares scopes and patterns in canonical form', () => {
    const upper = `org:${UUID.toUpperCase()}`;
    expect(scopeAllowed([`org:${UUID}`], upper)).toBe(true);
    expect(scopeAllowed([upper], `org:${UUID}`)).toBe(true);
    expect(scopeAllowed(['org:5E79*'], `org:${UUID}`)).toBe(true);
    expect(scopeAllowed([`agent:${UUID}`], upper)).toBe(false);
    expect(canonicalScopePattern('AGENT:*')).toBe('AGENT:*');
  });

  it('never allows a string that is not a scope, even under "*"', () => {
    expect(scopeAllowed(['*'], 'no colon')).toBe(false);
    expect(scopeAllowed(['*'], `org:${UUID}`)).toBe(true);
  });

  it('a spelling never grants another uuid than its lowercase form (property)', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.uuid(), fc.boolean(), (a, b, upper) => {
        const granted = `org:${upper ? a.toUpperCase() : a}`;
        expect(scopeAllowed([granted], `org:${b.toUpperCase()}`)).toBe(a === b);
      }),
      { numRuns: 300 },
    );
  });
});
