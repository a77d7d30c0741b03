import type { Pool, PoolClient } from './db';
import { createSlots } from './slots';

/**
 * A bounded share of a pool: the same connections, but at most `max` of them in use through the
 * share at once. A query or checkout beyond that waits in line (first come, first served) for one
 * of the share's slots, without taking a connection while it waits.
 *
 * The standalone server runs every part on one pool and gives the reads (the delta service, and
 * through its reader the gateway) a share smaller than the pool: a flood of reads then holds at
 * most `max` connections, and writes always find the rest. Each read holds its slot for at most
 * the pool's statement timeout, so the line keeps moving.
 *
 * Only the promise forms of `query` and `connect` exist on a share (a callback is refused), and
 * `end` does nothing: the pool belongs to whoever created it.
 *
 * @example
 *   const pool = createPool({ url, max: 10 });
 *   const reads = sharePool(pool, 5); // reads never hold more than 5 of the 10
 */
export function sharePool(pool: Pool, max: number): Pool {
  const slots = createSlots(max);
  const query = async (...args: unknown[]) => {
    if (typeof args[args.length - 1] === 'function') {
      throw new TypeError('a pool share takes the promise form of query, not a callback');
    }
    await slots.take();
    try {
      return await (pool.query as (...a: unknown[]) => Promise<unknown>)(...args);
    } finally {
      slots.give();
    }
  };
  const connect = async (...args: unknown[]): Promise<PoolClient> => {
    if (args.length > 0)
      throw new TypeError('a pool share takes the promise form of connect, not a callback');
    await slots.take();
    let client: PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      slots.give();
      throw err;
    }
    // pg sets `release` afresh at every checkout, so this wrapper lives as long as this checkout.
    const release = client.release;
    let given = false;
    client.release = (err?: Error | boolean) => {
      if (!given) {
        given = true;
        slots.give();
      }
      return release.call(client, err);
    };
    return client;
  };
  const end = async () => {};
  return new Proxy(pool, {
    get(target, key) {
      if (key === 'query') return query;
      if (key === 'connect') return connect;
      if (key === 'end') return end;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
