/**
 * Node side of the agent console: build the browser bundle on demand and serve it.
 * The browser app itself starts at `src/main.tsx` and is bundled by Vite, not imported from here.
 *
 * @example
 * const { distDir } = await ensureConsoleBuilt();
 * const assets = createConsoleAssets({ distDir, config: { token: devToken } });
 * // per request, after the API/sync routes:
 * const response = await assets.handle(request); // undefined for /api, /sync, /healthz, /readyz, /metrics
 */
export {
  type BuildConsoleOptions,
  type BuildResult,
  buildConsole,
  CONSOLE_DIST_DIR,
  CONSOLE_ROOT,
  ensureConsoleBuilt,
  isConsoleBuildFresh,
  ViteUnavailableError,
} from './build-console';
export type { SyncConsoleConfig } from './config';
export {
  type ConsoleAsset,
  type ConsoleAssets,
  type ConsoleAssetsOptions,
  createConsoleAssets,
  injectConfig,
  RESERVED_PREFIXES,
} from './console-assets';
export { DEMO_ORG_ID } from './route';
export {
  planReply,
  runSimulatedReply,
  SIMULATED_AGENT_DEFAULTS,
  SimulatedAgentError,
  type SimulatedReplyOptions,
  type SimulatedReplyResult,
} from './simulated-agent';
