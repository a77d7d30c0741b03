import uWS from 'uWebSockets.js';
import { writeHeapSnapshot } from 'node:v8';
import { type BootstrapResponse, MODEL_NAMES, type ModelsSnapshot } from '@openagents/sync-protocol';
import {
  createAuth,
  createLogger,
  createMemoryBus,
  createRegistry,
  type DeltaSource,
} from '@openagents/sync-server-kit';
import { TEST_JWT_SECRET } from '../../../test/support/tokens';
import { GatewayEnv, gatewayDefaults } from '../src/config';
import { createGateway } from '../src/gateway';
import { createPlainUwsApp } from './plain-uws-app';

// Child process of the connection-memory phase of `npm run bench:fanout` (connection-memory.ts),
// run with --expose-gc. SYSTEM=gateway: the real gateway (createGateway, as main.ts builds it)
// over an in-process bus and an in-memory, empty log, so that nothing but the connections grows.
// WS_COMPRESSION applies to the gateway as in production (the clients then offer deflate).
// SYSTEM=plain: the minimal uWS server of plain-uws-server.ts (topic + bootstrap + subscribed).
// IPC: 'measure' answers the process's memory after full collections; 'snapshot' writes a heap
// snapshot (for the where-it-went breakdown).

export type MemoryCommand = { cmd: 'measure' } | { cmd: 'snapshot'; path: string };
export interface MemoryFigures {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  connections: number;
}
export type MemoryReport =
  | { type: 'ready'; port: number }
  | { type: 'measured'; figures: MemoryFigures }
  | { type: 'snapshot'; path: string };

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const EMPTY = Object.fromEntries(MODEL_NAMES.map((name) => [name, []])) as unknown as ModelsSnapshot;
/** An empty log: every scope bootstraps at 0 and has no events. */
const emptyLog: DeltaSource = {
  bootstrap: async (scope): Promise<BootstrapResponse> => ({ scope, models: EMPTY, lastSyncId: 0 }),
  delta: async (scope) => ({ scope, events: [], latestSyncId: 0, hasMore: false }),
  heads: async (scopes) => new Map(scopes.map((s) => [s, 0])),
};

let connections = () => 0;
const listen = async (): Promise<number> => {
  if (process.env.SYSTEM === 'plain') {
    let open = 0;
    connections = () => open;
    const app = createPlainUwsApp({ onOpen: () => void open++, onClose: () => void open-- });
    return new Promise((resolve, reject) =>
      app.listen(0, (s) => (s ? resolve(uWS.us_socket_local_port(s)) : reject(new Error('listen failed')))),
    );
  }
  const gateway = createGateway({
    config: gatewayDefaults({
      SYNC_JWT_SECRET: TEST_JWT_SECRET,
      HEAD_CHECK_INTERVAL_MS: 60_000,
      WS_COMPRESSION: GatewayEnv.shape.WS_COMPRESSION.parse(process.env.WS_COMPRESSION || undefined),
    }),
    auth: createAuth({ secret: TEST_JWT_SECRET }),
    bus: createMemoryBus(),
    delta: emptyLog,
    log: createLogger({ name: 'bench-gateway', level: 'warn' }),
    registry: createRegistry('bench-gateway'),
  });
  connections = () => gateway.connectionCount;
  return gateway.listen(0, '127.0.0.1');
};

async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await new Promise((r) => setImmediate(r));
  }
}

const send = (report: MemoryReport) => process.send?.(report);
process.on('message', async (message: MemoryCommand) => {
  await collect();
  if (message.cmd === 'snapshot') {
    send({ type: 'snapshot', path: writeHeapSnapshot(message.path) });
    return;
  }
  const m = process.memoryUsage();
  send({
    type: 'measured',
    figures: {
      rss: m.rss,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      connections: connections(),
    },
  });
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', port: await listen() });
