import type { Payment } from '@openagents/sync-protocol';
import { useRecords } from '@openagents/sync-react';
import { useCallback, useMemo, useState } from 'react';
import { useConsole } from '../console-context';
import { errorMessage } from '../format';
import { CodeChangesPanel } from './code-changes-panel';
import { PaymentsPanel } from './payments-panel';
import { ReasoningPanel } from './reasoning-panel';

type Tab = 'reasoning' | 'code' | 'payments';

/**
 * The right-hand panel: the selected agent's reasoning steps and code changes, and the org's
 * payments. Scopes are followed by the chat and the sidebar; this only reads the records.
 */
export function Inspector({ orgId, agentId }: { orgId: string; agentId: string | null }) {
  const { client, reportError } = useConsole();
  const [tab, setTab] = useState<Tab>('reasoning');
  const [onlyAgent, setOnlyAgent] = useState(true);

  // No agent selected: a scope nothing lives in, so the lists are empty.
  const agentScope = `agent:${agentId ?? 'none'}`;
  const orgScope = `org:${orgId}`;
  // Every list in commit order (created_sync_id), maintained by the client.
  const steps = useRecords(agentScope, 'ReasoningStep');
  const changes = useRecords(agentScope, 'CodeChange');
  const ofAgent = useCallback(
    (p: Payment) => !onlyAgent || !agentId || p.agent_id === agentId,
    [agentId, onlyAgent],
  );
  const payments = useRecords('Payment', { scope: orgScope, filter: ofAgent });
  const agents = useRecords(orgScope, 'Agent');
  const agentNames = useMemo(() => Object.fromEntries(agents.map((a) => [a.id, a.name])), [agents]);

  const proposed = changes.filter((c) => c.status === 'proposed').length;
  const pendingPayments = payments.filter((p) => p.status === 'pending').length;
  const fail = (e: unknown) => reportError(errorMessage(e));

  return (
    <aside className="inspector">
      <div className="tabs" role="tablist">
        <TabButton id="reasoning" current={tab} onSelect={setTab} label="Reasoning" count={steps.length} />
        <TabButton
          id="code"
          current={tab}
          onSelect={setTab}
          label="Code"
          count={proposed || changes.length}
        />
        <TabButton
          id="payments"
          current={tab}
          onSelect={setTab}
          label="Payments"
          count={pendingPayments || payments.length}
        />
      </div>
      {tab === 'payments' && agentId && (
        <div className="section-title">
          {onlyAgent ? 'This agent' : 'Whole org'}
          <span className="filter-toggle">
            <button type="button" className={onlyAgent ? 'active' : ''} onClick={() => setOnlyAgent(true)}>
              Agent
            </button>
            <button type="button" className={onlyAgent ? '' : 'active'} onClick={() => setOnlyAgent(false)}>
              Org
            </button>
          </span>
        </div>
      )}
      <div className="scroll">
        {!agentId && tab !== 'payments' ? (
          <div className="empty">Select an agent to see its reasoning and code changes.</div>
        ) : tab === 'reasoning' ? (
          <ReasoningPanel steps={steps} />
        ) : tab === 'code' ? (
          <CodeChangesPanel
            changes={changes}
            onDecide={(id, status) => client.update('CodeChange', id, { status }).catch(fail)}
          />
        ) : (
          <PaymentsPanel
            payments={payments}
            agentNames={agentNames}
            onDecide={(id, status) => client.update('Payment', id, { status }).catch(fail)}
          />
        )}
      </div>
    </aside>
  );
}

function TabButton({
  id,
  current,
  onSelect,
  label,
  count,
}: {
  id: Tab;
  current: Tab;
  onSelect: (tab: Tab) => void;
  label: string;
  count: number;
}) {
  return (
    <button
      type="button"
      role="tab"
      aria-selected={id === current}
      className={`tab${id === current ? ' active' : ''}`}
      onClick={() => onSelect(id)}
      data-testid={`tab-${id}`}
    >
      {label}
      {count > 0 && <span className="count">{count}</span>}
    </button>
  );
}
