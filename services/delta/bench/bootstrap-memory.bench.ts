/**
 * Memory of serving a ~100 MB scope (400 messages of 256 KB) and one of half that size,
 * bootstrapped over HTTP from a real delta service process (`services/delta/src/main.ts`). For
 * each scope two fresh processes, same database, same run: one with the default
 * BOOTSTRAP_PAGE_BYTES (1 MiB pages), one with pages so large that the whole scope is one answer,
 * as before v1.1 (the baseline). For each, the peak resident memory (VmHWM, reset through
 * /proc/<pid>/clear_refs just before the bootstrap) minus the resident memory before it. Paged,
 * the growth is V8 letting garbage pages pile up until its next major collection: it does not
 * grow with the scope, which the two sizes show. Writes the `bootstrap-memory` section of
 * docs/benchmarks.md. Then the 100 MB scope is subscribed over WebSocket through a gateway process
 * (reading from a delta process), paged and as one frame, measuring the gateway's growth.
 *
 *   npm run bench:bootstrap
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { appendEvents, inTransaction, type NewEvent } from '@openagents/sync-server-kit';
import WebSocket from 'ws';
import { markdownTable, updateBenchmarkSection } from '../../../test/support/bench';
import { createTestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { TEST_REDIS_URL, uniqueChannelPrefix } from '../../../test/support/redis';
import { startService } from '../../../test/support/stack';
import { TEST_JWT_SECRET, tokenFor } from '../../../test/support/tokens';
import { toRecord } from '../src/records';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 400);
const MESSAGE_BYTES = 256 * 1024;
const HEAP_CAP_MIB = 128;

const db = await createTestDatabase('bench_bootstrap_memory');
try {
  const seedStarted = performance.now();
  const seed = async (messages: number) => {
    const agentId = randomUUID();
    const scope = `agent:${agentId}`;
    await db.pool.query(`INSERT INTO agents (id, org_id, name) VALUES ($1, $2, 'bench')`, [
      agentId,
      randomUUID(),
    ]);
    for (let done = 0; done < messages; done += 50) {
      await inTransaction(db.pool, async (client) => {
        // md5 chains: text that does not compress away, so Postgres stores what it would for real.
        const { rows } = await client.query(
          `INSERT INTO messages (id, agent_id, role, content)
         SELECT gen_random_uuid(), $1, 'assistant',
                (SELECT string_agg(md5(g::text || '.' || i::text), '') FROM generate_series(1, $3) i)
         FROM generate_series(1, $2) g RETURNING *`,
          [agentId, Math.min(50, messages - done), MESSAGE_BYTES / 32],
        );
        const events: NewEvent[] = rows.map((row) => ({
          model: 'Message',
          model_id: String(row.id),
          action: 'insert',
          data: { id: row.id, agent_id: agentId, role: 'assistant', created_at: toRecord(row).created_at },
          mutationId: null,
        }));
        await appendEvents(client, scope, events);
      });
    }
    return scope;
  };
  const half = Math.floor(MESSAGES / 2);
  const scopes = { [half]: await seed(half), [MESSAGES]: await seed(MESSAGES) };
  const seedSeconds = (performance.now() - seedStarted) / 1000;
  const token = await tokenFor(['agent:*']);

  const kib = (pid: number, field: 'VmRSS' | 'VmHWM') => {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field}:`));
    return Number(line?.match(/(\d+)/)?.[1] ?? Number.NaN);
  };

  /** Serves the scope from a fresh delta process with this page size; RSS growth in MiB. */
  const measure = async (messages: number, pageBytes: number, heapMiB?: number) => {
    const scope = scopes[messages]!;
    const port = await freePort();
    const service = await startService('delta', {
      port,
      env: {
        DATABASE_URL: db.url,
        SYNC_JWT_SECRET: TEST_JWT_SECRET,
        MIGRATE_ON_START: 'false',
        BOOTSTRAP_PAGE_BYTES: String(pageBytes),
        READ_SHARE_MAX_AGE_SECONDS: '0',
        ...(heapMiB ? { NODE_OPTIONS: `--max-old-space-size=${heapMiB}` } : {}),
      },
    });
    try {
      const pid = service.proc.pid!;
      const fetchAll = async () => {
        let cursor: string | undefined;
        let pages = 0;
        let records = 0;
        let bytes = 0;
        do {
          const query = new URLSearchParams({ scope, ...(cursor ? { cursor } : {}) });
          const res = await fetch(`${service.url}/sync/bootstrap?${query}`, {
            headers: { authorization: `Bearer ${token}` },
          });
          const text = await res.text();
          if (res.status !== 200) throw new Error(`bootstrap ${res.status}: ${text.slice(0, 200)}`);
          bytes += text.length;
          const page = JSON.parse(text) as { models: { Message: unknown[] }; nextCursor?: string };
          records += page.models.Message.length;
          cursor = page.nextCursor;
          pages++;
        } while (cursor);
        if (records !== messages) throw new Error(`expected ${messages} records, got ${records}`);
        return { pages, bytes };
      };
      // Warm-up on another, empty scope: code loaded, pool connected, JIT settled.
      await fetch(`${service.url}/sync/bootstrap?scope=agent:${randomUUID()}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const before = kib(pid, 'VmRSS');
      writeFileSync(`/proc/${pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
      const started = performance.now();
      const outcome = await fetchAll().catch((err: Error) => err);
      if (outcome instanceof Error) {
        const died = await Promise.race([
          service.exited.then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
        ]);
        return {
          before: before / 1024,
          growth: Number.NaN,
          pages: 0,
          bytes: 0,
          seconds: 0,
          failed: died ? 'process died (heap out of memory)' : outcome.message,
        };
      }
      const { pages, bytes } = outcome;
      const seconds = (performance.now() - started) / 1000;
      const peak = kib(pid, 'VmHWM');
      return {
        before: before / 1024,
        growth: (peak - before) / 1024,
        pages,
        bytes,
        seconds,
        failed: undefined,
      };
    } finally {
      await service.kill();
    }
  };

  /** Subscribes to the scope over WebSocket through a gateway process; its RSS growth in MiB. */
  const measureWebSocket = async (scope: string, messages: number, pageBytes: number) => {
    const delta = await startService('delta', {
      port: await freePort(),
      env: {
        DATABASE_URL: db.url,
        SYNC_JWT_SECRET: TEST_JWT_SECRET,
        MIGRATE_ON_START: 'false',
        BOOTSTRAP_PAGE_BYTES: String(pageBytes),
      },
    });
    const gateway = await startService('gateway', {
      port: await freePort(),
      env: {
        DELTA_URL: delta.url,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_CHANNEL_PREFIX: uniqueChannelPrefix(),
        SYNC_JWT_SECRET: TEST_JWT_SECRET,
      },
    });
    try {
      const pid = gateway.proc.pid!;
      const before = kib(pid, 'VmRSS');
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
      const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}/sync?token=${encodeURIComponent(token)}`);
      const outcome = await new Promise<{ frames: number; outcome: string }>((resolve) => {
        let frames = 0;
        let records = 0;
        socket.on('open', () => socket.send(JSON.stringify({ type: 'subscribe', scope })));
        socket.on('message', (data) => {
          const frame = JSON.parse(data.toString()) as {
            type: string;
            more?: boolean;
            models?: { Message: unknown[] };
          };
          if (frame.type === 'bootstrap') {
            frames++;
            records += frame.models?.Message.length ?? 0;
          }
          if (frame.type === 'error') {
            resolve({
              frames,
              outcome: `error frame after ${records} records: ${(frame as { message?: string }).message}`,
            });
            socket.close();
          }
          if (frame.type === 'subscribed') {
            resolve({
              frames,
              outcome: records === messages ? `all ${records} records, then live` : `${records} records`,
            });
            socket.close();
          }
        });
        socket.on('close', (code) => resolve({ frames, outcome: `closed ${code} after ${records} records` }));
        socket.on('error', () => {});
      });
      const peak = kib(pid, 'VmHWM');
      return { before: before / 1024, growth: (peak - before) / 1024, ...outcome };
    } finally {
      await gateway.kill();
      await delta.kill();
    }
  };

  const mib = (n: number) => `${n.toFixed(1)} MiB`;
  const rows: (string | number)[][] = [];
  const growth: Record<string, number> = {};
  for (const messages of [half, MESSAGES]) {
    for (const [label, pageBytes] of [
      ['paged, BOOTSTRAP_PAGE_BYTES = 1 MiB (v1.1)', 1024 * 1024],
      ['one answer (pages of 1 GiB: the pre-v1.1 behaviour)', 1024 * 1024 * 1024],
    ] as const) {
      const m = await measure(messages, pageBytes);
      growth[`${messages}:${pageBytes}`] = m.growth;
      rows.push([
        `${messages} × 256 KB`,
        label,
        m.pages,
        mib(m.bytes / 1024 / 1024),
        mib(m.before),
        mib(m.growth),
        `${m.seconds.toFixed(2)} s`,
      ]);
    }
  }
  // The paged growth above is garbage V8 collects when it must: with the heap capped at
  // HEAP_CAP_MIB the paged bootstrap still completes (and grows less), the single answer cannot.
  for (const [label, pageBytes] of [
    [`paged, 1 MiB, node --max-old-space-size=${HEAP_CAP_MIB}`, 1024 * 1024],
    [`one answer, node --max-old-space-size=${HEAP_CAP_MIB}`, 1024 * 1024 * 1024],
  ] as const) {
    const m = await measure(MESSAGES, pageBytes, HEAP_CAP_MIB);
    rows.push([
      `${MESSAGES} × 256 KB`,
      label,
      m.failed ? '—' : m.pages,
      m.failed ? '—' : mib(m.bytes / 1024 / 1024),
      mib(m.before),
      m.failed ?? mib(m.growth),
      m.failed ? '—' : `${m.seconds.toFixed(2)} s`,
    ]);
  }
  // Over WebSocket: a gateway process reads the pages from a delta process and sends them as
  // bootstrap frames; the growth measured is the gateway's. The baseline is the same gateway fed
  // one 100 MB page (the delta service with 1 GiB pages), i.e. one 100 MB frame as before v1.1.
  const wsRows: (string | number)[][] = [];
  for (const [label, pageBytes] of [
    ['paged: frames with more: true, BOOTSTRAP_PAGE_BYTES = 1 MiB', 1024 * 1024],
    ['one frame (delta pages of 1 GiB: the pre-v1.1 behaviour)', 1024 * 1024 * 1024],
  ] as const) {
    const m = await measureWebSocket(scopes[MESSAGES]!, MESSAGES, pageBytes);
    wsRows.push([`${MESSAGES} × 256 KB`, label, m.frames, mib(m.before), mib(m.growth), m.outcome]);
  }
  const wsTable = markdownTable(
    [
      'scope',
      'bootstrap over WebSocket',
      'bootstrap frames',
      'gateway RSS before',
      'gateway RSS growth (peak)',
      'outcome',
    ],
    wsRows,
  );
  const table = markdownTable(
    ['scope', 'answer', 'pages', 'body', 'RSS before', 'RSS growth (peak)', 'time'],
    rows,
  );
  const ratio = growth[`${MESSAGES}:${1024 ** 3}`]! / Math.max(0.1, growth[`${MESSAGES}:${1024 ** 2}`]!);
  const markdown = [
    '## Memory of a 100 MB bootstrap',
    '',
    `\`npm run bench:bootstrap\` — a scope of ${MESSAGES} messages of 256 KB and one of ${half} (seeded in ${seedSeconds.toFixed(1)} s), each bootstrapped over HTTP from a fresh delta service process; the growth is that process's peak resident memory during the bootstrap minus its resident memory before. All processes served the same database in the same run on the ${cpus().length}-core machine (shared; load average ${loadavg()[0]!.toFixed(1)} at the end). For the ${MESSAGES}-message scope paging cuts the growth ${ratio.toFixed(1)}×; paged, the growth is garbage V8 has not collected yet (it does not follow the scope's size, and with the heap capped at ${HEAP_CAP_MIB} MiB the paged bootstrap still completes while the single answer kills the process), unpaged it is the whole answer several times over. Measured ${new Date().toISOString().slice(0, 10)}.`,
    '',
    table,
    '',
    'The same 100 MB scope subscribed over WebSocket through a gateway process reading from a delta process (growth of the gateway process):',
    '',
    wsTable,
  ].join('\n');
  updateBenchmarkSection('bootstrap-memory', markdown);
  process.stdout.write(`${markdown}\n`);
} finally {
  await db.drop();
}
