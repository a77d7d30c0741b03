import type { SyncClient } from '@openagents/sync-client';
import { createContext, useContext } from 'react';
import type { ConsoleConfig } from './config';
import type { ReplyQueue } from './reply-queue';

/** What every console view may need beyond the synced data. */
export interface ConsoleServices {
  client: SyncClient;
  config: ConsoleConfig & { token: string };
  replies: ReplyQueue;
  /** Shows a problem in the banner (a refused write, a failed simulated reply). */
  reportError: (message: string) => void;
}

export const ConsoleContext = createContext<ConsoleServices | null>(null);

/** The console's services; throws outside `<ConsoleContext value>`. */
export function useConsole(): ConsoleServices {
  const services = useContext(ConsoleContext);
  if (!services) throw new Error('useConsole() needs a <ConsoleContext> above it');
  return services;
}
