import type { Message } from '@openagents/sync-protocol';
import { useEffect, useRef } from 'react';
import { formatTime } from '../format';

/**
 * The chat transcript. `streamingId` marks the assistant message still being written (it gets
 * a caret); `pendingIds` are local messages the server has not confirmed yet.
 */
export function MessageList({
  messages,
  streamingId,
  pendingIds,
}: {
  messages: readonly Message[];
  streamingId: string | null;
  pendingIds: ReadonlySet<string>;
}) {
  const end = useRef<HTMLDivElement>(null);
  const last = messages.at(-1);
  // Follow the conversation as it grows, including while a reply streams in: the effect reads
  // nothing from these values, they are only what should trigger it.
  // biome-ignore lint/correctness/useExhaustiveDependencies: deliberate triggers, see above.
  useEffect(() => {
    end.current?.scrollIntoView({ block: 'end' });
  }, [messages.length, last?.content]);

  if (messages.length === 0) {
    return (
      <div className="messages">
        <div className="welcome">
          <h2>Start the conversation</h2>
          <p>Ask the agent something. Try “fix the login bug” to get a code change, or “buy more credits”.</p>
        </div>
      </div>
    );
  }
  return (
    <div className="messages" data-testid="messages">
      {messages.map((message) => {
        const pending = pendingIds.has(message.id);
        return (
          <div
            key={message.id}
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
                {message.id === streamingId && <span className="caret" />}
              </div>
              <div className="message-info">
                {message.role} · {pending ? 'sending…' : formatTime(message.created_at)}
              </div>
            </div>
          </div>
        );
      })}
      <div ref={end} />
    </div>
  );
}
