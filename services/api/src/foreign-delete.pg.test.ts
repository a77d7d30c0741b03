import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenFor } from '../../../test/support/tokens';
import { type ApiHarness, createApiHarness } from '../test/api-harness';

let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ label: 'api_foreign_delete' });
});
afterAll(async () => h?.close());

/**
 * Found by the hostile stack suite: deleting another org's agent that still has messages answered
 * 409 "still referenced (messages_agent_id_fkey)" — the foreign keys spoke for a record before its
 * scope was checked. The scope comes first: 403, whatever the record's references.
 */
describe('delete of a record in a scope the token does not grant', () => {
  it('is 403 before the foreign keys answer, alone and in a batch, and deletes nothing', async () => {
    const agent = await h.createAgent();
    await h.createMessage(agent.id);
    const stranger = await tokenFor([`org:${randomUUID()}`], 'stranger');

    const alone = await h.request('DELETE', `/api/agents/${agent.id.toUpperCase()}`, undefined, {
      token: stranger,
    });
    expect(alone.status).toBe(403);
    expect(await alone.json()).toMatchObject({ error: { code: 'forbidden' } });

    const batch = await h.request(
      'POST',
      '/api/mutations',
      { mutations: [{ model: 'Agent', action: 'delete', id: agent.id }] },
      { token: stranger },
    );
    expect(batch.status).toBe(403);

    // The owner still gets the honest answer: the agent is referenced.
    const own = await h.request('DELETE', `/api/agents/${agent.id}`);
    expect(own.status).toBe(409);
    const { rows } = await h.db.pool.query('SELECT 1 FROM agents WHERE id = $1', [agent.id]);
    expect(rows).toHaveLength(1);
  });

  it('an update whose new reference is dangling is 403 as well, for a record of another scope', async () => {
    const agent = await h.createAgent();
    const message = await h.createMessage(agent.id);
    const created = await h.request('POST', '/api/reasoning-steps', {
      agent_id: agent.id,
      message_id: message.id,
      content: 'thinking',
    });
    expect(created.status).toBe(201);
    const step = ((await created.json()) as { data: { id: string } }).data.id;
    const stranger = await tokenFor([`org:${randomUUID()}`], 'stranger');
    const res = await h.request(
      'PATCH',
      `/api/reasoning-steps/${step}`,
      { message_id: randomUUID() },
      { token: stranger },
    );
    expect(res.status).toBe(403);
    // The owner learns the reference is missing.
    const own = await h.request('PATCH', `/api/reasoning-steps/${step}`, { message_id: randomUUID() });
    expect(own.status).toBe(404);
  });

  it('still deletes an unreferenced record of a granted scope, and 404s an unknown one', async () => {
    const agent = await h.createAgent();
    expect((await h.request('DELETE', `/api/agents/${agent.id}`)).status).toBe(200);
    expect((await h.request('DELETE', `/api/agents/${agent.id}`)).status).toBe(404);
  });
});
