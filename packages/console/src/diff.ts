/** One rendered line of a unified diff. */
export interface DiffLine {
  kind: 'file' | 'hunk' | 'add' | 'del' | 'context';
  text: string;
  /** Line number in the old file (context and deleted lines). */
  oldLine: number | null;
  /** Line number in the new file (context and added lines). */
  newLine: number | null;
}

export interface DiffStats {
  added: number;
  removed: number;
}

const HUNK = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/;

/**
 * Splits a unified diff into typed lines with old/new line numbers, for the diff view. Input is
 * untrusted text from a synced record: anything it does not recognise is shown as context.
 */
export function parseDiff(diff: string): DiffLine[] {
  const lines = diff.replace(/\r\n/g, '\n').split('\n');
  if (lines.at(-1) === '') lines.pop();
  let oldLine = 0;
  let newLine = 0;
  const out: DiffLine[] = [];
  for (const text of lines) {
    if (text.startsWith('--- ') || text.startsWith('+++ ')) {
      out.push({ kind: 'file', text, oldLine: null, newLine: null });
      continue;
    }
    const hunk = HUNK.exec(text);
    if (hunk) {
      oldLine = Number(hunk[1]);
      newLine = Number(hunk[2]);
      out.push({ kind: 'hunk', text, oldLine: null, newLine: null });
      continue;
    }
    if (text.startsWith('+')) {
      out.push({ kind: 'add', text: text.slice(1), oldLine: null, newLine: newLine++ });
    } else if (text.startsWith('-')) {
      out.push({ kind: 'del', text: text.slice(1), oldLine: oldLine++, newLine: null });
    } else {
      out.push({
        kind: 'context',
        text: text.startsWith(' ') ? text.slice(1) : text,
        oldLine: oldLine++,
        newLine: newLine++,
      });
    }
  }
  return out;
}

/** Counts added and removed lines. */
export function diffStats(lines: readonly DiffLine[]): DiffStats {
  let added = 0;
  let removed = 0;
  for (const line of lines) {
    if (line.kind === 'add') added++;
    else if (line.kind === 'del') removed++;
  }
  return { added, removed };
}
