import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports';

const run = promisify(execFile);

/** One redis-server of a test cluster. */
export interface ClusterNode {
  port: number;
  /** `127.0.0.1:<port>`, as CLUSTER NODES and ioredis name it. */
  key: string;
  /** Kills the process with SIGKILL (a crashed master, as the cluster sees it). */
  kill(): Promise<void>;
}

/**
 * A private Redis Cluster on free ports: three masters with one replica each, for tests that need
 * sharded pub/sub or a failover. `cluster-node-timeout` is short so a replica is promoted within
 * about two seconds of its master dying.
 */
export interface RedisCluster {
  nodes: ClusterNode[];
  /** `redis+cluster://` URL naming every node (any of them is a valid seed). */
  url: string;
  /** The node currently serving `slot` as master (asked of a live node). */
  masterOf(slot: number): Promise<ClusterNode>;
  /** Masters, as the cluster currently sees them. */
  masters(): Promise<ClusterNode[]>;
  /**
   * SIGKILLs a master and resolves with the replica that took over its slots, once the cluster
   * flags the dead node `fail` and is healthy again (polled, not waited for).
   */
  failOver(master: ClusterNode, timeoutMs?: number): Promise<ClusterNode>;
  /**
   * CLUSTER FAILOVER on a replica of `master`: the replica takes over the slots and the old master
   * lives on as its replica (what an operator or a managed service does for maintenance).
   * Resolves with the new master once the cluster is healthy again.
   */
  manualFailover(master: ClusterNode, timeoutMs?: number): Promise<ClusterNode>;
  /** A live replica of `master`, if it has one (after a failover the new master has none). */
  replicaOf(master: ClusterNode): Promise<ClusterNode | undefined>;
  /** Resolves once the cluster reports `cluster_state:ok` and no node flags `fail`. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export const CLUSTER_NODE_TIMEOUT_MS = 1000;

export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'sync-redis-cluster-'));
  const ports: number[] = [];
  while (ports.length < 6) {
    const port = await freePort();
    // The cluster bus listens on port + 10000: it must be a valid, distinct port too.
    if (port + 10_000 <= 65_535 && !ports.includes(port) && (await isFree(port + 10_000))) ports.push(port);
  }
  const procs = new Map<number, ChildProcess>();
  for (const port of ports) {
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        String(CLUSTER_NODE_TIMEOUT_MS),
        // A replica may take over however long ago it last heard from its master (the default
        // refuses a replica whose data looks stale, which a freshly created test cluster can be).
        '--cluster-replica-validity-factor',
        '0',
        '--dir',
        dir,
      ],
      { stdio: 'ignore' },
    );
    procs.set(port, proc);
  }
  const stop = async () => {
    await Promise.all([...procs.values()].map(killProcess));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) await waitFor(async () => (await cli(port, 'PING')) === 'PONG', 5000);
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const nodes: ClusterNode[] = ports.map((port) => ({
    port,
    key: `127.0.0.1:${port}`,
    kill: () => killProcess(procs.get(port)!),
  }));
  const alive = () =>
    nodes.filter((n) => procs.get(n.port)?.exitCode === null && !procs.get(n.port)?.signalCode);
  /** CLUSTER NODES of a live node: id, address, flags, slot ranges per line. */
  const clusterNodes = async () => {
    for (const node of alive()) {
      const text = await cli(node.port, 'CLUSTER', 'NODES').catch(() => undefined);
      if (text) return text.split('\n').filter((l) => l.trim() !== '');
    }
    throw new Error('no live cluster node answers');
  };
  const nodeByAddress = (address: string) => {
    const port = Number(address.split('@')[0]!.split(':')[1]);
    const node = nodes.find((n) => n.port === port);
    if (!node) throw new Error(`unknown node ${address}`);
    return node;
  };
  const masterLines = async () =>
    (await clusterNodes())
      .map((line) => line.split(' '))
      .filter((f) => f[2]!.split(',').includes('master') && !f[2]!.includes('fail'));

  const firstSlotOf = async (master: ClusterNode) => {
    const line = (await masterLines()).find((f) => nodeByAddress(f[1]!) === master);
    const range = line?.[8];
    if (!range) throw new Error(`${master.key} is not a master serving slots`);
    return Number(range.split('-')[0]);
  };

  const cluster: RedisCluster = {
    nodes,
    url: `redis+cluster://${nodes.map((n) => n.key).join(',')}`,
    async masters() {
      return (await masterLines()).map((f) => nodeByAddress(f[1]!));
    },
    async masterOf(slot) {
      for (const f of await masterLines()) {
        for (const range of f.slice(8)) {
          const [from, to = from] = range.split('-').map(Number);
          if (slot >= from! && slot <= to!) return nodeByAddress(f[1]!);
        }
      }
      throw new Error(`no master serves slot ${slot}`);
    },
    async failOver(master, timeoutMs = 15_000) {
      const slot = await firstSlotOf(master);
      await master.kill();
      let promoted: ClusterNode | undefined;
      await waitFor(async () => {
        const owner = await cluster.masterOf(slot);
        if (owner === master) return false;
        promoted = owner;
        return true;
      }, timeoutMs);
      await cluster.waitHealthy(timeoutMs);
      return promoted!;
    },
    async replicaOf(master) {
      const lines = (await clusterNodes()).map((line) => line.split(' '));
      const masterId = lines.find((f) => nodeByAddress(f[1]!) === master)?.[0];
      const replica = lines.find(
        (f) => f[2]!.split(',').includes('slave') && !f[2]!.includes('fail') && f[3] === masterId,
      );
      return replica ? nodeByAddress(replica[1]!) : undefined;
    },
    async manualFailover(master, timeoutMs = 15_000) {
      const slot = await firstSlotOf(master);
      const replica = await cluster.replicaOf(master);
      if (!replica) throw new Error(`${master.key} has no replica`);
      await cli(replica.port, 'CLUSTER', 'FAILOVER');
      await waitFor(async () => (await cluster.masterOf(slot)) === replica, timeoutMs);
      await cluster.waitHealthy(timeoutMs);
      return replica;
    },
    async waitHealthy(timeoutMs = 15_000) {
      await waitFor(async () => {
        for (const node of alive()) {
          const info = await cli(node.port, 'CLUSTER', 'INFO').catch(() => '');
          if (!info.includes('cluster_state:ok')) return false;
        }
        // Three masters that serve slots and are not flagged fail/fail?: every shard has an owner.
        return (await masterLines()).filter((f) => f.length > 8).length === 3;
      }, timeoutMs);
    },
    stop,
  };
  try {
    await cluster.waitHealthy();
    // Every replica has completed its first sync, so it is a real stand-in for its master.
    await waitFor(async () => {
      for (const node of nodes) {
        const info = await cli(node.port, 'INFO', 'replication');
        if (info.includes('role:slave') && !info.includes('master_link_status:up')) return false;
      }
      return true;
    }, 15_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return cluster;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-p', String(port), ...args], { timeout: 5000 });
  return stdout.trim();
}

/** Polls `check` every 50 ms (each poll is a round trip to Redis, not a guess at a duration). */
async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`redis cluster: condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function killProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}
