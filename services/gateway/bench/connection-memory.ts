import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { WsCompression } from '../src/config';
import type { ClientsCommand, ClientsReport } from './connection-memory-clients';
import type { MemoryCommand, MemoryFigures, MemoryReport } from './connection-memory-server';

// The connection-memory phase of `npm run bench:fanout`: what one idle subscribed connection
// costs the server, in RSS and in JS heap after full collections, at growing connection counts,
// for the gateway and for plain uWS in the same run. Each server runs alone in its process
// (connection-memory-server.ts), with as many server processes as the count needs: one holds at
// most maxServerConnections() (the descriptor limit, 20,000 here and not raisable), so 50,000
// connections are held by 3 servers of ~16,700, and the figures are sums over them. The clients
// are other processes (connection-memory-clients.ts), each holding at most CLIENTS_PER_PROCESS
// connections from its own local address 127.0.0.2, .3, … (so no address pair runs out of
// ephemeral ports, ~28,000 each). Bounded: every wait has a deadline, and every child is killed
// at the end.

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** Connections one client process holds (its own descriptor limit applies too). */
const CLIENTS_PER_PROCESS = 15_000;
/** Descriptors the server keeps for itself (listen socket, stdio, IPC, libuv). */
const SERVER_RESERVED_FDS = 100;

export type MemorySystem = 'gateway' | 'plain';

export interface MemoryPoint {
  requested: number;
  /** Connections open and subscribed when measured, over all server processes. */
  connections: number;
  /** Server processes holding them. */
  servers: number;
  rssPerConnection: number;
  heapPerConnection: number;
  /** Memory outside the JS heap that V8 knows of (Buffers, uWS user data is not in it). */
  externalPerConnection: number;
}

export interface MemoryRun {
  system: MemorySystem;
  /** The servers' figures before their first connection, summed. */
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
  matches: (report: T) => boolean = () => true,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`no '${type}' from ${child.spawnargs.at(-1)} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (report: T) => {
      if (report.type !== type || !matches(report)) return;
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One server process of the run, with what it held before its first connection. */
interface MemoryServer {
  child: ChildProcess;
  port: number;
  baseline: MemoryFigures;
  /** Connections it holds. */
  open: number;
}

function measureServer(server: ChildProcess): Promise<MemoryFigures> {
  server.send({ cmd: 'measure' } satisfies MemoryCommand);
  return next<Extract<MemoryReport, { type: 'measured' }>>(server, 'measured', 120_000).then(
    (r) => r.figures,
  );
}

const FIGURES: (keyof MemoryFigures)[] = ['rss', 'heapUsed', 'external', 'arrayBuffers', 'connections'];

function sumFigures(all: readonly MemoryFigures[]): MemoryFigures {
  const sum = { rss: 0, heapUsed: 0, external: 0, arrayBuffers: 0, connections: 0 };
  for (const figures of all) for (const key of FIGURES) sum[key] += figures[key];
  return sum;
}

async function startServer(system: MemorySystem, compression: WsCompression): Promise<MemoryServer> {
  const child = spawnChild('connection-memory-server.ts', ['--expose-gc'], {
    SYSTEM: system,
    WS_COMPRESSION: compression,
  });
  try {
    const { port } = await next<Extract<MemoryReport, { type: 'ready' }>>(child, 'ready', 60_000);
    // Startup garbage leaves the process slowly after full collections: the baseline is the
    // third of three measurements a second apart, not the first.
    let baseline: MemoryFigures | undefined;
    for (let i = 0; i < 3; i++) {
      await sleep(1000);
      baseline = await measureServer(child);
    }
    return { child, port, baseline: baseline!, open: 0 };
  } catch (err) {
    await kill(child);
    throw err;
  }
}

/** `total` connections over `servers` servers, as evenly as they go (the first ones one more). */
export function shareOf(total: number, servers: number, index: number): number {
  return Math.floor(total / servers) + (index < total % servers ? 1 : 0);
}

/**
 * The client processes: connection number i (over the whole run) is held by client
 * c = floor(i / CLIENTS_PER_PROCESS), from local address 127.0.0.(firstAddress + c).
 */
class ClientPool {
  readonly #clients: ChildProcess[] = [];
  readonly #firstAddress: number;
  readonly #deflate: boolean;
  #opened = 0;
  #commands = 0;

  constructor(firstAddress: number, deflate: boolean) {
    this.#firstAddress = firstAddress;
    this.#deflate = deflate;
  }

  /** Opens `count` more connections to the server at `port`; resolves with how many failed. */
  async open(port: number, count: number, scopes: readonly string[]): Promise<number> {
    const batches: Promise<ClientsReport>[] = [];
    const end = this.#opened + count;
    while (this.#opened < end) {
      const index = Math.floor(this.#opened / CLIENTS_PER_PROCESS);
      const to = Math.min(end, (index + 1) * CLIENTS_PER_PROCESS);
      this.#clients[index] ??= spawnChild('connection-memory-clients.ts', [], {});
      const client = this.#clients[index]!;
      const id = ++this.#commands;
      batches.push(next<ClientsReport>(client, 'connected', 900_000, (r) => r.id === id));
      client.send({
        cmd: 'connect',
        id,
        port,
        localAddress: `127.0.0.${this.#firstAddress + index}`,
        from: this.#opened,
        to,
        scopes: [...scopes],
        deflate: this.#deflate,
      } satisfies ClientsCommand);
      this.#opened = to;
    }
    const reports = await Promise.all(batches);
    return reports.reduce((n, r) => n + r.failed, 0);
  }

  async stop(): Promise<void> {
    await Promise.all(this.#clients.map(kill));
  }
}

