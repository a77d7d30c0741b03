import { canonicalScope, canonicalScopePattern, scopeAllowed } from '@openagents/sync-protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';

/**
 * The SQL side of the write path's fast path (migration 1764600000000_commit-fast-path.sql):
 * `sync_scope_allowed`, rewritten as a loop for speed, must still decide exactly like the
 * protocol's `scopeAllowed`, and `sync_commit` must keep its generic-plan setting.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('api_commit_sql');
});
afterAll(async () => db?.drop());

const ids = ['5e79a1c0-0000-4000-8000-000000000001', 'abc', 'a.b:c', '5E79A1C0-0000-4000-8000-000000000002'];
const scopeArb = fc
  .tuple(fc.constantFrom('org', 'agent', 'team', 'x'), fc.constantFrom(...ids))
  .map(([kind, id]) => canonicalScope(`${kind}:${id}`)!);
const patternArb = fc.oneof(
  fc.constant('*'),
  scopeArb,
  scopeArb.chain((s) => fc.integer({ min: 0, max: s.length }).map((n) => `${s.slice(0, n)}*`)),
  fc.string({ maxLength: 12 }),
);

describe('sync_scope_allowed', () => {
  it('decides like scopeAllowed for canonical patterns and scopes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(patternArb, { maxLength: 5 }), scopeArb, async (patterns, scope) => {
        const canonical = patterns.map(canonicalScopePattern);
        const { rows } = await db.pool.query<{ ok: boolean }>('SELECT sync_scope_allowed($1, $2) AS ok', [
          canonical,
          scope,
        ]);
        expect(rows[0]!.ok).toBe(scopeAllowed(canonical, scope));
      }),
      { numRuns: 150 },
    );
  });

  it('grants nothing for a missing scope or pattern list', async () => {
    const { rows } = await db.pool.query<{ a: boolean; b: boolean; c: boolean }>(
      `SELECT sync_scope_allowed(NULL, 'org:x') AS a, sync_scope_allowed(ARRAY['*'], NULL) AS b,
              sync_scope_allowed('{}', 'org:x') AS c`,
    );
    expect(rows[0]).toEqual({ a: false, b: false, c: false });
  });
});

describe('sync_commit', () => {
  it('plans its statements once per connection (force_generic_plan), never as sequential scans', async () => {
    const { rows } = await db.pool.query<{ config: string[] | null }>(
      `SELECT proconfig AS config FROM pg_proc WHERE proname = 'sync_commit'`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.config).toContain('plan_cache_mode=force_generic_plan');
    expect(rows[0]!.config).toContain('enable_seqscan=off');
  });
});
