import type { Agent } from '@openagents/sync-protocol';

/** The org's agents, each with its live status; clicking one opens its chat. */
export function AgentList({
  agents,
  selectedId,
  onSelect,
}: {
  agents: readonly Agent[];
  selectedId: string | null;
  onSelect: (id: string) => void;
}) {
  if (agents.length === 0) return <div className="empty">No agents yet. Create one below.</div>;
  return (
    <ul className="agent-list" data-testid="agent-list">
      {agents.map((agent) => (
        <li key={agent.id}>
          <button
            type="button"
            className={`agent-item${agent.id === selectedId ? ' selected' : ''}`}
            onClick={() => onSelect(agent.id)}
            data-testid="agent-item"
            data-agent-id={agent.id}
          >
            <span className="avatar">{initials(agent.name)}</span>
            <span className="agent-meta">
              <span className="agent-name">{agent.name}</span>
              <span className="agent-status">
                <span className={`dot ${agent.status}`} />
                {agent.status}
              </span>
            </span>
          </button>
        </li>
      ))}
    </ul>
  );
}

function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? words[0]![0]! + words[1]![0]! : (words[0] ?? '?').slice(0, 2);
  return letters.toUpperCase();
}