/**
 * Opens `counts` (ascending) idle subscribed connections to servers of `system`, measuring after
 * each step: each count is held by the fewest servers that can hold it, spread evenly over them
 * (a server started for a larger count is measured before its first connection, and its figures
 * join the sums from then on).
 */
export async function measureConnectionMemory(
  system: MemorySystem,
  counts: readonly number[],
  scopes: readonly string[],
  options: {
    snapshotDir?: string | undefined;
    /** Connections one server process holds at most (capped by maxServerConnections()). */
    perServer?: number;
    /**
     * Last byte of the first client address (127.0.0.x; default 2). Runs at the same time need
     * ranges of their own, so that no address holds more connections than it has ports.
     */
    firstClientAddress?: number;
    /** Connections that may fail (refused under load) before the run is given up; default 1 %. */
    maxFailedShare?: number;
    /** The gateway's WS_COMPRESSION; when on, the clients offer permessage-deflate and need it. */
    compression?: WsCompression;
  } = {},
): Promise<MemoryRun> {
  const { snapshotDir } = options;
  const perServer = Math.min(options.perServer ?? Infinity, maxServerConnections());
  const servers: MemoryServer[] = [];
  const compression = options.compression ?? 'off';
  const clients = new ClientPool(options.firstClientAddress ?? 2, compression !== 'off');
  const snapshots: string[] = [];
  const snapshot = async (label: string) => {
    if (!snapshotDir) return;
    const first = servers[0]!.child;
    first.send({
      cmd: 'snapshot',
      path: `${snapshotDir}/${system}-${label}.heapsnapshot`,
    } satisfies MemoryCommand);
    snapshots.push(
      (await next<Extract<MemoryReport, { type: 'snapshot' }>>(first, 'snapshot', 300_000)).path,
    );
  };
  try {
    const points: MemoryPoint[] = [];
    for (const requested of counts) {
      const needed = Math.ceil(requested / perServer);
      while (servers.length < needed) servers.push(await startServer(system, compression));
      if (points.length === 0) await snapshot('0');
      let failed = 0;
      await Promise.all(
        servers.map(async (server, i) => {
          const more = shareOf(requested, servers.length, i) - server.open;
          if (more <= 0) return;
          server.open += more;
          const refused = await clients.open(server.port, more, scopes);
          failed += refused;
        }),
      );
      // The figures divide by the connections the servers hold, so a few refused ones (the
      // machine is shared) change nothing but the count, which the report shows.
      if (failed > requested * (options.maxFailedShare ?? 0.01)) {
        throw new Error(`${system}: ${failed} of ${requested} connections failed`);
      }
      if (failed > 0) console.log(`${system}: ${failed} of ${requested} connections failed after retries`);
      await sleep(2000);
      const now = sumFigures(await Promise.all(servers.map((s) => measureServer(s.child))));
      const before = sumFigures(servers.map((s) => s.baseline));
      const per = (key: keyof MemoryFigures) => (now[key] - before[key]) / now.connections;
      points.push({
        requested,
        connections: now.connections,
        servers: servers.length,
        rssPerConnection: per('rss'),
        heapPerConnection: per('heapUsed'),
        externalPerConnection: per('external'),
      });
      console.log(
        `${system}: ${now.connections} connections on ${servers.length} server(s): RSS ${(per('rss') / 1024).toFixed(2)} KiB, heap ${(per('heapUsed') / 1024).toFixed(2)} KiB, external ${(per('external') / 1024).toFixed(2)} KiB per connection`,
      );
      if (points.length === 1) await snapshot(String(now.connections));
    }
    return { system, baseline: sumFigures(servers.map((s) => s.baseline)), points, snapshots };
  } finally {
    await Promise.all([clients.stop(), ...servers.map((s) => kill(s.child))]);
  }
}
