import type { WriteResult } from '@openagents/sync-protocol';
import { createRedisBus } from '@openagents/sync-server-kit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../../../test/support/redis';
import { type ApiHarness, createApiHarness } from '../test/api-harness';

/**
 * A streamed reply's next commit does not wait for the bus to acknowledge the last one's publish:
 * with a private Redis whose writes (PUBLISH included) are paused, pieces still commit one after
 * another in Postgres, and their acknowledgements come, in order, once Redis answers.
 */
let redis: RedisServer;
let h: ApiHarness;
let admin: Redis;
beforeAll(async () => {
  redis = await startRedisServer();
  admin = new Redis(redis.url);
  h = await createApiHarness({
    label: 'api_stream_bus',
    bus: createRedisBus({ url: redis.url, channelPrefix: 'stream-bus:', publishTimeoutMs: 5000 }),
  });
});
afterAll(async () => {
  // A failed run may leave Redis paused: the harness's bus must be able to quit.
  await admin?.call('CLIENT', 'UNPAUSE').catch(() => {});
  admin?.disconnect();
  await h?.close();
  await redis?.stop();
});

const encoder = new TextEncoder();

async function content(id: string): Promise<string> {
  const { rows } = await h.db.pool.query<{ content: string }>('SELECT content FROM messages WHERE id = $1', [
    id,
  ]);
  return rows[0]!.content;
}

async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('append stream with a slow bus', () => {
  it('commits the next piece while the last one waits for its publish acknowledgement', async () => {
    const agent = await h.createAgent();
    const created = await h.request('POST', '/api/messages', {
      agent_id: agent.id,
      role: 'assistant',
      content: '',
    });
    const id = ((await created.json()) as WriteResult).data.id as string;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
      },
    });
    const res = await h.withConfig({ STREAM_COALESCE_MS: 0 })(
      'POST',
      `/api/messages/${id}/append-stream`,
      undefined,
      {
        raw: body,
        headers: { 'content-type': 'application/x-ndjson' },
      },
    );
    expect(res.status).toBe(200);
    const lines: Record<string, unknown>[] = [];
    const reading = (async () => {
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buffered = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buffered += decoder.decode(value, { stream: true });
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          lines.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
          buffered = buffered.slice(nl + 1);
        }
      }
    })();
    const piece = (offset: number, text: string) =>
      controller.enqueue(encoder.encode(`${JSON.stringify({ field: 'content', offset, text })}\n`));

    piece(0, 'a');
    await until(async () => lines.length === 1);
    // Paused until the test ends the pause, not for a time that a loaded machine might outlast.
    await admin.call('CLIENT', 'PAUSE', '60000', 'WRITE');
    piece(1, 'b');
    await until(async () => (await content(id)) === 'ab');
    piece(2, 'c');
    // `c` commits although `b`'s publish is still held by Redis (nothing acknowledged yet).
    await until(async () => (await content(id)) === 'abc');
    // Before this, `c` waited for `b`'s answer, which carries `b`'s acknowledgement line.
    expect(lines).toHaveLength(1);
    await admin.call('CLIENT', 'UNPAUSE');
    controller.close();
    await reading;
    expect(lines).toEqual([
      { offset: 0, length: 1, syncId: expect.any(Number) },
      { offset: 1, length: 2, syncId: expect.any(Number) },
      { offset: 2, length: 3, syncId: expect.any(Number) },
      { done: true, length: 3 },
    ]);
  });
});
