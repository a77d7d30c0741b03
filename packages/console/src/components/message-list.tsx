import type { Message } from '@openagents/sync-protocol';
import { measureElement, observeElementRect, useVirtualizer } from '@tanstack/react-virtual';
import { useCallback, useLayoutEffect, useRef } from 'react';
import { MessageBubble } from './message-bubble';

/** How close to the end (px) still counts as "following" the conversation. */
const FOLLOW_SLACK_PX = 48;
/** A first guess at a bubble's height; each row is measured once rendered. */
const ESTIMATED_ROW_PX = 88;
/** The viewport assumed while the list has no layout (jsdom, a hidden tab): a first screenful. */
const NO_LAYOUT_RECT = { width: 800, height: 900 };

/**
 * The chat transcript, virtualised: only the rows in view (plus a few) are in the DOM, so a
 * 10,000-message agent costs what 20 messages cost. `messages` is the scope's maintained list in
 * commit order; each row is memoised on its record object, which the client replaces only when
 * that record changes, so a streamed token re-renders one bubble. `streamingId` marks the
 * assistant message still being written (it gets a caret); `pendingIds` are local messages the
 * server has not confirmed yet.
 *
 * Scrolling: while the reader is at the end, the list follows new messages and the growing reply;
 * once they scroll up it stays where they are (rows above that change height are compensated by
 * the virtualiser, so nothing jumps), and following resumes when they scroll back to the end.
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
  const scroller = useRef<HTMLDivElement>(null);
  const following = useRef(true);
  const current = useRef(messages);
  current.current = messages;
  // The virtualiser recomputes every row's key and position (O(n)) whenever this function is a
  // new one, so it is one per list shape: a new count, or a new newest message (an optimistic
  // one confirmed moves into place at the end) — not one per streamed token.
  const newestId = messages.at(-1)?.id;
  // biome-ignore lint/correctness/useExhaustiveDependencies: the shape of the list, read through the ref.
  const getItemKey = useCallback((index: number) => current.current[index]!.id, [messages.length, newestId]);
  const virtualizer = useVirtualizer({
    count: messages.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ESTIMATED_ROW_PX,
    getItemKey,
    overscan: 6,
    // Without layout (jsdom, a hidden tab) render a first screenful rather than nothing.
    initialRect: NO_LAYOUT_RECT,
    observeElementRect: (instance, cb) =>
      observeElementRect(instance, (rect) => cb(rect.height > 0 ? rect : NO_LAYOUT_RECT)),
    // A row with no layout measures 0 px; keep its estimate, or every row would "fit".
    measureElement: (element, entry, instance) =>
      measureElement(element, entry, instance) || ESTIMATED_ROW_PX,
  });

  const onScroll = useCallback(() => {
    const el = scroller.current;
    if (!el) return;
    following.current = el.scrollHeight - el.scrollTop - el.clientHeight <= FOLLOW_SLACK_PX;
  }, []);

  const totalSize = virtualizer.getTotalSize();
  // Follow the conversation while the reader is at its end: a new message, or a row measured
  // taller than before (a growing reply that wrapped a line, a row taller than its estimate),
  // moves the end. The values are only triggers. Not the streamed text itself: a token that does
  // not wrap a line leaves the end where it is, and reading `scrollHeight` after each one forced
  // a synchronous layout per token; a token that does wrap changes the row's measured height,
  // hence `totalSize`.
  // biome-ignore lint/correctness/useExhaustiveDependencies: deliberate triggers, see above.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el || !following.current || messages.length === 0) return;
    el.scrollTop = el.scrollHeight;
  }, [messages.length, totalSize]);

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
    <div className="messages" data-testid="messages" ref={scroller} onScroll={onScroll}>
      <div className="messages-window" style={{ height: totalSize }}>
        {virtualizer.getVirtualItems().map((row) => {
          const message = messages[row.index]!;
          return (
            <div
              key={row.key}
              className="message-row"
              data-index={row.index}
              ref={virtualizer.measureElement}
              style={{ transform: `translateY(${row.start}px)` }}
            >
              <MessageBubble
                message={message}
                streaming={message.id === streamingId}
                pending={pendingIds.has(message.id)}
              />
            </div>
          );
        })}
      </div>
    </div>
  );
}
