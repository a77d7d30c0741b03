import { useAgentSync, usePendingMutations, useRecord, useRecords } from '@openagents/sync-react';
import { useCallback, useMemo } from 'react';
import { useConsole } from '../console-context';
import { errorMessage, scopeStatusLabel, shortId } from '../format';
import { Composer } from './composer';
import { MessageList } from './message-list';

/**
 * One agent's chat, followed through the `agent:<id>` scope. Sending a message writes it through
 * the sync client (optimistic, retried, idempotent) and then starts the simulated agent, whose
 * streamed reply comes back to every open page through the gateway.
 */
export function AgentChat({ orgId, agentId }: { orgId: string; agentId: string }) {
  const { client, config, replies, reportError } = useConsole();
  const scope = `agent:${agentId}`;
  // Only what the header shows: a streamed token (which moves lastSyncId) re-renders the header,
  // not the transcript's rows (each is memoised on its record).
  const status = useAgentSync(scope, (s) => s.status);
  const lastSyncId = useAgentSync(scope, (s) => s.lastSyncId);
  const agent = useRecord('Agent', agentId);
  // The scope's messages in commit order (created_sync_id), maintained by the client.
  const messages = useRecords(scope, 'Message');
  const pending = usePendingMutations();
  const pendingIds = useMemo(() => new Set(pending.map((p) => p.id)), [pending]);

  const streamingId = useMemo(() => {
    if (agent?.status !== 'running') return null;
    const last = messages.at(-1);
    return last?.role === 'assistant' ? last.id : null;
  }, [agent?.status, messages]);

  // One function while the chat and the console's services stay the same: the chat re-renders
  // per streamed token (its list and lastSyncId move), and a new `onSend` each time would
  // re-render the (memoised) composer with it.
  const send = useCallback(
    (content: string) => {
      const sent = client.insert('Message', { agent_id: agentId, role: 'user', content });
      sent.catch((e: unknown) => reportError(`Message not sent: ${errorMessage(e)}`));
      // The reply starts once the user's message is committed, so it always sorts after it.
      replies.enqueue({ baseUrl: config.url, token: config.token, agentId, orgId, prompt: content }, sent);
    },
    [client, reportError, replies, config.url, config.token, agentId, orgId],
  );

  return (
    <section className="chat" data-testid="chat" data-agent-id={agentId}>
      <header className="chat-header">
        <span className={`dot ${agent?.status ?? 'stopped'}`} />
        <div>
          <h2>{agent?.name ?? 'Loading agent…'}</h2>
          <div className="sub">
            <span className="mono">{shortId(agentId)}</span> · {agent?.status ?? '—'} · sync{' '}
            {scopeStatusLabel(status)}
            {lastSyncId > 0 && <span title="Last event of this scope applied here"> · #{lastSyncId}</span>}
          </div>
        </div>
      </header>
      <MessageList messages={messages} streamingId={streamingId} pendingIds={pendingIds} />
      <Composer onSend={send} />
    </section>
  );
}
