/**
 * `npm run bench:append-sql` — what Postgres pays per streamed append inside `sync_commit`, without
 * the worker: one member of N appends (one per reply, as the append batcher joins them), committed
 * round after round, on replies whose field already holds L characters. Postgres CPU is the
 * backend's, from /proc, over all rounds of a row; the client's JSON parse of the answer is timed
 * beside it (process.cpuUsage).
 *
 * With BENCH_BASELINE_ROOT=<checkout> the same rows run on a database migrated by that checkout's
 * migrations (its `sync_commit`), round by round interleaved with this one's: a before/after of a
 * change of the function in one run.
 *
 * Env: APPEND_SQL_N (appends per member, default 100), APPEND_SQL_LENGTHS (characters already in
 * each field, default "0,2000,8000"), APPEND_SQL_ROUNDS (default 60).
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import pg from 'pg';
import { markdownTable } from '../../../test/support/bench';
import type { TestDatabase } from '../../../test/support/pg';
import { createBenchDatabase, processCpuMs, ROOT, replyText } from './bench-db';

const N = Number(process.env.APPEND_SQL_N ?? 100);
const LENGTHS = (process.env.APPEND_SQL_LENGTHS ?? '0,2000,8000').split(',').map(Number);
const ROUNDS = Number(process.env.APPEND_SQL_ROUNDS ?? 60);
const BASELINE_ROOT = process.env.BENCH_BASELINE_ROOT;
const TOKENS = [' the', ' stream', ' of', ' tokens', ' is', ' durable', ' and', ' ordered', ' ✓', ' 🙂'];

interface Side {
  setup: string;
  db: TestDatabase;
  client: pg.Client;
  pid: number;
  ids: string[];
  scopes: string[];
  offsets: number[];
  pgMs: number;
  parseMs: number;
  appends: number;
}

async function open(setup: string, db: TestDatabase): Promise<Side> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return {
    setup,
    db,
    client,
    pid: rows[0]!.pid,
    ids: [],
    scopes: [],
    offsets: [],
    pgMs: 0,
    parseMs: 0,
    appends: 0,
  };
}

async function seed(side: Side, length: number): Promise<void> {
  const org = randomUUID();
  const agents = Array.from({ length: N }, () => randomUUID());
  side.ids = Array.from({ length: N }, () => randomUUID());
  side.scopes = agents.map((a) => `agent:${a}`);
  const text = replyText(length);
  side.offsets = side.ids.map(() => text.length);
  await side.db.pool.query(
    `INSERT INTO agents (id, org_id, name) SELECT a, $2, 'bench' FROM unnest($1::uuid[]) AS a`,
    [agents, org],
  );
  await side.db.pool.query(
    `INSERT INTO messages (id, agent_id, role, content)
       SELECT m, a, 'assistant', $3 FROM unnest($1::uuid[], $2::uuid[]) AS t(m, a)`,
    [side.ids, agents, text],
  );
  side.pgMs = 0;
  side.parseMs = 0;
  side.appends = 0;
}

/** One round: a member of one append per reply, as the batcher sends it once a reply's scope is known. */
async function round(side: Side, r: number): Promise<void> {
  const muts = side.ids.map((id, i) => {
    const text = TOKENS[(r + i) % TOKENS.length]!;
    const offset = side.offsets[i]!;
    side.offsets[i] = offset + text.length;
    return { m: 'Message', a: 'append', id, v: { field: 'content', offset, text }, k: null, h: '' };
  });
  const members = JSON.stringify([{ sub: 'bench-agent', scopes: ['agent:*'], muts }]);
  const lock = [...side.scopes].sort();
  const before = processCpuMs(side.pid);
  const { rows } = await side.client.query<{ r: string }>(
    'SELECT sync_commit($1::jsonb, $2::text[])::text AS r',
    [members, lock],
  );
  side.pgMs += processCpuMs(side.pid) - before;
  const parseStart = process.cpuUsage();
  const answer = JSON.parse(rows[0]!.r) as { results: ({ ok: unknown[] } | { err: unknown })[] };
  const parsed = process.cpuUsage(parseStart);
  side.parseMs += (parsed.user + parsed.system) / 1000;
  const result = answer.results[0]!;
  if (!('ok' in result)) throw new Error(`${side.setup}: ${JSON.stringify(result)}`);
  side.appends += muts.length;
}

async function main(): Promise<void> {
  const load = loadavg()[0]!;
  const dbs: TestDatabase[] = [];
  const rows: (string | number)[][] = [];
  try {
    const sides: Side[] = [];
    if (BASELINE_ROOT) {
      dbs.push(await createBenchDatabase(BASELINE_ROOT, 'append_sql_bench'));
      sides.push(await open('baseline checkout', dbs.at(-1)!));
    }
    dbs.push(await createBenchDatabase(ROOT, 'append_sql_bench'));
    sides.push(await open('this checkout', dbs.at(-1)!));
    for (const length of LENGTHS) {
      for (const side of sides) await seed(side, length);
      // Warm-up (plans, caches), then the measured rounds, interleaved.
      for (let r = 0; r < 5; r++) for (const side of sides) await round(side, r);
      for (const side of sides) {
        side.pgMs = 0;
        side.parseMs = 0;
        side.appends = 0;
      }
      for (let r = 0; r < ROUNDS; r++) for (const side of sides) await round(side, r);
      for (const side of sides) {
        const row = [
          side.setup,
          length,
          N,
          side.appends,
          ((side.pgMs / side.appends) * 1000).toFixed(1),
          ((side.parseMs / side.appends) * 1000).toFixed(1),
        ];
        rows.push(row);
        process.stderr.write(`${row.join('  ')}\n`);
      }
    }
    for (const side of sides) await side.client.end();
  } finally {
    for (const db of dbs) await db.drop();
  }
  const table = markdownTable(
    [
      'setup',
      'field length at start',
      'appends / member',
      'appends',
      'Postgres CPU µs / append',
      'answer JSON.parse µs / append',
    ],
    rows,
  );
  process.stdout.write(
    `Measured ${new Date().toISOString().slice(0, 16)}Z, load average ${load.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end; ${ROUNDS} rounds per row after 5 of warm-up, interleaved.\n\n${table}\n`,
  );
}

await main();
