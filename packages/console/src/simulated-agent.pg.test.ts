import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness } from '../../../services/api/test/api-harness';
import { runSimulatedReply } from './simulated-agent';

/**
 * The simulated agent against the real mutation API: its reply goes out on one streaming upload
 * (`…/append-stream`) and lands in the message byte for byte, in fewer events than tokens.
 */
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ label: 'console_simulated_stream', config: { STREAM_COALESCE_MS: 20 } });
});
afterAll(async () => h?.close());

it('streams a simulated reply through the streaming upload', async () => {
  const agent = await h.createAgent();
  const paths: string[] = [];
  const result = await runSimulatedReply({
    baseUrl: 'http://api.test',
    token: h.token,
    agentId: agent.id,
    orgId: agent.org_id,
    prompt: 'Explain how offsets keep a streamed reply exact, in detail please',
    upload: 'stream',
    tokenDelayMs: { min: 0, max: 2 },
    random: () => 0.5,
    fetch: async (input, init) => {
      paths.push(new URL(String(input)).pathname);
      return h.app.fetch(new Request(input, init));
    },
  });
  expect(result.tokens).toBeGreaterThan(20);
  expect(result.appendRequests).toBe(1);
  expect(paths.filter((p) => p.endsWith('/append-stream'))).toHaveLength(1);
  expect(paths.some((p) => p.endsWith('/append'))).toBe(false);
  const { rows } = await h.db.pool.query<{ content: string }>('SELECT content FROM messages WHERE id = $1', [
    result.messageId,
  ]);
  expect(rows[0]!.content).toBe(result.content);
  const appends = (await h.events(`agent:${agent.id}`)).filter(
    (e) => e.action === 'append' && e.model_id === result.messageId,
  );
  expect(appends.map((e) => (e.data as { text: string }).text).join('')).toBe(result.content);
  expect(appends.length).toBeLessThan(result.tokens);
});
