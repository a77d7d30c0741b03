import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenFor } from '../../../test/support/tokens';
import { startTestStandalone } from '../test/test-server';

const LIMIT = 2 * 1024 * 1024;

/**
 * BODY_LIMIT_BYTES is one setting for the standalone's API and for the bridge that reads bodies
 * off its socket: a body the operator allowed must not be refused by the bridge's own default
 * (1 MiB), and one over it is refused by the bridge.
 */
describe('standalone BODY_LIMIT_BYTES', () => {
  let server: Awaited<ReturnType<typeof startTestStandalone>>['server'];
  let close: () => Promise<void> = async () => {};

  beforeAll(async () => {
    ({ server, close } = await startTestStandalone('sa_body_limit', { BODY_LIMIT_BYTES: String(LIMIT) }));
  });
  afterAll(() => close());

  const post = async (body: string) => {
    const org = crypto.randomUUID();
    const res = await fetch(`${server.info().url}/api/mutations`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await tokenFor([`org:${org}`, 'agent:*'])}`,
        'content-type': 'application/json',
      },
      body: body.replaceAll('ORG', org),
    });
    return {
      status: res.status,
      json: (await res.json()) as { results?: unknown[]; error?: { code: string } },
    };
  };

  /** An agent and seven 220 KB messages in one batch: about 1.5 MiB, each field within its limit. */
  const bigBatch = () => {
    const agent = crypto.randomUUID();
    return JSON.stringify({
      mutations: [
        { model: 'Agent', action: 'insert', id: agent, data: { org_id: 'ORG', name: 'big' } },
        ...Array.from({ length: 7 }, () => ({
          model: 'Message',
          action: 'insert',
          data: { agent_id: agent, role: 'user', content: 'c'.repeat(220_000) },
        })),
      ],
    });
  };

  it('accepts a body over the bridge default (1 MiB) when the setting allows it', async () => {
    const body = bigBatch();
    expect(body.length).toBeGreaterThan(1024 * 1024);
    expect(body.length).toBeLessThan(LIMIT);
    const res = await post(body);
    expect(res.status, JSON.stringify(res.json).slice(0, 300)).toBe(200);
    expect(res.json.results).toHaveLength(8);
  });

  it('refuses a body over the setting with 413', async () => {
    const res = await post(`{"mutations":[],"pad":"${'p'.repeat(LIMIT)}"}`);
    expect(res.status).toBe(413);
    expect(res.json.error?.code).toBe('payload_too_large');
  });
});
