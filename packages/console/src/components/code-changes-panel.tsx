import type { CodeChange } from '@openagents/sync-protocol';
import { useMemo } from 'react';
import { diffStats, parseDiff } from '../diff';
import { DiffView } from './diff-view';

type Decision = 'applied' | 'rejected';

/** Code changes the agent proposed, newest first, each with its diff and apply/reject. */
export function CodeChangesPanel({
  changes,
  onDecide,
}: {
  changes: readonly CodeChange[];
  onDecide: (id: string, status: Decision) => void;
}) {
  if (changes.length === 0) return <div className="empty">No code changes proposed yet.</div>;
  return (
    <div data-testid="code-changes">
      {[...changes].reverse().map((change) => (
        <CodeChangeCard key={change.id} change={change} onDecide={onDecide} />
      ))}
    </div>
  );
}

function CodeChangeCard({
  change,
  onDecide,
}: {
  change: CodeChange;
  onDecide: (id: string, status: Decision) => void;
}) {
  const stats = useMemo(() => diffStats(parseDiff(change.diff)), [change.diff]);
  return (
    <section className="card" data-testid="code-change" data-status={change.status}>
      <header className="card-head">
        <code className="path" title={change.path}>
          {change.path}
        </code>
        <span className="mono stat-add">+{stats.added}</span>
        <span className="mono stat-del">−{stats.removed}</span>
        <span className={`pill ${change.status}`}>{change.status}</span>
      </header>
      <DiffView diff={change.diff} />
      {change.status === 'proposed' && (
        <div className="card-actions">
          <button
            type="button"
            className="ok"
            onClick={() => onDecide(change.id, 'applied')}
            data-testid="apply"
          >
            Apply
          </button>
          <button
            type="button"
            className="danger"
            onClick={() => onDecide(change.id, 'rejected')}
            data-testid="reject"
          >
            Reject
          </button>
        </div>
      )}
    </section>
  );
}
