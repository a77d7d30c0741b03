import { ClientPool, type PoolSnapshot } from '../client-pool';
import type { Progress } from '../progress';
import { type Check, check } from '../result';
import type { LoadTarget } from '../target';
import type { ConnectionSpec } from '../worker-messages';

/** What every scenario gets besides its options: how many worker threads, where progress goes. */
export interface RunEnv {
  workers: number;
  progress: Progress;
}

/**
 * Connection specs: every block of `scopes.length` connections covers each scope once (so every
 * scope gets the same number of subscribers when connections divide evenly), rotated per block.
 */
export async function connectionSpecs(
  target: LoadTarget,
  scopes: readonly string[],
  connections: number,
  perConnection = 1,
): Promise<ConnectionSpec[]> {
  const specs: ConnectionSpec[] = [];
  for (let i = 0; i < connections; i++) {
    // Rotate by block so a scope's subscribers land on every node when the target spreads
    // connections round-robin (connection i on node i % nodes).
    const first = i + Math.floor(i / scopes.length);
    const mine = Array.from(
      { length: Math.min(perConnection, scopes.length) },
      (_, k) => scopes[(first + k) % scopes.length]!,
    );
    specs.push(await target.connectionSpec(i, mine));
  }
  return specs;
}

/** How many subscribers each scope has among the specs. */
export function subscribersPerScope(specs: readonly ConnectionSpec[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const spec of specs) for (const scope of spec.scopes) counts.set(scope, (counts.get(scope) ?? 0) + 1);
  return counts;
}

/** Runs `body` with a fresh pool and always closes it. */
export async function withPool<T>(env: RunEnv, body: (pool: ClientPool) => Promise<T>): Promise<T> {
  const pool = new ClientPool(env.workers);
  try {
    return await body(pool);
  } finally {
    await pool.close();
  }
}

export function errorCount(errors: Record<string, number>): number {
  return Object.values(errors).reduce((a, b) => a + b, 0);
}

export function describeErrors(errors: Record<string, number>): string {
  return Object.entries(errors)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
}

/**
 * The guarantee, checked on a settled pool: ids contiguous, none twice, and every published
 * event at every subscriber (`expected` deliveries in all) — as an event, or inside the snapshot
 * a resume at cursor 0 is answered with. `detail` adds to the last check.
 */
export function guaranteeChecks(settled: PoolSnapshot, expected: number, detail = ''): Check[] {
  const covered = settled.snapshotCovered;
  const held = settled.delivered + covered;
  return [
    check('no lost events (ids contiguous)', settled.lost === 0, `${settled.lost} lost`),
    check('no duplicate events', settled.duplicates === 0, `${settled.duplicates} duplicates`),
    check(
      'every published event reached every subscriber',
      settled.behind === 0 && held === expected,
      `${held}/${expected} delivered${covered > 0 ? ` (${covered} through a resume's snapshot)` : ''}${detail}`,
    ),
  ];
}
