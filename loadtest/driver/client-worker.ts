/**
 * A worker thread holding a share of the load's client connections, so the driver spreads
 * JSON parsing and socket work over cores. Driven by `WorkerCommand`s from `ClientPool`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import { unreachable } from '@openagents/sync-protocol';
import { ClientConnection, type ConnectionCounters, newConnectionCounters } from './client-connection';
import type {
  ConnectionSpec,
  StreamSnapshot,
  WorkerCommand,
  WorkerReply,
  WorkerSnapshot,
} from './worker-messages';

const port = parentPort!;
const RESUME_HANDSHAKES_IN_FLIGHT = 256;
let connections: ClientConnection[] = [];
const counters: ConnectionCounters = newConnectionCounters(false);
let expected: Map<string, number> | undefined;
const caughtUp = new Set<ClientConnection>();
let caughtUpAt: number | null = null;
let resumePairs: string[] = [];
/** This thread's event-loop delay since the window opened (10 ms sampling would hide short stalls). */
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();

function isCaughtUp(connection: ClientConnection): boolean {
  if (!expected) return false;
  for (const scope of connection.scopes) {
    const head = expected.get(scope);
    if (head !== undefined && (connection.cursors.cursor(scope) ?? -1) < head) return false;
  }
  return true;
}

function onProgress(connection: ClientConnection): void {
  if (!expected || caughtUp.has(connection) || !isCaughtUp(connection)) return;
  caughtUp.add(connection);
  if (caughtUp.size === connections.length) caughtUpAt = Date.now();
}

function behind(): number {
  if (!expected) return 0;
  let total = 0;
  for (const c of connections) {
    for (const scope of c.scopes) {
      const head = expected.get(scope);
      if (head !== undefined) total += Math.max(0, head - (c.cursors.cursor(scope) ?? 0));
    }
  }
  return total;
}

function snapshot(): WorkerSnapshot {
  return {
    connections: connections.length,
    open: connections.filter((c) => c.isOpen).length,
    ready: connections.filter((c) => c.isReady).length,
    delivered: counters.delivered,
    duplicates: counters.duplicates,
    lost: counters.lost,
    frames: counters.frames,
    errors: { ...counters.errors },
    unexpectedCloses: counters.unexpectedCloses,
    reconnects: counters.reconnects,
    latency: counters.latency.toData(),
    caughtUp: caughtUp.size,
    caughtUpAt,
    behind: behind(),
    bootstrapRecords: counters.bootstrapRecords,
    bootstrapFrames: counters.bootstrapFrames,
    snapshotCovered: counters.snapshotCovered,
    resumePairs,
    ...(counters.streams ? { streams: streamSnapshot(counters.streams) } : {}),
  };
}

function streamSnapshot(streams: NonNullable<ConnectionCounters['streams']>): StreamSnapshot {
  const texts = new Map<string, [string, number, string, number]>();
  for (const c of connections) {
    for (const [id, length, hash] of c.texts?.digests() ?? []) {
      const key = `${id}|${hash}`;
      const seen = texts.get(key);
      if (seen) seen[3]++;
      else texts.set(key, [id, length, hash, 1]);
    }
  }
  return {
    tokens: streams.tokens,
    skipped: streams.skipped,
    gaps: streams.gaps,
    latency: streams.latency.toData(),
    openingLatency: streams.openingLatency.toData(),
    appendLatency: streams.appendLatency.toData(),
    texts: [...texts.values()],
    loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    loopDelayMaxMs: loopDelay.max / 1e6,
  };
}

/**
 * Opens every connection with at most `limit` handshakes in flight (a burst far above the
 * listen backlog only measures SYN retries), then waits until all are ready or the deadline.
 */
async function openAll(
  list: ClientConnection[],
  timeoutMs: number,
  limit = 200,
): Promise<{ ready: number; failed: number; firstError?: string }> {
  const deadline = Date.now() + timeoutMs;
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const lane = async () => {
    while (next < list.length && Date.now() < deadline) {
      const connection = list[next++]!;
      try {
        await connection.open();
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, list.length) }, lane));
  while (Date.now() < deadline && list.some((c) => !c.isReady)) await new Promise((r) => setTimeout(r, 20));
  const ready = list.filter((c) => c.isReady).length;
  return firstError === undefined ? { ready, failed } : { ready, failed, firstError };
}

/** The connections at `indices` (every connection when undefined), as a fresh array. */
function chosen(indices: readonly number[] | undefined): ClientConnection[] {
  if (indices === undefined) return [...connections];
  return indices.flatMap((i) => connections[i] ?? []);
}

function reply(message: WorkerReply): void {
  port.postMessage(message);
}

port.on('message', async (command: WorkerCommand) => {
  switch (command.type) {
    case 'open': {
      if (command.keepCounters) counters.measureLatency = command.measureLatency;
      else {
        delete counters.streams;
        Object.assign(
          counters,
          newConnectionCounters(command.measureLatency, command.streams?.openingTokens),
        );
      }
      const added = command.specs.map(
        (spec: ConnectionSpec) => new ClientConnection(spec, counters, onProgress, command.transport),
      );
      connections.push(...added);
      const result = await openAll(added, command.timeoutMs);
      reply({ type: 'opened', seq: command.seq, ...result });
      return;
    }
    case 'window':
      counters.delivered = 0;
      counters.snapshotCovered = 0;
      counters.duplicates = 0;
      counters.lost = 0;
      counters.frames = 0;
      counters.latency.reset();
      loopDelay.reset();
      if (counters.streams) {
        counters.streams.latency.reset();
        counters.streams.openingLatency.reset();
        counters.streams.appendLatency.reset();
        counters.streams.tokens = 0;
        counters.streams.skipped = 0;
        counters.streams.gaps = 0;
      }
      reply({ type: 'done', seq: command.seq });
      return;
    case 'drop': {
      const pairs = new Set<string>();
      for (const c of chosen(command.connections)) {
        c.drop();
        for (const [scope, cursor] of c.cursors.entries()) pairs.add(`${c.origin}|${scope}@${cursor}`);
      }
      resumePairs = [...pairs];
      reply({ type: 'done', seq: command.seq });
      return;
    }
    case 'resume': {
      // The chosen connections at once (all of them: the storm), bounded only by handshakes in
      // flight. Failures retry by themselves (see ClientConnection); catch-up is read from snapshots.
      const queue = chosen(command.connections);
      const lane = async () => {
        for (let c = queue.shift(); c; c = queue.shift()) await c.open().catch(() => {});
      };
      for (let i = 0; i < Math.min(RESUME_HANDSHAKES_IN_FLIGHT, queue.length); i++) void lane();
      reply({ type: 'done', seq: command.seq });
      return;
    }
    case 'expect':
      expected = new Map(command.heads);
      caughtUp.clear();
      caughtUpAt = null;
      for (const c of connections) onProgress(c);
      reply({ type: 'done', seq: command.seq });
      return;
    case 'snapshot':
      reply({ type: 'snapshot', seq: command.seq, snapshot: snapshot() });
      return;
    case 'close':
      for (const c of connections) c.close();
      connections = [];
      reply({ type: 'done', seq: command.seq });
      return;
    default:
      unreachable(command);
  }
});
