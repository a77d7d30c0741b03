// @vitest-environment jsdom
import type { CodeChange, Message, Payment } from '@openagents/sync-protocol';
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatTime } from '../format';
import { CodeChangesPanel } from './code-changes-panel';
import { Composer } from './composer';
import { ConnectionIndicator } from './connection-indicator';
import { CreateAgentForm } from './create-agent-form';
import { MessageList } from './message-list';
import { PaymentsPanel } from './payments-panel';

vi.mock('../format', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../format')>();
  return { ...actual, formatTime: vi.fn(actual.formatTime) };
});

// The real bubble (memoised as it is), counting its renders by message id.
const bubbleRenders = vi.fn<(id: string) => void>();
vi.mock('./message-bubble', async (importOriginal) => {
  const actual = await importOriginal<typeof import('./message-bubble')>();
  const { countingRenders } = await import('../../test/count-renders');
  return { MessageBubble: countingRenders(actual.MessageBubble, (p) => bubbleRenders(p.message.id)) };
});

afterEach(cleanup);

const AGENT = '20000000-0000-4000-8000-000000000001';
const ORG = '00000000-0000-4000-8000-0000000000aa';
const at = '2026-11-25T19:00:00.000Z';

function message(id: string, role: Message['role'], content: string): Message {
  return { id, agent_id: AGENT, role, content, created_at: at, updated_at: at };
}

describe('MessageList', () => {
  it('renders content as text, marks pending messages and the one still streaming', () => {
    const hostile = '<img src=x onerror="alert(1)"> **not markdown**';
    const { container } = render(
      <MessageList
        messages={[message('m1', 'user', hostile), message('m2', 'assistant', 'Thinking')]}
        streamingId="m2"
        pendingIds={new Set(['m1'])}
      />,
    );
    const bubbles = screen.getAllByTestId('message-content');
    expect(bubbles[0]!.textContent).toBe(hostile);
    expect(container.querySelector('img')).toBeNull();
    expect(container.querySelector('.message.pending')?.getAttribute('data-message-id')).toBe('m1');
    expect(bubbles[1]!.querySelector('.caret')).not.toBeNull();
    expect(bubbles[0]!.querySelector('.caret')).toBeNull();
  });
});

describe('MessageList with a long conversation', () => {
  it('renders only a window of a 10,000-message agent, and re-renders only the bubble that changed', () => {
    const messages = Array.from({ length: 10_000 }, (_, i) =>
      message(`m${i}`, i % 2 ? 'assistant' : 'user', `message ${i}`),
    );
    const noPending = new Set<string>();
    const { container, rerender } = render(
      <MessageList messages={messages} streamingId={null} pendingIds={noPending} />,
    );
    const shown = container.querySelectorAll('[data-testid=message]').length;
    expect(shown).toBeGreaterThan(0);
    expect(shown).toBeLessThan(40);
    const formatted = vi.mocked(formatTime);
    formatted.mockClear();
    bubbleRenders.mockClear();
    // A token lands in a message in view (jsdom has no scrolling, so the window is the first
    // rows): a new list whose other records are the same objects.
    const streaming = messages.map((m) => (m.id === 'm3' ? { ...m, content: 'message 3 and more' } : m));
    rerender(<MessageList messages={streaming} streamingId="m3" pendingIds={noPending} />);
    expect(bubbleRenders.mock.calls).toEqual([['m3']]);
    // Its time line did not change, and is not formatted again.
    expect(formatted).not.toHaveBeenCalled();
    expect(container.querySelector('[data-message-id=m3] [data-testid=message-content]')?.textContent).toBe(
      'message 3 and more',
    );
  });
});

describe('CodeChangesPanel', () => {
  const change = (id: string, status: CodeChange['status']): CodeChange => ({
    id,
    agent_id: AGENT,
    path: 'src/x.ts',
    diff: '--- a/src/x.ts\n+++ b/src/x.ts\n@@ -1,2 +1,2 @@\n-old\n+new\n ctx\n',
    status,
    created_at: at,
    updated_at: at,
  });

  it('offers apply and reject only for proposed changes, and reports the decision', () => {
    const onDecide = vi.fn();
    render(
      <CodeChangesPanel changes={[change('c1', 'applied'), change('c2', 'proposed')]} onDecide={onDecide} />,
    );
    const cards = screen.getAllByTestId('code-change');
    // Newest first.
    expect(cards.map((c) => c.getAttribute('data-status'))).toEqual(['proposed', 'applied']);
    expect(screen.getAllByTestId('apply')).toHaveLength(1);
    fireEvent.click(screen.getByTestId('reject'));
    expect(onDecide).toHaveBeenCalledWith('c2', 'rejected');
    expect(cards[0]!.querySelectorAll('tr.add')).toHaveLength(1);
    expect(cards[0]!.querySelectorAll('tr.del')).toHaveLength(1);
  });
});

describe('PaymentsPanel', () => {
  it('formats minor units and names the agent', () => {
    const payment: Payment = {
      id: 'p1',
      org_id: ORG,
      agent_id: AGENT,
      amount: 1250,
      currency: 'USD',
      status: 'pending',
      created_at: at,
      updated_at: at,
    };
    const onDecide = vi.fn();
    render(<PaymentsPanel payments={[payment]} agentNames={{ [AGENT]: 'Scout' }} onDecide={onDecide} />);
    expect(screen.getByTestId('payment').textContent).toContain('12.50');
    expect(screen.getByTestId('payment').textContent).toContain('Scout');
    fireEvent.click(screen.getByRole('button', { name: 'Approve' }));
    expect(onDecide).toHaveBeenCalledWith('p1', 'settled');
  });
});

describe('forms', () => {
  it('sends on Enter, keeps Shift+Enter for new lines, and ignores blank input', () => {
    const onSend = vi.fn();
    render(<Composer onSend={onSend} />);
    const input = screen.getByTestId('composer-input');
    fireEvent.change(input, { target: { value: '   ' } });
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(onSend).not.toHaveBeenCalled();
    fireEvent.change(input, { target: { value: 'hello' } });
    fireEvent.keyDown(input, { key: 'Enter', shiftKey: true });
    expect(onSend).not.toHaveBeenCalled();
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(onSend).toHaveBeenCalledWith('hello');
    expect((input as HTMLTextAreaElement).value).toBe('');
  });

  it('trims agent names and caps them at the API limit', () => {
    const onCreate = vi.fn();
    render(<CreateAgentForm onCreate={onCreate} />);
    const input = screen.getByTestId('new-agent-name');
    fireEvent.change(input, { target: { value: `  ${'n'.repeat(300)}  ` } });
    fireEvent.click(screen.getByTestId('create-agent'));
    expect(onCreate).toHaveBeenCalledWith('n'.repeat(200));
  });
});

describe('ConnectionIndicator', () => {
  it('labels the state and shows pending writes only when there are some', () => {
    const { rerender } = render(<ConnectionIndicator status="open" pending={0} />);
    expect(screen.getByTestId('connection').textContent).toBe('Live');
    rerender(<ConnectionIndicator status="offline" pending={2} />);
    expect(screen.getByTestId('connection').textContent).toBe('Offline2 pending');
  });
});
