/**
 * Read-path benchmark: bootstrap of a 10,000-record scope and replay of 10,000 events in pages of
 * 1,000, in-process (reader) and through the HTTP app (auth, validation, JSON). Writes its figures
 * to the `bootstrap` section of docs/benchmarks.md.
 *
 *   node --import tsx services/delta/bench/bootstrap.bench.ts
 */
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import {
  appendEvents,
  createLogger,
  createRegistry,
  inTransaction,
  type NewEvent,
} from '@openagents/sync-server-kit';
import { markdownTable, percentile, updateBenchmarkSection } from '../../../test/support/bench';
import { createTestDatabase } from '../../../test/support/pg';
import { testAuth, tokenFor } from '../../../test/support/tokens';
import { createDeltaApp } from '../src/app';
import { createDeltaReader } from '../src/reader';
import { toRecord } from '../src/records';

const RECORDS = 10_000;
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const PAGE = 1000;

const db = await createTestDatabase('bench_bootstrap');
try {
  // Seed one agent scope with 10,000 records (6,000 messages, 2,000 code changes, 2,000 reasoning
  // steps) and their 10,000 insert events, written the way the API writes: rows and events
  // together, 1,000 per transaction.
  const orgId = randomUUID();
  const agentId = randomUUID();
  const scope = `agent:${agentId}`;
  await db.pool.query(`INSERT INTO agents (id, org_id, name) VALUES ($1, $2, 'bench')`, [agentId, orgId]);
  const seedStarted = performance.now();
  const plan: [string, string, number][] = [
    [
      'Message',
      `INSERT INTO messages (id, agent_id, role, content)
       SELECT gen_random_uuid(), $1, 'assistant', 'message ' || g || ' ' || repeat('x', 120)
       FROM generate_series(1, $2) g RETURNING *`,
      6000,
    ],
    [
      'CodeChange',
      `INSERT INTO code_changes (id, agent_id, path, diff)
       SELECT gen_random_uuid(), $1, 'src/file' || g || '.ts', '+ line ' || repeat('y', 200)
       FROM generate_series(1, $2) g RETURNING *`,
      2000,
    ],
    [
      'ReasoningStep',
      `INSERT INTO reasoning_steps (id, agent_id, content)
       SELECT gen_random_uuid(), $1, 'step ' || g || ' ' || repeat('z', 80)
       FROM generate_series(1, $2) g RETURNING *`,
      2000,
    ],
  ];
  for (const [model, sql, total] of plan) {
    for (let done = 0; done < total; done += PAGE) {
      await inTransaction(db.pool, async (client) => {
        const { rows } = await client.query(sql, [agentId, Math.min(PAGE, total - done)]);
        const events: NewEvent[] = rows.map((row) => {
          const record = toRecord(row);
          return {
            model: model as NewEvent['model'],
            model_id: String(record.id),
            action: 'insert',
            data: record,
            mutationId: null,
          };
        });
        await appendEvents(client, scope, events);
      });
    }
  }
  const seedSeconds = (performance.now() - seedStarted) / 1000;

  const reader = createDeltaReader({ pool: db.pool });
  const app = createDeltaApp({
    reader,
    auth: testAuth,
    log: createLogger({ name: 'bench', level: 'silent' }),
    registry: createRegistry('delta', { defaultMetrics: false }),
  });
  const headers = { authorization: `Bearer ${await tokenFor([scope])}` };

  const time = async (fn: () => Promise<unknown>): Promise<number[]> => {
    await fn();
    await fn(); // warm-up: plans cached, pool connections open
    const samples: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const started = performance.now();
      await fn();
      samples.push(performance.now() - started);
    }
    return samples;
  };

  let records = 0;
  let pages = 0;
  const bootstrapReader = await time(async () => {
    records = 0;
    pages = 0;
    let cursor: string | undefined;
    do {
      const snap = await reader.bootstrap(scope, cursor ? { cursor } : {});
      records += Object.values(snap.models).reduce((n, rows) => n + rows.length, 0);
      if (snap.lastSyncId !== RECORDS) throw new Error(`lastSyncId ${snap.lastSyncId}`);
      cursor = snap.nextCursor;
      pages++;
    } while (cursor);
  });
  let bytes = 0;
  const bootstrapHttp = await time(async () => {
    bytes = 0;
    let cursor: string | undefined;
    do {
      const res = await app.request(`/sync/bootstrap?scope=${scope}${cursor ? `&cursor=${cursor}` : ''}`, {
        headers,
      });
      const text = await res.text();
      bytes += text.length;
      if (res.status !== 200) throw new Error(`bootstrap ${res.status}`);
      cursor = (JSON.parse(text) as { nextCursor?: string }).nextCursor;
    } while (cursor);
  });
  if (records !== RECORDS) throw new Error(`expected ${RECORDS} records, got ${records}`);

  const replay = async (
    page: (cursor: number) => Promise<{ events: { id: number }[]; hasMore: boolean }>,
  ) => {
    let cursor = 0;
    for (;;) {
      const p = await page(cursor);
      cursor = p.events.at(-1)?.id ?? cursor;
      if (!p.hasMore) break;
    }
    if (cursor !== RECORDS) throw new Error(`replayed to ${cursor}`);
  };
  const deltaReader = await time(() => replay((cursor) => reader.delta(scope, cursor, PAGE)));
  const deltaHttp = await time(() =>
    replay(async (cursor) => {
      const res = await app.request(`/sync/delta?scope=${scope}&lastSyncId=${cursor}&limit=${PAGE}`, {
        headers,
      });
      return (await res.json()) as { events: { id: number }[]; hasMore: boolean };
    }),
  );

  const ms = (samples: number[], p: number) => percentile(samples, p).toFixed(1);
  const rate = (samples: number[]) =>
    Math.round(RECORDS / (percentile(samples, 50) / 1000)).toLocaleString('en-US');
  const table = markdownTable(
    ['measure', 'path', 'p50', 'p95', 'note'],
    [
      [
        'bootstrap, 10,000 records',
        'reader (in-process)',
        `${ms(bootstrapReader, 50)} ms`,
        `${ms(bootstrapReader, 95)} ms`,
        `${pages} pages of ≤ 1 MiB, each one short REPEATABLE READ transaction`,
      ],
      [
        'bootstrap, 10,000 records',
        'HTTP app (auth + JSON)',
        `${ms(bootstrapHttp, 50)} ms`,
        `${ms(bootstrapHttp, 95)} ms`,
        `${(bytes / 1024 / 1024).toFixed(1)} MiB body`,
      ],
      [
        'delta replay, 10,000 events in pages of 1,000',
        'reader (in-process)',
        `${ms(deltaReader, 50)} ms`,
        `${ms(deltaReader, 95)} ms`,
        `${rate(deltaReader)} events/s`,
      ],
      [
        'delta replay, 10,000 events in pages of 1,000',
        'HTTP app (auth + JSON)',
        `${ms(deltaHttp, 50)} ms`,
        `${ms(deltaHttp, 95)} ms`,
        `${rate(deltaHttp)} events/s`,
      ],
    ],
  );
  const markdown = [
    '## Read path: bootstrap and delta replay',
    '',
    `\`node --import tsx services/delta/bench/bootstrap.bench.ts\` — ${RUNS} timed runs after 2 warm-ups, one client at a time, Postgres 15 on the same ${cpus().length}-core machine (shared with other work, so treat these as orders of magnitude). The scope holds 6,000 messages, 2,000 code changes and 2,000 reasoning steps (about ${Math.round(bytes / RECORDS)} bytes of JSON per record) and their 10,000 insert events; seeding it took ${seedSeconds.toFixed(1)} s. Measured ${new Date().toISOString().slice(0, 10)}.`,
    '',
    table,
  ].join('\n');
  updateBenchmarkSection('bootstrap', markdown);
  process.stdout.write(`${markdown}\n`);
} finally {
  await db.drop();
}
