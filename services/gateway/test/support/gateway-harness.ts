/**
 * Helpers of the gateway's socket tests (not shipped): a DeltaSource over the real test
 * database, a writer that appends to the real log and publishes, a bus wrapper that misbehaves
 * like a network, a gateway on a free port, and a `ws` client that records frames.
 */
import { randomUUID } from 'node:crypto';
import { createDeltaReader } from '@openagents/sync-delta-service';
import type { ServerFrame, SyncEvent } from '@openagents/sync-protocol';
import {
  appendEvents,
  type Bus,
  type BusMessage,
  createAuth,
  createLogger,
  createRegistry,
  type DeltaSource,
  inTransaction,
  type Pool,
} from '@openagents/sync-server-kit';
import WebSocket from 'ws';
import { TEST_JWT_SECRET } from '../../../../test/support/tokens';
import { type GatewayConfig, gatewayDefaults } from '../../src/config';
import { createGateway, type Gateway, type GatewayDeps } from '../../src/gateway';

/** The log as the delta service serves it (its in-process reader), over the test's database. */
export function pgDeltaSource(pool: Pool, options: { bootstrapPageBytes?: number } = {}): DeltaSource {
  return createDeltaReader({ pool, ...options });
}

/** Counts calls per kind, to assert single-flight. */
export function countingDeltaSource(inner: DeltaSource) {
  const calls = { bootstrap: 0, delta: 0, heads: 0 };
  const source: DeltaSource = {
    bootstrap: (scope, options) => {
      calls.bootstrap++;
      return inner.bootstrap(scope, options);
    },
    delta: (scope, id, limit) => {
      calls.delta++;
      return inner.delta(scope, id, limit);
    },
    heads: (scopes) => {
      calls.heads++;
      return inner.heads(scopes);
    },
  };
  return { source, calls };
}

/** Commits `count` events to a scope's log (each its own transaction) and publishes them. */
export async function writeEvents(
  pool: Pool,
  bus: Bus | undefined,
  scope: string,
  count: number,
  contentBytes = 16,
): Promise<SyncEvent[]> {
  const filler = 'x'.repeat(contentBytes);
  const written: SyncEvent[] = [];
  for (let i = 0; i < count; i++) {
    const events = await inTransaction(pool, (client) =>
      appendEvents(client, scope, [
        {
          model: 'Message',
          model_id: randomUUID(),
          action: 'insert',
          data: { content: `m${i}${filler}` },
          mutationId: null,
        },
      ]),
    );
    written.push(...events);
    if (bus) await bus.publish({ scope, events }).catch(() => {});
  }
  return written;
}

/**
 * A bus that forwards subscriptions to `inner` but lets a test drop, duplicate or reorder what
 * a publisher sends, like a lossy network would. The log stays the real one.
 */
export function chaoticBus(inner: Bus) {
  let transform: (message: BusMessage) => BusMessage[] = (m) => [m];
  const held: BusMessage[] = [];
  const bus: Bus = {
    ...inner,
    kind: inner.kind,
    async publish(message) {
      for (const m of transform(message)) await inner.publish(m);
    },
  };
  return {
    bus,
    /** Every publish goes through `fn`, which returns what to actually publish. */
    setTransform(fn: (message: BusMessage) => BusMessage[]) {
      transform = fn;
    },
    /** Keeps messages back until `releaseReversed`, which publishes them last-first (`times` each). */
    holdBack() {
      transform = (m) => {
        held.push(m);
        return [];
      };
    },
    async releaseReversed(times = 1) {
      transform = (m) => [m];
      for (const m of held.splice(0).reverse()) for (let i = 0; i < times; i++) await inner.publish(m);
    },
  };
}

export const auth = createAuth({ secret: TEST_JWT_SECRET });
export const quietLog = createLogger({ name: 'gateway-test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export async function startGateway(
  deps: Pick<GatewayDeps, 'bus' | 'delta'> & Partial<GatewayDeps>,
  overrides: Partial<GatewayConfig> = {},
): Promise<{ gateway: Gateway; url: string; wsUrl: string; stop: () => Promise<void> }> {
  const gateway = createGateway({
    config: gatewayDefaults({ SYNC_JWT_SECRET: TEST_JWT_SECRET, HEAD_CHECK_INTERVAL_MS: 500, ...overrides }),
    auth,
    log: quietLog,
    registry: createRegistry('gateway-test', { defaultMetrics: false }),
    ...deps,
  });
  const port = await gateway.listen(0);
  return {
    gateway,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/sync`,
    stop: () => gateway.stop(),
  };
}

/** A `ws` client that records every frame and its close code. */
export class TestClient {
  readonly frames: ServerFrame[] = [];
  readonly socket: WebSocket;
  closeCode: number | undefined;
  closeReason = '';
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;
  #waiters = new Set<() => void>();

  constructor(url: string, options?: WebSocket.ClientOptions) {
    this.socket = new WebSocket(url, options);
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
      this.socket.once('unexpected-response', (_req, res) =>
        reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })),
      );
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.socket.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve(code);
        this.#notify();
      });
    });
    this.socket.on('error', () => {});
    this.socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as ServerFrame);
      this.#notify();
    });
  }

  static async connect(wsUrl: string, token: string): Promise<TestClient> {
    const client = new TestClient(`${wsUrl}?token=${encodeURIComponent(token)}`);
    await client.opened;
    return client;
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  subscribe(scope: string, lastSyncId?: number): void {
    this.send({ type: 'subscribe', scope, ...(lastSyncId === undefined ? {} : { lastSyncId }) });
  }

  /** Resolves with the first frame matching `predicate` (looking at frames already received too). */
  async waitFor<T extends ServerFrame>(
    predicate: (frame: ServerFrame) => frame is T,
    timeoutMs?: number,
  ): Promise<T>;
  async waitFor(predicate: (frame: ServerFrame) => boolean, timeoutMs?: number): Promise<ServerFrame>;
  async waitFor(predicate: (frame: ServerFrame) => boolean, timeoutMs = 10_000): Promise<ServerFrame> {
    return this.until(() => this.frames.find(predicate), timeoutMs);
  }

  /** Resolves once `check` returns a value other than undefined/false, re-checking on each frame. */
  until<T>(check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value !== undefined && value !== false) {
          cleanup();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out; frames: ${JSON.stringify(this.frames.slice(-5)).slice(0, 1500)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(attempt);
      };
      this.#waiters.add(attempt);
      attempt();
    });
  }

  /** Event ids received for a scope, in arrival order (sync frames only). */
  eventIds(scope: string): number[] {
    return this.frames.flatMap((f) =>
      f.type === 'sync' && f.scope === scope ? f.events.map((e) => e.id) : [],
    );
  }

  /** Resolves once the scope's events reach `lastId`. */
  untilEvent(scope: string, lastId: number, timeoutMs = 10_000): Promise<number[]> {
    return this.until(() => {
      const ids = this.eventIds(scope);
      return ids.length > 0 && ids[ids.length - 1]! >= lastId ? ids : undefined;
    }, timeoutMs);
  }

  close(): void {
    this.socket.close();
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/** `from..to` inclusive. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

export function newScope(kind: 'org' | 'agent' = 'agent'): string {
  return `${kind}:${randomUUID()}`;
}
