import type { Payment } from '@openagents/sync-protocol';
import { formatAmount, formatTime } from '../format';

type Decision = 'settled' | 'failed';

/** The org's payments, newest first; pending ones can be approved (settled) or declined. */
export function PaymentsPanel({
  payments,
  agentNames,
  onDecide,
}: {
  payments: readonly Payment[];
  agentNames: Readonly<Record<string, string>>;
  onDecide: (id: string, status: Decision) => void;
}) {
  if (payments.length === 0) return <div className="empty">No payments in this org yet.</div>;
  return (
    <ul className="payments" data-testid="payments">
      {[...payments].reverse().map((payment) => (
        <li key={payment.id} className="payment" data-testid="payment" data-status={payment.status}>
          <span className="amount">{formatAmount(payment.amount, payment.currency)}</span>
          <span className={`pill ${payment.status}`}>{payment.status}</span>
          <span className="who">
            {payment.agent_id ? (agentNames[payment.agent_id] ?? 'Unknown agent') : 'Org'} ·{' '}
            {formatTime(payment.created_at)}
          </span>
          {payment.status === 'pending' && (
            <div className="card-actions">
              <button type="button" className="ok" onClick={() => onDecide(payment.id, 'settled')}>
                Approve
              </button>
              <button type="button" className="danger" onClick={() => onDecide(payment.id, 'failed')}>
                Decline
              </button>
            </div>
          )}
        </li>
      ))}
    </ul>
  );
}
