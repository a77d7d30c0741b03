import { type FormEvent, type KeyboardEvent, memo, useState } from 'react';

/**
 * The message box: Enter sends, Shift+Enter adds a line. Memoised: the chat around it re-renders
 * per streamed token, the box only when its own props (a stable `onSend`) or text change.
 */
export const Composer = memo(function Composer({
  onSend,
  disabled,
}: {
  onSend: (text: string) => void;
  disabled?: boolean;
}) {
  const [text, setText] = useState('');
  const send = () => {
    const trimmed = text.trim();
    if (!trimmed || disabled) return;
    onSend(trimmed);
    setText('');
  };
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    send();
  };
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      send();
    }
  };
  return (
    <form className="composer" onSubmit={onSubmit}>
      <textarea
        value={text}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
        placeholder="Message the agent…  (Enter to send, Shift+Enter for a new line)"
        rows={1}
        aria-label="Message"
        data-testid="composer-input"
      />
      <button
        type="submit"
        className="primary"
        disabled={disabled || !text.trim()}
        data-testid="composer-send"
      >
        Send
      </button>
    </form>
  );
});
