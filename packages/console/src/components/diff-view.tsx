import { useMemo } from 'react';
import { parseDiff } from '../diff';

/** A unified diff as a table with old/new line numbers and coloured additions and removals. */
export function DiffView({ diff }: { diff: string }) {
  const lines = useMemo(() => parseDiff(diff), [diff]);
  return (
    <div className="diff-body">
      <table className="diff">
        <tbody>
          {lines.map((line, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: a diff's lines have no identity of their own; the list is rebuilt whole when the diff changes.
            <tr key={i} className={line.kind}>
              <td className="ln">{line.oldLine ?? ''}</td>
              <td className="ln">{line.newLine ?? ''}</td>
              <td className="code">{line.text}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
