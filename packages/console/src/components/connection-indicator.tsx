/** Connection states the indicator knows how to label. Anything else is shown as-is. */
const LABELS: Record<string, string> = {
  idle: 'Not connected',
  connecting: 'Connecting',
  open: 'Live',
  reconnecting: 'Reconnecting',
  offline: 'Offline',
  closed: 'Closed',
};

/** The live connection's state and how many local writes still wait for the server. */
export function ConnectionIndicator({ status, pending }: { status: string; pending: number }) {
  const dotClass = status === 'idle' ? 'closed' : status;
  return (
    <output className="connection" data-testid="connection" data-status={status} data-pending={pending}>
      <span className={`dot ${dotClass}`} />
      <span>{LABELS[status] ?? status}</span>
      {pending > 0 && (
        <span className="pending-count" title="Writes waiting for the server">
          {pending} pending
        </span>
      )}
    </output>
  );
}
