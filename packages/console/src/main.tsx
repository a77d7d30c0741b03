/**
 * Browser entry of the agent console: reads the config, builds the sync client (with IndexedDB
 * persistence unless `?persist=0`), exposes `window.__SYNC_DEBUG__`, and renders the app.
 */
import './styles.css';
import { createIndexedDbStorage, createSyncClient, type SyncClient } from '@openagents/sync-client';
import { SyncProvider } from '@openagents/sync-react';
import { useEffect, useMemo } from 'react';
import { createRoot } from 'react-dom/client';
import { App, useErrorBanner } from './components/app';
import { TokenGate } from './components/token-gate';
import { type ConfigSource, type ConsoleConfig, readConsoleConfig, TOKEN_STORAGE_KEY } from './config';
import { ConsoleContext, type ConsoleServices } from './console-context';
import { createSyncDebug } from './debug-socket';
import { instrumentStorage } from './debug-storage';
import { errorMessage } from './format';
import { ReplyQueue } from './reply-queue';
import { tokenSubject } from './token-subject';

declare global {
  interface Window {
    __SYNC_CONFIG__?: unknown;
    __SYNC_DEBUG__?: unknown;
  }
}

interface RootProps {
  client: SyncClient;
  config: ConsoleConfig & { token: string };
  user: string;
  replies: ReplyQueue;
}

function Root({ client, config, user, replies }: RootProps) {
  const [error, reportError, dismiss] = useErrorBanner();
  const services = useMemo<ConsoleServices>(
    () => ({ client, config, reportError, replies }),
    [client, config, reportError, replies],
  );
  useEffect(() => {
    replies.onError = (e) => reportError(`The simulated agent stopped: ${errorMessage(e)}`);
  }, [replies, reportError]);
  return (
    <SyncProvider client={client}>
      <ConsoleContext value={services}>
        <App user={user} error={error} onDismissError={dismiss} />
      </ConsoleContext>
    </SyncProvider>
  );
}

function start(): void {
  const root = createRoot(document.getElementById('root')!);
  const config = readConsoleConfig(window as unknown as ConfigSource);
  if (!config.token) {
    root.render(
      <TokenGate
        onToken={(token) => {
          localStorage.setItem(TOKEN_STORAGE_KEY, token);
          location.reload();
        }}
      />,
    );
    return;
  }
  const token = config.token;
  const user = tokenSubject(token);
  const persist = new URLSearchParams(location.search).get('persist') !== '0';
  const { debug, WebSocket } = createSyncDebug(window.WebSocket);
  const persisted: Record<string, number> = {};
  // One database per deployment and user, so accounts sharing a browser never mix records.
  const storage = persist
    ? instrumentStorage(createIndexedDbStorage(`openagents-sync-console:${config.url}:${user}`), persisted)
    : undefined;
  const client = createSyncClient({ url: config.url, token, WebSocket, ...(storage ? { storage } : {}) });
  const replies = new ReplyQueue((e) => console.error('simulated agent failed', e));
  window.__SYNC_DEBUG__ = Object.assign(debug, {
    client,
    replies: replies.stats,
    persist,
    persisted,
    url: config.url,
    tokenSource: config.source,
  });
  // Rendered at once: the scopes the views follow before IndexedDB has been read still resume
  // from their stored cursors (the client connects only after hydrating).
  root.render(<Root client={client} config={{ ...config, token }} user={user} replies={replies} />);
}

start();
