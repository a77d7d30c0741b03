import type { Message } from '@openagents/sync-protocol';
import { memo, useMemo } from 'react';
import { formatTime } from '../format';

/** One message. Memoised: it renders again only when its record, caret or pending flag changes. */
export const MessageBubble = memo(function MessageBubble({
  message,
  streaming,
  pending,
}: {
  message: Message;
  streaming: boolean;
  pending: boolean;
}) {
  // The time line depends on created_at only: a streamed token (a new record, same created_at)
  // does not format it again.
  const time = useMemo(() => formatTime(message.created_at), [message.created_at]);
  return (
    <div
      className={`message ${message.role}${pending ? ' pending' : ''}`}
      data-testid="message"
      data-role={message.role}
      data-message-id={message.id}
    >
      <span className="avatar">
        {message.role === 'user'
          ? 'You'
          : message.role === 'assistant'
            ? 'AI'
            : message.role.slice(0, 2).toUpperCase()}
      </span>
      <div>
        <div className="bubble" data-testid="message-content">
          {message.content}
          {streaming && <span className="caret" />}
        </div>
        <div className="message-info">
          {message.role} · {pending ? 'sending…' : time}
        </div>
      </div>
    </div>
  );
});
