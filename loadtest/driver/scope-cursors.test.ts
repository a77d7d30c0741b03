import { describe, expect, it } from 'vitest';
import { ScopeCursors } from './scope-cursors';

describe('ScopeCursors', () => {
  it('accepts contiguous ids after a bootstrap', () => {
    const c = new ScopeCursors();
    c.baseline('agent:a', 3);
    expect(c.apply('agent:a', [4, 5])).toEqual({ accepted: 2, duplicates: 0, lost: 0 });
    expect(c.apply('agent:a', [6])).toEqual({ accepted: 1, duplicates: 0, lost: 0 });
    expect(c.cursor('agent:a')).toBe(6);
  });

  it('counts duplicates without moving the cursor back', () => {
    const c = new ScopeCursors();
    c.baseline('agent:a', 0);
    c.apply('agent:a', [1, 2]);
    expect(c.apply('agent:a', [2, 1, 3])).toEqual({ accepted: 1, duplicates: 2, lost: 0 });
    expect(c.cursor('agent:a')).toBe(3);
  });

  it('counts every skipped id as lost', () => {
    const c = new ScopeCursors();
    c.baseline('agent:a', 0);
    expect(c.apply('agent:a', [1, 4, 5, 9])).toEqual({ accepted: 4, duplicates: 0, lost: 5 });
  });

  it('keeps scopes apart and resumes from a new baseline', () => {
    const c = new ScopeCursors();
    c.baseline('agent:a', 0);
    c.baseline('agent:b', 10);
    c.apply('agent:a', [1]);
    expect(c.apply('agent:b', [11])).toEqual({ accepted: 1, duplicates: 0, lost: 0 });
    c.baseline('agent:a', 7);
    expect(c.apply('agent:a', [8])).toEqual({ accepted: 1, duplicates: 0, lost: 0 });
    expect([...c.entries()]).toEqual([
      ['agent:a', 8],
      ['agent:b', 11],
    ]);
  });
});

describe('ScopeCursors.applyOne', () => {
  it('answers a duplicate or the ids skipped, as apply counts them', () => {
    const c = new ScopeCursors();
    expect(c.applyOne('agent:a', 7)).toBe(0); // no baseline yet: taken as one
    expect(c.applyOne('agent:a', 8)).toBe(0);
    expect(c.applyOne('agent:a', 8)).toBe('duplicate');
    expect(c.applyOne('agent:a', 5)).toBe('duplicate');
    expect(c.applyOne('agent:a', 11)).toBe(2);
    expect(c.cursor('agent:a')).toBe(11);
  });
});
