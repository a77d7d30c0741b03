import { randomUUID } from 'node:crypto';
import { ErrorBody, MAX_BATCH_MUTATIONS, MAX_TEXT_LENGTH } from '@openagents/sync-protocol';
import { createAuth } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenFor } from '../../../test/support/tokens';
import { type ApiHarness, createApiHarness } from '../test/api-harness';

let h: ApiHarness;
let agent: { id: string; org_id: string };
let message: { id: string; agent_id: string };

beforeAll(async () => {
  h = await createApiHarness({ label: 'api_bad_input' });
  agent = await h.createAgent();
  message = await h.createMessage(agent.id);
});
afterAll(async () => h?.close());

/**
 * Sends a request that must be refused: checks the status and error code, that the body is a
 * plain error object without a stack trace, and that no row anywhere changed.
 */
async function rejects(
  send: () => Promise<Response>,
  status: number,
  code: string,
): Promise<ErrorBody['error']> {
  const before = await h.counts();
  const res = await send();
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status });
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  const body = ErrorBody.parse(JSON.parse(text));
  expect(body.error.code).toBe(code);
  expect(text).not.toMatch(/\s+at\s.+:\d+:\d+|node_modules|\.ts:\d+/);
  expect(await h.counts()).toEqual(before);
  return body.error;
}

function paths(error: ErrorBody['error']): string[] {
  return (error.details as { path: string }[]).map((d) => d.path);
}

const newAgent = () => ({ org_id: randomUUID(), name: 'A' });

describe('malformed bodies', () => {
  it('400 on invalid JSON, empty bodies and non-object JSON', async () => {
    await rejects(
      () => h.request('POST', '/api/agents', undefined, { raw: '{"org_id": ' }),
      400,
      'bad_request',
    );
    await rejects(() => h.request('POST', '/api/agents', undefined, { raw: '' }), 400, 'bad_request');
    await rejects(() => h.request('POST', '/api/agents', [newAgent()]), 400, 'invalid_body');
    await rejects(() => h.request('POST', '/api/agents', null), 400, 'invalid_body');
    await rejects(() => h.request('POST', '/api/agents', 'text'), 400, 'invalid_body');
    await rejects(
      () => h.request('POST', '/api/agents', undefined, { raw: new Uint8Array([0x7b, 0xff, 0x7d]) }),
      400,
      'bad_request',
    );
  });

  it('400 naming each bad field', async () => {
    const error = await rejects(
      () =>
        h.request('POST', '/api/agents', {
          org_id: 'not-a-uuid',
          name: '',
          status: 'sleeping',
          color: 'red',
        }),
      400,
      'invalid_body',
    );
    expect(paths(error).sort()).toEqual(['color', 'name', 'org_id', 'status']);
    const missing = await rejects(() => h.request('POST', '/api/messages', {}), 400, 'invalid_body');
    expect(paths(missing).sort()).toEqual(['agent_id', 'content', 'role']);
    const pay = await rejects(
      () => h.request('POST', '/api/payments', { org_id: agent.org_id, amount: 1.5, currency: 'usd' }),
      400,
      'invalid_body',
    );
    expect(paths(pay).sort()).toEqual(['amount', 'currency']);
    await rejects(
      () => h.request('POST', '/api/payments', { org_id: agent.org_id, amount: 2 ** 60, currency: 'USD' }),
      400,
      'invalid_body',
    );
  });

  it('400 when an update tries to move a record to another scope or set server fields', async () => {
    const moved = await rejects(
      () => h.request('PATCH', `/api/messages/${message.id}`, { agent_id: randomUUID(), content: 'x' }),
      400,
      'invalid_body',
    );
    expect(moved.details).toEqual([{ path: 'agent_id', message: expect.stringMatching(/scope/) }]);
    const org = await rejects(
      () => h.request('PATCH', `/api/agents/${agent.id}`, { org_id: randomUUID() }),
      400,
      'invalid_body',
    );
    expect(paths(org)).toEqual(['org_id']);
    const server = await rejects(
      () => h.request('PATCH', `/api/agents/${agent.id}`, { id: randomUUID(), updated_at: 'now' }),
      400,
      'invalid_body',
    );
    expect(paths(server).sort()).toEqual(['id', 'updated_at']);
    await rejects(() => h.request('PATCH', `/api/agents/${agent.id}`, {}), 400, 'invalid_body');
  });

  it('400 for a non-uuid id in the path', async () => {
    for (const id of ['123', "1'%20OR%20'1'='1", 'null', `${randomUUID()}x`]) {
      const error = await rejects(
        () => h.request('PATCH', `/api/agents/${id}`, { name: 'x' }),
        400,
        'bad_request',
      );
      expect(paths(error)).toEqual(['id']);
      await rejects(() => h.request('DELETE', `/api/agents/${id}`), 400, 'bad_request');
    }
  });

  it('400 for an invalid Idempotency-Key header', async () => {
    for (const key of ['has space', 'k'.repeat(201)]) {
      await rejects(
        () => h.request('POST', '/api/agents', newAgent(), { headers: { 'idempotency-key': key } }),
        400,
        'bad_request',
      );
    }
  });
});

