import { describe, expect, it } from 'vitest';
import { diffStats, parseDiff } from './diff';

describe('parseDiff', () => {
  it('numbers old and new lines from the hunk header', () => {
    const lines = parseDiff(
      ['--- a/x.ts', '+++ b/x.ts', '@@ -10,3 +10,3 @@', ' keep', '-old', '+new', ' tail', ''].join('\n'),
    );
    expect(lines.map((l) => l.kind)).toEqual(['file', 'file', 'hunk', 'context', 'del', 'add', 'context']);
    expect(lines[3]).toMatchObject({ text: 'keep', oldLine: 10, newLine: 10 });
    expect(lines[4]).toMatchObject({ text: 'old', oldLine: 11, newLine: null });
    expect(lines[5]).toMatchObject({ text: 'new', oldLine: null, newLine: 11 });
    expect(lines[6]).toMatchObject({ text: 'tail', oldLine: 12, newLine: 12 });
    expect(diffStats(lines)).toEqual({ added: 1, removed: 1 });
  });

  it('shows text that is not a diff as context instead of failing', () => {
    const lines = parseDiff('just some text\r\n<b>not html</b>');
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.kind === 'context')).toBe(true);
    expect(lines[1]!.text).toBe('<b>not html</b>');
  });

  it('handles an empty diff', () => {
    expect(parseDiff('')).toEqual([]);
  });
});
