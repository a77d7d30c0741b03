import {
  type BootstrapResponse,
  MODEL_NAMES,
  type ModelsSnapshot,
  type SyncEvent,
} from '@openagents/sync-protocol';
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
import { EventSource } from './fanout-events';

// Child process of compression-cpu.bench.ts: the real gateway (createGateway) with the
// WS_COMPRESSION of its environment, over an in-process bus and an empty log, publishing append
// events itself when told to (the same schedule and the same work in every child, so what differs
// between the children's CPU is what WS_COMPRESSION costs). IPC: 'run' publishes `perRound` events
// round-robin over the scopes every `roundMs` for `rounds` rounds, then reports 'published'.

export type CpuCommand = { cmd: 'run'; scopes: string[]; perRound: number; roundMs: number; rounds: number };
export type CpuReport = { type: 'ready'; port: number } | { type: 'published'; events: number };

const EMPTY = Object.fromEntries(MODEL_NAMES.map((name) => [name, []])) as unknown as ModelsSnapshot;
const emptyLog: DeltaSource = {
  bootstrap: async (scope): Promise<BootstrapResponse> => ({ scope, models: EMPTY, lastSyncId: 0 }),
  delta: async (scope) => ({ scope, events: [], latestSyncId: 0, hasMore: false }),
  heads: async (scopes) => new Map(scopes.map((s) => [s, 0])),
};

const bus = createMemoryBus();
const gateway = createGateway({
  config: gatewayDefaults({
    SYNC_JWT_SECRET: TEST_JWT_SECRET,
    HEAD_CHECK_INTERVAL_MS: 600_000,
    WS_COMPRESSION: GatewayEnv.shape.WS_COMPRESSION.parse(process.env.WS_COMPRESSION || undefined),
  }),
  auth: createAuth({ secret: TEST_JWT_SECRET }),
  bus,
  delta: emptyLog,
  log: createLogger({ name: 'bench-gateway', level: 'warn' }),
  registry: createRegistry('bench-gateway'),
});

/** Made at the first 'run' and kept: ids go on per scope from window to window. */
let source: EventSource | undefined;

process.on('message', async (command: CpuCommand) => {
  source ??= new EventSource(command.scopes, 6, 'append');
  let published = 0;
  const started = performance.now();
  for (let round = 0; round < command.rounds; round++) {
    const due = started + round * command.roundMs - performance.now();
    if (due > 0) await new Promise((r) => setTimeout(r, due));
    for (let i = 0; i < command.perRound; i++) {
      const built = source.next();
      await bus.publish({ scope: built.scope, events: [JSON.parse(built.json) as SyncEvent] });
      published++;
    }
  }
  process.send?.({ type: 'published', events: published } satisfies CpuReport);
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready', port: await gateway.listen(0, '127.0.0.1') } satisfies CpuReport);