describe('auth', () => {
  it('401 without a token, with a bad one, with an expired one, or signed with another secret', async () => {
    const other = createAuth({ secret: 'another-secret-another-secret-0123456789' });
    const forged = await other.sign({ sub: 'user-1', scopes: ['*'] });
    const expired = await tokenFor(['*'], 'user-1', -60);
    for (const token of [null, 'garbage', expired, forged]) {
      await rejects(() => h.request('POST', '/api/agents', newAgent(), { token }), 401, 'unauthorized');
      await rejects(
        () => h.request('DELETE', `/api/messages/${message.id}`, undefined, { token }),
        401,
        'unauthorized',
      );
      await rejects(
        () =>
          h.request(
            'POST',
            '/api/mutations',
            { mutations: [{ model: 'Agent', action: 'insert', data: newAgent() }] },
            { token },
          ),
        401,
        'unauthorized',
      );
    }
    await rejects(
      () =>
        h.request('POST', '/api/agents', newAgent(), {
          token: null,
          headers: { authorization: 'Basic dXNlcjpwYXNz' },
        }),
      401,
      'unauthorized',
    );
  });

  it('403 for a scope outside the token, on create (from the body) and on update/delete (from the record)', async () => {
    const narrow = await tokenFor([`org:${randomUUID()}`, 'agent:00000000-*']);
    const create = await rejects(
      () => h.request('POST', '/api/agents', newAgent(), { token: narrow }),
      403,
      'forbidden',
    );
    expect(paths(create)).toEqual(['org_id']);
    await rejects(
      () =>
        h.request(
          'POST',
          '/api/messages',
          { agent_id: agent.id, role: 'user', content: 'x' },
          { token: narrow },
        ),
      403,
      'forbidden',
    );
    const update = await rejects(
      () => h.request('PATCH', `/api/messages/${message.id}`, { content: 'hijack' }, { token: narrow }),
      403,
      'forbidden',
    );
    expect(paths(update)).toEqual(['id']);
    await rejects(
      () => h.request('DELETE', `/api/messages/${message.id}`, undefined, { token: narrow }),
      403,
      'forbidden',
    );
    const { rows } = await h.db.pool.query('SELECT content FROM messages WHERE id = $1', [message.id]);
    expect(rows[0].content).toBe('hi');
  });
});

