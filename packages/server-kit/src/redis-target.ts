import { backoff } from '@openagents/sync-protocol';

/** Where the bus's Redis is: one server (any URL ioredis accepts) or a cluster given by seed nodes. */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | {
      kind: 'cluster';
      /** Seed nodes; ioredis learns the rest of the cluster from any one of them. */
      seeds: { host: string; port: number }[];
      tls: boolean;
      username?: string;
      password?: string;
    };

/** A REDIS_URL that cannot be used; the message says what is wrong without echoing a password. */
export class RedisUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUrlError';
  }
}

const SINGLE = /^rediss?:\/\//;
const CLUSTER = /^(rediss?)\+cluster:\/\//;

/**
 * Reads REDIS_URL (and REDIS_CLUSTER). A cluster is named either by the scheme
 * `redis+cluster://[user:password@]host:port,host:port` (`rediss+cluster://` for TLS) or by
 * `cluster: true` with an ordinary `redis://` / `rediss://` URL whose host is the seed.
 *
 * @example
 *   parseRedisTarget('redis+cluster://10.0.0.1:6379,10.0.0.2:6379')
 *   // { kind: 'cluster', seeds: [{ host: '10.0.0.1', port: 6379 }, { host: '10.0.0.2', port: 6379 }], tls: false }
 */
export function parseRedisTarget(url: string, cluster = false): RedisTarget {
  const clusterScheme = CLUSTER.exec(url);
  if (!clusterScheme && !SINGLE.test(url)) {
    throw new RedisUrlError('must be a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL');
  }
  if (!clusterScheme && !cluster) {
    try {
      new URL(url);
    } catch {
      throw new RedisUrlError('is not a valid URL');
    }
    return { kind: 'single', url };
  }
  const tls = clusterScheme ? clusterScheme[1] === 'rediss' : url.startsWith('rediss://');
  const rest = url.slice(url.indexOf('://') + 3);
  const end = rest.search(/[/?#]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const tail = end === -1 ? '' : rest.slice(end);
  if (!/^(\/0?)?$/.test(tail)) {
    throw new RedisUrlError(
      'a cluster has only database 0 and takes no options: nothing may follow the hosts',
    );
  }
  const at = authority.lastIndexOf('@');
  const userinfo = at === -1 ? undefined : authority.slice(0, at);
  const hosts = at === -1 ? authority : authority.slice(at + 1);
  const seeds = hosts.split(',').map(parseHostPort);
  const target: RedisTarget = { kind: 'cluster', seeds, tls };
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    const username = decode(colon === -1 ? userinfo : userinfo.slice(0, colon));
    const password = colon === -1 ? undefined : decode(userinfo.slice(colon + 1));
    // `redis://:password@host` is the usual form without ACL users: no username then.
    if (username !== '') target.username = username;
    if (password !== undefined && password !== '') target.password = password;
  }
  return target;
}

function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(text);
  if (!match) throw new RedisUrlError(`has an invalid host ${JSON.stringify(text.slice(0, 100))}`);
  const host = match[1]!.startsWith('[') ? match[1]!.slice(1, -1) : match[1]!;
  const port = match[2] === undefined ? 6379 : Number(match[2]);
  if (port < 1 || port > 65_535) throw new RedisUrlError(`has an invalid port ${port}`);
  return { host, port };
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new RedisUrlError('has a badly escaped user name or password');
  }
}

/**
 * Delay before reconnect attempt `times` (1 for the first) to Redis, for ioredis's
 * `retryStrategy` / `clusterRetryStrategy`: the shared jittered backoff, up to 2 s. Jitter keeps
 * every gateway and worker of a deployment from reconnecting in one wave after a Redis restart.
 */
export function redisRetryDelay(times: number): number {
  return backoff(times - 1, { initialDelayMs: 100, maxDelayMs: 2000 });
}
