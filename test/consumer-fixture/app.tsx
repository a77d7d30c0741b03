/**
 * A small chat app as a consumer writes it, against the packed packages (test/consumer-fixture.test.ts
 * copies this file into a fresh project, type-checks it under the strictest settings with NodeNext
 * and Bundler resolution, and bundles it). Imports only the packages' public entry points.
 */
import { createMemoryStorage, createSyncClient, type SyncClient } from '@openagents/sync-client';
import type { ModelRecords } from '@openagents/sync-protocol';
import {
  SyncProvider,
  useAgentSync,
  useConnectionStatus,
  usePendingMutations,
  useRecord,
  useRecords,
  useScopeReady,
} from '@openagents/sync-react';
import { type FormEvent, useState } from 'react';
import { createRoot } from 'react-dom/client';

type Message = ModelRecords['Message'];

function MessageList({ messages }: { messages: readonly Message[] }) {
  return (
    <ol>
      {messages.map((m) => (
        <li key={m.id} data-role={m.role}>
          {m.content}
        </li>
      ))}
    </ol>
  );
}

function Chat({ orgId, agentId }: { orgId: string; agentId: string }) {
  const scope = `agent:${agentId}` as const;
  const { mutate } = useAgentSync(scope);
  const status = useAgentSync(scope, (s) => s.status);
  const ready = useScopeReady(scope);
  const messages = useRecords(scope, 'Message');
  useAgentSync(`org:${orgId}`);
  const agent = useRecord('Agent', agentId);
  const connection = useConnectionStatus();
  const pending = usePendingMutations().length;
  const [draft, setDraft] = useState('');

  const send = async (event: FormEvent) => {
    event.preventDefault();
    const content = draft.trim();
    if (!content) return;
    setDraft('');
    await mutate.insert('Message', { role: 'user', content });
  };

  return (
    <section>
      <header>
        {agent?.name ?? 'agent'} — {connection}, {status}
        {pending > 0 ? ` (${pending} sending)` : ''}
      </header>
      {ready ? <MessageList messages={messages} /> : <p>loading…</p>}
      <form onSubmit={send}>
        <input value={draft} onChange={(e) => setDraft(e.target.value)} />
        <button type="submit">Send</button>
      </form>
    </section>
  );
}

export function mount(element: HTMLElement, client: SyncClient, orgId: string, agentId: string): () => void {
  const root = createRoot(element);
  root.render(
    <SyncProvider client={client}>
      <Chat orgId={orgId} agentId={agentId} />
    </SyncProvider>,
  );
  return () => root.unmount();
}

export function start(element: HTMLElement, token: string): () => void {
  const client = createSyncClient({ url: location.origin, token, storage: createMemoryStorage() });
  const params = new URLSearchParams(location.search);
  return mount(element, client, params.get('org') ?? '', params.get('agent') ?? '');
}
