import { describe, expect, it } from 'vitest';
import { createScopedMutate } from './scoped-mutate';
import { createSyncClient } from './sync-client';

const AG = '20000000-0000-4000-8000-000000000001';
const ORG = '00000000-0000-4000-8000-0000000000aa';

function newClient() {
  // fetch never answers: writes stay pending, which is all these tests look at.
  return createSyncClient({
    url: 'http://127.0.0.1:1',
    token: 't',
    autoConnect: false,
    fetch: () => new Promise<Response>(() => {}),
  });
}

describe('createScopedMutate', () => {
  it('fills the scope field, and refuses other models and other scopes before applying anything', async () => {
    const client = newClient();
    const mutate = createScopedMutate(client, `agent:${AG}` as const);
    void mutate.insert('Message', { role: 'user', content: 'hi' }).catch(() => {});
    expect(client.getState().pending.map((p) => p.data?.agent_id)).toEqual([AG]);

    // Compile-time checks (npm run typecheck fails if any of these lines starts to compile):
    // @ts-expect-error — a field Message does not have
    const wrongField = mutate.insert('Message', { role: 'user', body: 'hi' }).catch((e: unknown) => e);
    // @ts-expect-error — a wrong value for an enum field
    const wrongRole = mutate.insert('Message', { role: 'robot', content: 'x' }).catch((e: unknown) => e);
    // @ts-expect-error — Agent records live in org scopes, not in agent scopes
    const wrongModel = mutate.insert('Agent', { name: 'x', org_id: ORG }).catch((e: unknown) => e);
    // @ts-expect-error — agent_id decides the scope and cannot be updated
    void mutate.update('Message', AG, { agent_id: AG }).catch(() => {});

    expect(String(await wrongModel)).toContain(`Agent records do not live in agent:${AG}`);
    const foreign = await mutate
      .insert('Message', { agent_id: ORG, role: 'user', content: 'x' })
      .catch((e: unknown) => e);
    expect(String(foreign)).toContain('is not the scope');
    // The ill-typed but well-scoped inserts went out as given (the server says why they are wrong).
    void wrongField;
    void wrongRole;
    expect(client.getState().pending).toHaveLength(4);
    await client.close();
  });

  it('an org scope takes Agent and Payment, with org_id filled in', async () => {
    const client = newClient();
    const mutate = createScopedMutate(client, `org:${ORG}` as const);
    void mutate.insert('Agent', { name: 'Scout' }).catch(() => {});
    void mutate.insert('Payment', { amount: 100, currency: 'USD' }).catch(() => {});
    // @ts-expect-error — Message records live in agent scopes
    void mutate.insert('Message', { role: 'user', content: 'x' }).catch(() => {});
    const state = client.getState();
    expect(state.pending.map((p) => [p.model, p.data?.org_id])).toEqual([
      ['Agent', ORG],
      ['Payment', ORG],
    ]);
    expect(state.records.list(`org:${ORG}`, 'Agent').map((a) => a.name)).toEqual(['Scout']);
    await client.close();
  });
});
