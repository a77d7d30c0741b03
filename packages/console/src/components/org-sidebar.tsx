import { type ScopeSnapshot, shallow, useAgentSync, useRecords } from '@openagents/sync-react';
import { useConsole } from '../console-context';
import { errorMessage, scopeStatusLabel } from '../format';
import { newId } from '../new-id';
import { AgentList } from './agent-list';
import { CreateAgentForm } from './create-agent-form';

/** The org's agents (followed through the `org:<id>` scope) and the form that adds one. */
export function OrgSidebar({
  orgId,
  selectedAgentId,
  onSelect,
}: {
  orgId: string;
  selectedAgentId: string | null;
  onSelect: (agentId: string) => void;
}) {
  const { client, reportError } = useConsole();
  const scope = `org:${orgId}`;
  const { status, error } = useAgentSync(scope, selectStatus, shallow);
  const agents = useRecords(scope, 'Agent'); // commit order, maintained by the client

  const create = (name: string) => {
    const id = newId();
    client.insert('Agent', { id, org_id: orgId, name }).catch((e: unknown) => reportError(errorMessage(e)));
    onSelect(id);
  };

  return (
    <nav className="sidebar">
      <div className="section-title">
        Agents
        <span data-testid="org-scope-status" data-status={status}>
          {status === 'live' ? agents.length : scopeStatusLabel(status)}
        </span>
      </div>
      <div className="scroll">
        {status === 'error' ? (
          <div className="empty error-line" data-testid="org-scope-error">
            This org cannot be read with the current token ({error ?? 'refused'}).
          </div>
        ) : (
          <AgentList agents={agents} selectedId={selectedAgentId} onSelect={onSelect} />
        )}
      </div>
      <CreateAgentForm onCreate={create} />
    </nav>
  );
}

const selectStatus = (s: ScopeSnapshot) => ({ status: s.status, error: s.error });
