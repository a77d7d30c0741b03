import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { type CommitMemberInput, runCommitGroup } from './store';

/**
 * `sync_commit`'s set-based path for a member of appends (the append batcher's joined member:
 * one piece of each of many replies, their scope heads locked up front). It must answer, write
 * and log exactly what the per-mutation loop does for the same member: the loop runs when the
 * heads are not locked up front (`p_lock` empty), so each case runs both ways on twin records and
 * the answers, events and rows are compared. Pieces that do not simply land (stale offsets, exact
 * retries, empty pieces, missing or foreign records, a piece that merges into the event before)
 * send the member through the loop, and still come out the same.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('api_append_member');
});
afterAll(async () => db?.drop());

/** Text with astral characters (two UTF-16 units), combining marks and multi-byte BMP ones. */
const textArb = fc
  .array(fc.constantFrom('a', ' the', 'é', 'e\u0301', '✓', '🙂', '𝄞', '中文', '"', '\\'), { maxLength: 4 })
  .map((parts) => parts.join(''));

interface Piece {
  record: number;
  /** 0: at the length; otherwise off by this many units (stale). */
  /**
   * 0: at the length; a number: off by that many units (stale); 'code points': at the length
   * counted in code points, a writer's classic mistake (wrong whenever the field holds an astral
   * character).
   */
  skew: number | 'code points';
  text: string;
}

interface Case {
  /** Initial content of each record, and the agent (scope) each belongs to. */
  records: { content: string; agent: number }[];
  pieces: Piece[];
  /** Agents whose scope the token grants (the others are foreign). */
  granted: boolean[];
  /**
   * An earlier member of the group appended to the first piece's record: its event is the one
   * just before, which the piece merges into.
   */
  before: boolean;
  /** A record that does not exist (its id is never inserted). */
  missing: number | null;
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    agents: fc.integer({ min: 1, max: 3 }),
    records: fc.array(fc.record({ content: textArb, agent: fc.nat() }), { minLength: 2, maxLength: 6 }),
  })
  .chain(({ agents, records }) =>
    fc.record({
      records: fc.constant(records.map((r) => ({ ...r, agent: r.agent % agents }))),
      // Distinct records, each once (what the batcher joins); a skew or an empty piece is rare.
      pieces: fc
        .shuffledSubarray(
          records.map((_, i) => i),
          { minLength: 2 },
        )
        .chain((order) =>
          fc.tuple(
            ...order.map((record) =>
              fc.record({
                record: fc.constant(record),
                skew: fc.oneof(
                  { weight: 15, arbitrary: fc.constant(0) },
                  { weight: 1, arbitrary: fc.integer({ min: -2, max: 2 }) },
                  { weight: 1, arbitrary: fc.constant('code points' as const) },
                ),
                text: fc.oneof(
                  { weight: 15, arbitrary: textArb.filter((t) => t !== '') },
                  { weight: 1, arbitrary: fc.constant('') },
                ),
              }),
            ),
          ),
        ),
      granted: fc.array(
        fc.oneof({ weight: 15, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        {
          minLength: agents,
          maxLength: agents,
        },
      ),
      // Mostly members that simply land (the set-based path), sometimes one that does not.
      before: fc.oneof(
        { weight: 3, arbitrary: fc.constant(false) },
        { weight: 1, arbitrary: fc.constant(true) },
      ),
      missing: sometimes(fc.nat({ max: records.length - 1 }), 8),
    }),
  );

const utf16 = (s: string) => s.length;

/** `arb` one time in `n`, else null. */
function sometimes<T>(arb: fc.Arbitrary<T>, n: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: n - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });
}

/** Seeds the case's records (fresh agents and ids), returns what a run needs to address them. */
async function seed(c: Case) {
  const agents = c.granted.map(() => randomUUID());
  const ids = c.records.map(() => randomUUID());
  await db.pool.query(
    `INSERT INTO agents (id, org_id, name) SELECT a, $2, 'twin' FROM unnest($1::uuid[]) AS a`,
    [agents, randomUUID()],
  );
  // Each scope's log already holds a few events (the records' creation), in both runs alike.
  await db.pool.query(
    `INSERT INTO sync_scopes (scope, last_id) SELECT 'agent:' || a, 5 FROM unnest($1::uuid[]) AS a`,
    [agents],
  );
  const present = c.records.map((_, i) => i).filter((i) => i !== c.missing);
  await db.pool.query(
    `INSERT INTO messages (id, agent_id, role, content)
       SELECT m, a, 'assistant', t FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS x(m, a, t)`,
    [
      present.map((i) => ids[i]!),
      present.map((i) => agents[c.records[i]!.agent]!),
      present.map((i) => c.records[i]!.content),
    ],
  );
  return { agents, ids };
}