describe('not found and conflicts', () => {
  it('404 for an unknown model path or route', async () => {
    await rejects(() => h.request('POST', '/api/widgets', { a: 1 }), 404, 'not_found');
    await rejects(() => h.request('PATCH', `/api/widgets/${randomUUID()}`, { a: 1 }), 404, 'not_found');
    await rejects(() => h.request('DELETE', `/api/__proto__/${randomUUID()}`), 404, 'not_found');
    await rejects(() => h.request('GET', '/api/agents'), 404, 'not_found');
  });

  it('404 for an unknown record', async () => {
    const error = await rejects(
      () => h.request('PATCH', `/api/agents/${randomUUID()}`, { name: 'x' }),
      404,
      'not_found',
    );
    expect(paths(error)).toEqual(['id']);
    await rejects(() => h.request('DELETE', `/api/payments/${randomUUID()}`), 404, 'not_found');
  });

  it('404 naming the field when a referenced agent or message is missing', async () => {
    const msg = await rejects(
      () => h.request('POST', '/api/messages', { agent_id: randomUUID(), role: 'user', content: 'x' }),
      404,
      'not_found',
    );
    expect(paths(msg)).toEqual(['agent_id']);
    const cc = await rejects(
      () => h.request('POST', '/api/code-changes', { agent_id: randomUUID(), path: 'p', diff: 'd' }),
      404,
      'not_found',
    );
    expect(paths(cc)).toEqual(['agent_id']);
    const pay = await rejects(
      () =>
        h.request('POST', '/api/payments', {
          org_id: agent.org_id,
          agent_id: randomUUID(),
          amount: 1,
          currency: 'USD',
        }),
      404,
      'not_found',
    );
    expect(paths(pay)).toEqual(['agent_id']);
    const step = await rejects(
      () =>
        h.request('POST', '/api/reasoning-steps', {
          agent_id: agent.id,
          message_id: randomUUID(),
          content: 'x',
        }),
      404,
      'not_found',
    );
    expect(paths(step)).toEqual(['message_id']);
  });

  it('400 when a Payment names an agent of another org, or a step a message of another agent', async () => {
    const otherAgent = await h.createAgent();
    const otherMessage = await h.createMessage(otherAgent.id);
    const pay = await rejects(
      () =>
        h.request('POST', '/api/payments', {
          org_id: agent.org_id,
          agent_id: otherAgent.id,
          amount: 1,
          currency: 'USD',
        }),
      400,
      'invalid_body',
    );
    expect(paths(pay)).toEqual(['agent_id']);
    const step = await rejects(
      () =>
        h.request('POST', '/api/reasoning-steps', {
          agent_id: agent.id,
          message_id: otherMessage.id,
          content: 'x',
        }),
      400,
      'invalid_body',
    );
    expect(paths(step)).toEqual(['message_id']);
    const created = (await (
      await h.request('POST', '/api/reasoning-steps', { agent_id: agent.id, content: 'x' })
    ).json()) as { data: { id: string } };
    await rejects(
      () => h.request('PATCH', `/api/reasoning-steps/${created.data.id}`, { message_id: otherMessage.id }),
      400,
      'invalid_body',
    );
    await rejects(
      () => h.request('PATCH', `/api/reasoning-steps/${created.data.id}`, { message_id: randomUUID() }),
      404,
      'not_found',
    );
  });

  it('409 when deleting a record others still reference', async () => {
    const error = await rejects(() => h.request('DELETE', `/api/agents/${agent.id}`), 409, 'conflict');
    expect(paths(error)).toEqual(['id']);
    const step = (await (
      await h.request('POST', '/api/reasoning-steps', {
        agent_id: agent.id,
        message_id: message.id,
        content: 'x',
      })
    ).json()) as { data: { id: string } };
    await rejects(() => h.request('DELETE', `/api/messages/${message.id}`), 409, 'conflict');
    expect(step.data.id).toBeTruthy();
  });

  it('409 when creating a record whose id exists', async () => {
    const error = await rejects(
      () => h.request('POST', '/api/agents', { id: agent.id, org_id: agent.org_id, name: 'dup' }),
      409,
      'conflict',
    );
    expect(paths(error)).toEqual(['id']);
  });
});

describe('transport limits', () => {
  it('415 for a body that is not application/json', async () => {
    const body = JSON.stringify(newAgent());
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/jsonp',
      'multipart/form-data',
    ]) {
      await rejects(
        () => h.request('POST', '/api/agents', undefined, { raw: body, headers: { 'content-type': type } }),
        415,
        'unsupported_media_type',
      );
    }
    const bare = await h.app.request('/api/agents', {
      method: 'POST',
      headers: { authorization: `Bearer ${h.token}` },
      body: new Blob([body]).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(bare.status).toBe(415);
    const ok = await h.request('POST', '/api/agents', undefined, {
      raw: body,
      headers: { 'content-type': 'Application/JSON; charset=utf-8' },
    });
    expect(ok.status).toBe(201);
  });

  it('413 for a body over the limit, by Content-Length and by the stream', async () => {
    const small = h.withConfig({ BODY_LIMIT_BYTES: 1024 });
    const big = JSON.stringify({ agent_id: agent.id, role: 'user', content: 'x'.repeat(2000) });
    const length = String(Buffer.byteLength(big));
    await rejects(
      () => small('POST', '/api/messages', undefined, { raw: big, headers: { 'content-length': length } }),
      413,
      'payload_too_large',
    );
    // A declared length under the limit does not let a longer body through.
    await rejects(
      () => small('POST', '/api/messages', undefined, { raw: big, headers: { 'content-length': '100' } }),
      413,
      'payload_too_large',
    );
    await rejects(() => small('POST', '/api/messages', undefined, { raw: big }), 413, 'payload_too_large');
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 8; i++)
          controller.enqueue(new TextEncoder().encode(big.slice(i * 300, (i + 1) * 300)));
        controller.close();
      },
    });
    await rejects(() => small('POST', '/api/messages', undefined, { raw: stream }), 413, 'payload_too_large');
    await rejects(
      () =>
        small('POST', '/api/mutations', {
          mutations: [{ model: 'Message', action: 'insert', data: JSON.parse(big) }],
        }),
      413,
      'payload_too_large',
    );
    const fits = await small('POST', '/api/messages', {
      agent_id: agent.id,
      role: 'user',
      content: 'x'.repeat(100),
    });
    expect(fits.status).toBe(201);
  });

  it('429 with Retry-After once a subject exceeds its rate, other subjects unaffected', async () => {
    const limited = h.withConfig({ RATE_LIMIT_PER_SECOND: 0.5, RATE_LIMIT_BURST: 2 });
    const token = await tokenFor(['*'], 'greedy');
    for (let i = 0; i < 2; i++) {
      const res = await limited('PATCH', `/api/agents/${agent.id}`, { status: 'running' }, { token });
      expect(res.status).toBe(200);
    }
    const before = await h.metric('sync_rate_limited_total');
    const before2 = await h.counts();
    const res = await limited('PATCH', `/api/agents/${agent.id}`, { status: 'idle' }, { token });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(ErrorBody.parse(await res.json()).error.code).toBe('rate_limited');
    expect(await h.counts()).toEqual(before2);
    expect(await h.metric('sync_rate_limited_total')).toBe(before + 1);
    const other = await limited(
      'PATCH',
      `/api/agents/${agent.id}`,
      { status: 'idle' },
      { token: await tokenFor(['*'], 'calm') },
    );
    expect(other.status).toBe(200);
  });
});

