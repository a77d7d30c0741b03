import { useConnectionStatus, usePendingMutations } from '@openagents/sync-react';
import { ConnectionIndicator } from './connection-indicator';
import { OrgSwitcher } from './org-switcher';

/** Brand, the current org, and the live connection state with the pending-write count. */
export function TopBar({
  orgId,
  user,
  onOpenOrg,
}: {
  orgId: string;
  user: string;
  onOpenOrg: (orgId: string) => void;
}) {
  const status = useConnectionStatus();
  const pending = usePendingMutations();
  return (
    <header className="topbar">
      <div className="brand">
        <span className="brand-mark" />
        OpenAgents Sync <small>console</small>
      </div>
      <OrgSwitcher orgId={orgId} onOpen={onOpenOrg} />
      <span className="spacer" />
      <span className="org-chip" title="Token subject">
        {user}
      </span>
      <ConnectionIndicator status={status} pending={pending.length} />
    </header>
  );
}