/** The group for a case: an earlier member appending to `before` (if any), then the joined member. */
function members(c: Case, agents: string[], ids: string[]): CommitMemberInput[] {
  const scopes = agents.filter((_, i) => c.granted[i]).map((a) => `agent:${a}`);
  const append = (record: number, offset: number, text: string) => ({
    m: 'Message',
    a: 'append' as const,
    id: ids[record]!,
    v: { field: 'content', offset, text },
    k: null,
    h: '',
  });
  const before = c.before ? c.pieces[0]!.record : null;
  const content = (record: number) => c.records[record]!.content + (before === record ? '<earlier>' : '');
  const offset = (p: Piece) =>
    p.skew === 'code points' ? [...content(p.record)].length : Math.max(0, utf16(content(p.record)) + p.skew);
  const group: CommitMemberInput[] = [];
  if (before !== null) {
    group.push({
      sub: 'twin',
      scopes,
      muts: [append(before, utf16(c.records[before]!.content), '<earlier>')],
    });
  }
  group.push({
    sub: 'twin',
    scopes,
    muts: c.pieces.map((p) => append(p.record, offset(p), p.text)),
  });
  return group;
}

/** A run's answers, events and rows with this run's ids replaced by the case's indexes. */
async function run(c: Case, lockUpFront: boolean) {
  const { agents, ids } = await seed(c);
  const scopes = [...new Set(c.records.map((r) => `agent:${agents[r.agent]}`))].sort();
  const { results, events } = await runCommitGroup(
    db.pool,
    members(c, agents, ids),
    lockUpFront ? scopes : [],
  );
  const names = new Map<string, string>([
    ...ids.map((id, i) => [id, `record ${i}`] as [string, string]),
    ...agents.map((a, i) => [`agent:${a}`, `scope ${i}`] as [string, string]),
  ]);
  const rename = (text: string) =>
    text.replace(/agent:[0-9a-f-]{36}|[0-9a-f-]{36}/g, (m) => names.get(m) ?? m);
  const { rows } = await db.pool.query<{ id: string; content: string; updated_at: Date }>(
    'SELECT id, content, updated_at FROM messages WHERE id = ANY ($1::uuid[])',
    [ids],
  );
  const stored = new Map(rows.map((r) => [r.id, r]));
  // The event's updated_at is the row's own (the last piece of each record), to the millisecond.
  for (const e of events) {
    const row = stored.get(e.model_id)!;
    const last = events.filter((x) => x.model_id === e.model_id).at(-1);
    if (last === e) expect((e.data as { updated_at: string }).updated_at).toBe(row.updated_at.toISOString());
  }
  // Events come sorted by scope, whose names differ between the runs: sorted again once renamed.
  const logged = events
    .map((e) => {
      const { updated_at: _u, ...data } = e.data as Record<string, unknown>;
      return JSON.parse(rename(JSON.stringify({ ...e, created_at: undefined, data }))) as {
        scope: string;
        id: number;
      };
    })
    .sort((a, b) => a.scope.localeCompare(b.scope) || a.id - b.id);
  return {
    results: JSON.parse(rename(JSON.stringify(results))) as unknown,
    events: logged,
    contents: ids.map((id) => stored.get(id)?.content ?? null),
  };
}

describe('sync_commit: a member of appends', () => {
  it('answers, writes and logs exactly like the per-mutation loop, whatever its pieces (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const setBased = await run(c, true);
        const loop = await run(c, false);
        expect(setBased).toEqual(loop);
      }),
      { numRuns: 100 },
    );
  }, 120_000);

  it('gives each append its own length and its scope the next ids in member order, logging only the piece', async () => {
    const c: Case = {
      records: [
        { content: '', agent: 0 },
        { content: 'x🙂', agent: 0 },
        { content: 'ab', agent: 1 },
      ],
      pieces: [
        { record: 1, skew: 0, text: ' é🙂' },
        { record: 0, skew: 0, text: 'e\u0301' },
        { record: 2, skew: 0, text: '中' },
      ],
      granted: [true, true],
      before: false,
      missing: null,
    };
    const { results, events, contents } = await run(c, true);
    expect(results).toEqual([
      {
        ok: [
          {
            status: 200,
            replayed: false,
            body: { data: { id: 'record 1', length: 7 }, scope: 'scope 0', syncId: 6 },
          },
          {
            status: 200,
            replayed: false,
            body: { data: { id: 'record 0', length: 2 }, scope: 'scope 0', syncId: 7 },
          },
          {
            status: 200,
            replayed: false,
            body: { data: { id: 'record 2', length: 3 }, scope: 'scope 1', syncId: 6 },
          },
        ],
      },
    ]);
    expect(events).toEqual([
      expect.objectContaining({
        scope: 'scope 0',
        id: 6,
        model_id: 'record 1',
        data: { field: 'content', offset: 3, text: ' é🙂' },
      }),
      expect.objectContaining({
        scope: 'scope 0',
        id: 7,
        model_id: 'record 0',
        data: { field: 'content', offset: 0, text: 'e\u0301' },
      }),
      expect.objectContaining({
        scope: 'scope 1',
        id: 6,
        model_id: 'record 2',
        data: { field: 'content', offset: 2, text: '中' },
      }),
    ]);
    expect(contents).toEqual(['e\u0301', 'x🙂 é🙂', 'ab中']);
  });
});
