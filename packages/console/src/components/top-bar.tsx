import { useConnectionStatus, usePendingMutations } from '@openagents/sync-react';
import { shortId } from '../format';
import { ConnectionIndicator } from './connection-indicator';

/** Brand, the current org, and the live connection state with the pending-write count. */
export function TopBar({ orgId, user }: { orgId: string; user: string }) {
  const status = useConnectionStatus();
  const pending = usePendingMutations();
  return (
    <header className="topbar">
      <div className="brand">
        <span className="brand-mark" />
        OpenAgents Sync <small>console</small>
      </div>
      <span className="org-chip" title={orgId}>
        org <strong className="mono">{shortId(orgId)}</strong>
      </span>
      <span className="spacer" />
      <span className="org-chip" title="Token subject">
        {user}
      </span>
      <ConnectionIndicator status={status} pending={pending.length} />
    </header>
  );
}
