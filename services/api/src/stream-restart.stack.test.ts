import { randomUUID } from 'node:crypto';
import { createStreamWriter } from '@openagents/sync-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { TEST_REDIS_URL, uniqueChannelPrefix } from '../../../test/support/redis';
import { restartService, type ServiceProcess, startService } from '../../../test/support/stack';
import { TEST_JWT_SECRET, tokenFor } from '../../../test/support/tokens';

/**
 * A worker process SIGKILLed in the middle of a streaming upload: pieces acknowledged, pieces
 * committed whose acks never left, pieces still on the wire, pieces written while no worker
 * listens. The stream writer reconnects to the restarted worker and resumes from the length it
 * saw acknowledged; the stored text is the written text, byte for byte, and the log's append
 * events continue one another without a hole or an overlap.
 */
let db: TestDatabase;
let token: string;
const agentId = randomUUID();
const messageId = randomUUID();

beforeAll(async () => {
  db = await createTestDatabase('api_stream_restart');
  await db.pool.query(`INSERT INTO agents (id, org_id, name) VALUES ($1, $2, 'stream')`, [
    agentId,
    randomUUID(),
  ]);
  await db.pool.query(`INSERT INTO messages (id, agent_id, role, content) VALUES ($1, $2, 'assistant', '')`, [
    messageId,
    agentId,
  ]);
  token = await tokenFor(['*'], 'stream-restart');
});
afterAll(async () => db?.drop());

const TOKENS = Array.from({ length: 400 }, (_, i) =>
  i % 7 === 3 ? ' 😀' : i % 5 === 0 ? ' é\u0301' : ` w${i}`,
);

it('resumes a streamed reply on the restarted worker without doubling or losing text', async () => {
  const port = await freePort();
  let worker: ServiceProcess = await startService('api', {
    port,
    env: {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_CHANNEL_PREFIX: uniqueChannelPrefix(),
      SYNC_JWT_SECRET: TEST_JWT_SECRET,
      RATE_LIMIT_PER_SECOND: '0',
      STREAM_COALESCE_MS: '10',
    },
  });
  let acked = 0;
  let onAck: () => void = () => {};
  let retries = 0;
  let onRetry: () => void = () => {};
  const writer = createStreamWriter({
    baseUrl: worker.url,
    token,
    upload: 'stream',
    model: 'Message',
    id: messageId,
    field: 'content',
    backoff: { initialDelayMs: 20, maxDelayMs: 200 },
    hooks: {
      appended: () => {
        acked++;
        onAck();
      },
      retrying: () => {
        retries++;
        onRetry();
      },
    },
  });
  const ackCount = (n: number) =>
    new Promise<void>((resolve) => {
      onAck = () => acked >= n && resolve();
      onAck();
    });
  const retryCount = (n: number) =>
    new Promise<void>((resolve) => {
      onRetry = () => retries >= n && resolve();
      onRetry();
    });
  try {
    for (const t of TOKENS.slice(0, 100)) writer.write(t);
    await ackCount(1);
    for (const t of TOKENS.slice(100, 200)) {
      writer.write(t);
      await new Promise((r) => setImmediate(r)); // let lines leave one by one
    }
    const durableAtKill = writer.durableOffset;
    await worker.kill('SIGKILL');
    for (const t of TOKENS.slice(200, 300)) writer.write(t); // nobody listens
    await retryCount(2);
    worker = await restartService(worker);
    for (const t of TOKENS.slice(300)) writer.write(t);
    const result = await writer.end();

    const text = TOKENS.join('');
    expect(durableAtKill).toBeLessThan(text.length);
    expect(result.length).toBe(text.length);
    expect(result.requests).toBeGreaterThanOrEqual(2);
    const { rows } = await db.pool.query<{ content: string }>('SELECT content FROM messages WHERE id = $1', [
      messageId,
    ]);
    expect(Buffer.from(rows[0]!.content)).toEqual(Buffer.from(text));
    const { rows: events } = await db.pool.query<{ data: { offset: number; text: string } }>(
      `SELECT data FROM sync_events WHERE scope = $1 AND action = 'append' ORDER BY id`,
      [`agent:${agentId}`],
    );
    let rebuilt = '';
    for (const e of events) {
      expect(e.data.offset).toBe(rebuilt.length);
      rebuilt += e.data.text;
    }
    expect(rebuilt).toBe(text);
  } finally {
    writer.close();
    await worker.kill('SIGKILL');
  }
}, 120_000);
