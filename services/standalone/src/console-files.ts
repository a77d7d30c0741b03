import type { Logger } from '@openagents/sync-server-kit';
import type { StaticHandler } from './standalone';

/** The console's files, or undefined when the console package does not provide them (yet). */
export async function consoleFiles(log: Logger): Promise<StaticHandler | undefined> {
  log.debug('console not bundled');
  return undefined;
}
