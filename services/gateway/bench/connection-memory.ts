import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ClientsCommand, ClientsReport } from './connection-memory-clients';
import type { MemoryCommand, MemoryFigures, MemoryReport } from './connection-memory-server';

// The connection-memory phase of `npm run bench:fanout`: what one idle subscribed connection
// costs the server, in RSS and in JS heap after full collections, at growing connection counts,
// for the gateway and for plain uWS in the same run. The server runs alone in its process
// (connection-memory-server.ts); the clients are other processes (connection-memory-clients.ts),
// each holding at most CLIENTS_PER_PROCESS connections from its own local address. Bounded: every
// wait has a deadline, and every child is killed at the end.

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** Connections one client process holds (its own descriptor limit applies too). */
const CLIENTS_PER_PROCESS = 15_000;
/** Descriptors the server keeps for itself (listen socket, stdio, IPC, libuv). */
const SERVER_RESERVED_FDS = 100;

export type MemorySystem = 'gateway' | 'plain';

export interface MemoryPoint {
  /** Connections asked for. */
  requested: number;
  /** Connections open and subscribed when measured. */
  connections: number;
  rssPerConnection: number;
  heapPerConnection: number;
  /** Memory outside the JS heap that V8 knows of (Buffers, uWS user data is not in it). */
  externalPerConnection: number;
}

export interface MemoryRun {
  system: MemorySystem;
  baseline: MemoryFigures;
  points: MemoryPoint[];
  /** Heap snapshot files written (at 0 and at the first count), when asked for. */
  snapshots: string[];
}

/** The soft limit on open descriptors this process (and so each child) has. */
export function openFilesLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  return Number(/Max open files\s+(\d+)/.exec(limits)?.[1] ?? 1024);
}

/** The most connections one server process can hold here. */
export function maxServerConnections(): number {
  return openFilesLimit() - SERVER_RESERVED_FDS;
}

function spawnChild(file: string, args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [...args, '--import', 'tsx', `${HERE}${file}`], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function next<T extends { type: string }>(
  child: ChildProcess,
  type: T['type'],
  timeoutMs: number,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`no '${type}' from ${child.spawnargs.at(-1)} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (report: T) => {
      if (report.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(report);
    };
    child.on('message', onMessage);
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/**
 * Opens `counts` (ascending) idle subscribed connections to one server of `system`, measuring
 * after each step. Counts above what the descriptor limit allows are clamped (see `connections`).
 */
export async function measureConnectionMemory(
  system: MemorySystem,
  counts: readonly number[],
  scopes: readonly string[],
  snapshotDir?: string,
): Promise<MemoryRun> {
  const server = spawnChild('connection-memory-server.ts', ['--expose-gc'], { SYSTEM: system });
  const clients: ChildProcess[] = [];
  const measure = async () => {
    server.send({ cmd: 'measure' } satisfies MemoryCommand);
    return (await next<Extract<MemoryReport, { type: 'measured' }>>(server, 'measured', 60_000)).figures;
  };
  const snapshots: string[] = [];
  const snapshot = async (label: string) => {
    if (!snapshotDir) return;
    server.send({
      cmd: 'snapshot',
      path: `${snapshotDir}/${system}-${label}.heapsnapshot`,
    } satisfies MemoryCommand);
    snapshots.push(
      (await next<Extract<MemoryReport, { type: 'snapshot' }>>(server, 'snapshot', 300_000)).path,
    );
  };
  try {
    const { port } = await next<Extract<MemoryReport, { type: 'ready' }>>(server, 'ready', 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    const baseline = await measure();
    await snapshot('0');
    const points: MemoryPoint[] = [];
    let open = 0;
    for (const requested of counts) {
      const target = Math.min(requested, maxServerConnections());
      const batches: Promise<ClientsReport>[] = [];
      while (open < target) {
        const index = Math.floor(open / CLIENTS_PER_PROCESS);
        const to = Math.min(target, (index + 1) * CLIENTS_PER_PROCESS);
        if (!clients[index]) clients[index] = spawnChild('connection-memory-clients.ts', [], {});
        const client = clients[index]!;
        const command: ClientsCommand = {
          cmd: 'connect',
          port,
          localAddress: `127.0.0.${index + 2}`,
          from: open,
          to,
          scopes: [...scopes],
        };
        batches.push(next<ClientsReport>(client, 'connected', 600_000));
        client.send(command);
        open = to;
      }
      const reports = await Promise.all(batches);
      const failed = reports.reduce((n, r) => n + r.failed, 0);
      if (failed > 0) throw new Error(`${system}: ${failed} of ${target} connections failed`);
      await new Promise((r) => setTimeout(r, 2000));
      const m = await measure();
      const per = (key: keyof MemoryFigures) => (m[key] - baseline[key]) / m.connections;
      points.push({
        requested,
        connections: m.connections,
        rssPerConnection: per('rss'),
        heapPerConnection: per('heapUsed'),
        externalPerConnection: per('external'),
      });
      console.log(
        `${system}: ${m.connections} connections: RSS ${(per('rss') / 1024).toFixed(2)} KiB, heap ${(per('heapUsed') / 1024).toFixed(2)} KiB, external ${(per('external') / 1024).toFixed(2)} KiB per connection`,
      );
      if (points.length === 1) await snapshot(String(m.connections));
    }
    return { system, baseline, points, snapshots };
  } finally {
    await Promise.all([...clients, server].map(kill));
  }
}
