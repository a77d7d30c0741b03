import { useAgentSync, useRecords } from '@openagents/sync-react';
import { useConsole } from '../console-context';
import { byCreatedAt } from '../format';
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
  const { status } = useAgentSync(scope);
  const agents = useRecords('Agent', { scope, sort: byCreatedAt });

  const create = (name: string) => {
    const id = crypto.randomUUID();
    client.insert('Agent', { id, org_id: orgId, name }).catch((e: unknown) => reportError(describe(e)));
    onSelect(id);
  };

  return (
    <nav className="sidebar">
      <div className="section-title">
        Agents
        <span data-testid="org-scope-status">{status === 'live' ? agents.length : status}</span>
      </div>
      <div className="scroll">
        <AgentList agents={agents} selectedId={selectedAgentId} onSelect={onSelect} />
      </div>
      <CreateAgentForm onCreate={create} />
    </nav>
  );
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
