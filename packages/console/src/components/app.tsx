import { useCallback, useState } from 'react';
import { useHashRoute } from '../use-hash-route';
import { AgentChat } from './agent-chat';
import { Inspector } from './inspector';
import { OrgSidebar } from './org-sidebar';
import { TopBar } from './top-bar';

/** The console: org sidebar, the selected agent's chat, and the inspector. */
export function App({
  user,
  error,
  onDismissError,
}: {
  user: string;
  error: string | null;
  onDismissError: () => void;
}) {
  const [route, navigate] = useHashRoute();
  const select = useCallback(
    (agentId: string) => navigate({ orgId: route.orgId, agentId }),
    [navigate, route.orgId],
  );
  return (
    <div className="shell">
      <TopBar orgId={route.orgId} user={user} onOpenOrg={(orgId) => navigate({ orgId, agentId: null })} />
      <div className="layout">
        <OrgSidebar orgId={route.orgId} selectedAgentId={route.agentId} onSelect={select} />
        <main className="main">
          {error && (
            <div className="banner" role="alert">
              {error}{' '}
              <button type="button" className="ghost" onClick={onDismissError}>
                Dismiss
              </button>
            </div>
          )}
          {route.agentId ? (
            <AgentChat key={route.agentId} orgId={route.orgId} agentId={route.agentId} />
          ) : (
            <NoAgent />
          )}
        </main>
        <Inspector orgId={route.orgId} agentId={route.agentId} />
      </div>
    </div>
  );
}

function NoAgent() {
  return (
    <div className="messages">
      <div className="welcome">
        <h2>Pick an agent</h2>
        <p>
          Choose an agent on the left, or create one. Open this page in a second window to watch changes sync
          live.
        </p>
      </div>
    </div>
  );
}

/** Holds the banner message for the whole app. */
export function useErrorBanner(): [string | null, (message: string) => void, () => void] {
  const [error, setError] = useState<string | null>(null);
  const report = useCallback((message: string) => setError(message), []);
  const dismiss = useCallback(() => setError(null), []);
  return [error, report, dismiss];
}
