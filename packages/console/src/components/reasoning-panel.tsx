import type { ReasoningStep } from '@openagents/sync-protocol';
import { formatTime } from '../format';

/** The agent's reasoning steps as a timeline, oldest first. */
export function ReasoningPanel({ steps }: { steps: readonly ReasoningStep[] }) {
  if (steps.length === 0)
    return <div className="empty">Reasoning steps appear here while the agent works.</div>;
  return (
    <ol className="steps" data-testid="reasoning-steps">
      {steps.map((step) => (
        <li key={step.id} className="step" data-testid="reasoning-step">
          {step.content}
          <time dateTime={step.created_at}>{formatTime(step.created_at)}</time>
        </li>
      ))}
    </ol>
  );
}