describe('hostile input', () => {
  it('rejects huge strings within the body limit', async () => {
    await rejects(
      () => h.request('POST', '/api/agents', { org_id: agent.org_id, name: 'n'.repeat(10_000) }),
      400,
      'invalid_body',
    );
    const huge = await rejects(
      () =>
        h.request('POST', '/api/messages', {
          agent_id: agent.id,
          role: 'user',
          content: 'x'.repeat(MAX_TEXT_LENGTH + 1),
        }),
      400,
      'invalid_body',
    );
    expect(paths(huge)).toEqual(['content']);
  });

  it('rejects deeply nested JSON without crashing', async () => {
    const depth = 50_000;
    const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    await rejects(
      () =>
        h.request('POST', '/api/agents', undefined, { raw: `{"org_id":"${agent.org_id}","name":${nested}}` }),
      400,
      'invalid_body',
    );
    await rejects(
      () =>
        h.request('POST', '/api/mutations', undefined, {
          raw: `{"mutations":[{"model":"Agent","action":"insert","data":{"org_id":"${agent.org_id}","name":"a","x":${nested}}}]}`,
        }),
      400,
      'invalid_body',
    );
    const objects = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    await rejects(() => h.request('POST', '/api/agents', undefined, { raw: objects }), 400, 'invalid_body');
  });

  it('rejects prototype-pollution keys and leaves Object.prototype alone', async () => {
    const raw = `{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"org_id":"${agent.org_id}","name":"p"}`;
    const error = await rejects(
      () => h.request('POST', '/api/agents', undefined, { raw }),
      400,
      'invalid_body',
    );
    expect(paths(error).sort()).toEqual(['__proto__', 'constructor']);
    await rejects(
      () => h.request('PATCH', `/api/agents/${agent.id}`, undefined, { raw: '{"__proto__":{"name":"x"}}' }),
      400,
      'invalid_body',
    );
    await rejects(
      () =>
        h.request('POST', '/api/mutations', undefined, {
          raw: `{"mutations":[{"model":"Agent","action":"insert","data":{"__proto__":{"org_id":"${agent.org_id}"},"name":"p"}}],"__proto__":{}}`,
        }),
      400,
      'invalid_body',
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('rejects NUL characters and lone surrogates in text instead of failing in Postgres', async () => {
    const nul = await rejects(
      () => h.request('POST', '/api/messages', { agent_id: agent.id, role: 'user', content: 'a\u0000b' }),
      400,
      'invalid_body',
    );
    expect(paths(nul)).toEqual(['content']);
    await rejects(
      () =>
        h.request('POST', '/api/messages', undefined, {
          raw: `{"agent_id":"${agent.id}","role":"user","content":"\\ud800x"}`,
        }),
      400,
      'invalid_body',
    );
    await rejects(
      () => h.request('PATCH', `/api/messages/${message.id}`, { content: 'x\u0000' }),
      400,
      'invalid_body',
    );
  });
});

describe('batches', () => {
  const insertAgent = (name = 'A') => ({
    model: 'Agent',
    action: 'insert',
    data: { org_id: agent.org_id, name },
  });

  it('rejects the whole batch when one entry is invalid, naming the entry and field', async () => {
    const error = await rejects(
      () =>
        h.request('POST', '/api/mutations', {
          mutations: [insertAgent(), insertAgent(), insertAgent(), insertAgent('')],
        }),
      400,
      'invalid_body',
    );
    expect(paths(error)).toEqual(['mutations.3.data.name']);
    expect(error.message).toMatch(/invalid/);
  });

  it('rejects the whole batch when an entry fails in the database, writing nothing of the others', async () => {
    const missing = await rejects(
      () =>
        h.request('POST', '/api/mutations', {
          mutations: [
            insertAgent(),
            { model: 'Message', action: 'update', id: message.id, data: { content: 'changed' } },
            {
              model: 'Message',
              action: 'insert',
              data: { agent_id: randomUUID(), role: 'user', content: 'x' },
            },
          ],
        }),
      404,
      'not_found',
    );
    expect(paths(missing)).toEqual(['mutations.2.data.agent_id']);
    const notThere = await rejects(
      () =>
        h.request('POST', '/api/mutations', {
          mutations: [insertAgent(), { model: 'Agent', action: 'delete', id: randomUUID() }],
        }),
      404,
      'not_found',
    );
    expect(paths(notThere)).toEqual(['mutations.1.id']);
    const conflict = await rejects(
      () =>
        h.request('POST', '/api/mutations', {
          mutations: [insertAgent(), { model: 'Agent', action: 'delete', id: agent.id }],
        }),
      409,
      'conflict',
    );
    expect(paths(conflict)).toEqual(['mutations.1.id']);
    const dup = await rejects(
      () =>
        h.request('POST', '/api/mutations', {
          mutations: [insertAgent(), { ...insertAgent(), data: { ...insertAgent().data, id: agent.id } }],
        }),
      409,
      'conflict',
    );
    expect(paths(dup)).toEqual(['mutations.1.data.id']);
    const { rows } = await h.db.pool.query('SELECT content FROM messages WHERE id = $1', [message.id]);
    expect(rows[0].content).toBe('hi');
  });

  it('rejects the whole batch when one entry is outside the token', async () => {
    const token = await tokenFor([`org:${agent.org_id}`]);
    const error = await rejects(
      () =>
        h.request(
          'POST',
          '/api/mutations',
          { mutations: [insertAgent(), { model: 'Agent', action: 'insert', data: newAgent() }] },
          { token },
        ),
      403,
      'forbidden',
    );
    expect(paths(error)).toEqual(['mutations.1.data.org_id']);
  });

  it('400 for structural problems, each named', async () => {
    const cases: [unknown, string[]][] = [
      [{}, ['mutations']],
      [{ mutations: [] }, ['mutations']],
      [{ mutations: [insertAgent()], extra: 1 }, ['extra']],
      [{ mutations: [{ model: 'Widget', action: 'insert', data: {} }] }, ['mutations.0.model']],
      [{ mutations: [{ model: 'Agent', action: 'upsert', data: {} }] }, ['mutations.0.action']],
      [{ mutations: [{ model: 'Agent', action: 'insert' }] }, ['mutations.0.data']],
      [{ mutations: [{ model: 'Agent', action: 'update', data: { name: 'x' } }] }, ['mutations.0.id']],
      [{ mutations: [{ model: 'Agent', action: 'delete', id: agent.id, data: {} }] }, ['mutations.0.data']],
      [{ mutations: [{ model: 'Agent', action: 'delete', id: 'nope' }] }, ['mutations.0.id']],
      [
        { mutations: [{ model: 'Agent', action: 'update', id: agent.id, data: { org_id: randomUUID() } }] },
        ['mutations.0.data.org_id'],
      ],
      [
        {
          mutations: [
            {
              model: 'Agent',
              action: 'insert',
              id: randomUUID(),
              data: { ...insertAgent().data, id: randomUUID() },
            },
          ],
        },
        ['mutations.0.data.id'],
      ],
      [
        {
          mutations: [
            { ...insertAgent(), mutationId: 'k1' },
            { ...insertAgent(), mutationId: 'k1' },
          ],
        },
        ['mutations.1.mutationId'],
      ],
      [{ mutations: Array.from({ length: MAX_BATCH_MUTATIONS + 1 }, () => insertAgent()) }, ['mutations']],
    ];
    for (const [body, expected] of cases) {
      const error = await rejects(() => h.request('POST', '/api/mutations', body), 400, 'invalid_body');
      expect(paths(error)).toEqual(expected);
    }
  });
});
