import { randomUUID } from 'node:crypto';
import { BootstrapResponse, DeltaResponse, ErrorBody, MAX_DELTA_LIMIT } from '@openagents/sync-protocol';
import {
  createAuth,
  createLogger,
  createPool,
  createRegistry,
  pingDatabase,
  pruneEvents,
} from '@openagents/sync-server-kit';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { testAuth, tokenFor } from '../../../test/support/tokens';
import { insertRecord, updateRecord } from '../test/writes';
import { createDeltaApp } from './app';
import { createDeltaReader } from './reader';

const log = createLogger({ name: 'delta-test', level: 'silent' });

describe('delta HTTP app', () => {
  let db: TestDatabase;
  let app: Hono;
  const orgId = randomUUID();
  const org = `org:${orgId}`;
  let agent: string;
  let token: string;

  const get = (path: string, bearer: string | null = token) =>
    app.request(path, { headers: bearer === null ? {} : { authorization: `Bearer ${bearer}` } });

  const expectError = async (res: Response, status: number, code: string) => {
    expect(res.status).toBe(status);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = ErrorBody.parse(await res.json());
    expect(body.error.code).toBe(code);
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts|stack/i);
    return body;
  };

  beforeAll(async () => {
    db = await createTestDatabase('delta_app');
    app = createDeltaApp({
      reader: createDeltaReader({ pool: db.pool }),
      auth: testAuth,
      log,
      registry: createRegistry('delta', { defaultMetrics: false }),
      readiness: async () => ({ postgres: await pingDatabase(db.pool) }),
    });
    const a = await insertRecord(db.pool, 'Agent', { org_id: orgId, name: 'one' });
    agent = `agent:${a.record.id}`;
    for (let i = 0; i < 4; i++) await updateRecord(db.pool, 'Agent', String(a.record.id), { name: `n${i}` });
    await insertRecord(db.pool, 'Message', { agent_id: a.record.id, role: 'user', content: 'hi' });
    token = await tokenFor([org, 'agent:*']);
  });
  afterAll(() => db.drop());

  it('serves a bootstrap snapshot in the protocol shape, never cached', async () => {
    const res = await get(`/sync/bootstrap?scope=${org}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = BootstrapResponse.parse(await res.json());
    expect(body.lastSyncId).toBe(5);
    expect(body.models.Agent).toHaveLength(1);
    expect(body.models.Agent[0]).toMatchObject({ name: 'n3' });
    expect(Object.keys(body.models).sort()).toEqual([
      'Agent',
      'CodeChange',
      'Message',
      'Payment',
      'ReasoningStep',
      'ToolCall',
    ]);
  });

  it('pages the delta with limit and hasMore', async () => {
    const first = DeltaResponse.parse(
      await (await get(`/sync/delta?scope=${org}&lastSyncId=0&limit=2`)).json(),
    );
    expect(first.events.map((e) => e.id)).toEqual([1, 2]);
    expect(first).toMatchObject({ scope: org, latestSyncId: 5, hasMore: true });
    const rest = DeltaResponse.parse(await (await get(`/sync/delta?scope=${org}&lastSyncId=2`)).json());
    expect(rest.events.map((e) => e.id)).toEqual([3, 4, 5]);
    expect(rest.hasMore).toBe(false);
    const tail = DeltaResponse.parse(await (await get(`/sync/delta?scope=${org}&lastSyncId=5`)).json());
    expect(tail).toEqual({ scope: org, events: [], latestSyncId: 5, hasMore: false });
  });

  it('answers 410 reset_required, exactly code and message, for a future cursor and a pruned one', async () => {
    const future = await get(`/sync/delta?scope=${org}&lastSyncId=6`);
    await expectError(future, 410, 'reset_required');
    const body = (await (await get(`/sync/delta?scope=${org}&lastSyncId=99`)).json()) as {
      error: Record<string, unknown>;
    };
    expect(Object.keys(body)).toEqual(['error']);
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);

    const prunedOrg = randomUUID();
    const scope = `org:${prunedOrg}`;
    const a = await insertRecord(db.pool, 'Agent', { org_id: prunedOrg, name: 'p' });
    await updateRecord(db.pool, 'Agent', String(a.record.id), { name: 'q' });
    await db.pool.query(
      `UPDATE sync_events SET created_at = now() - interval '60 days' WHERE scope = $1 AND id = 1`,
      [scope],
    );
    while ((await pruneEvents(db.pool, new Date(Date.now() - 30 * 86_400_000))) > 0);
    const t = await tokenFor([scope]);
    await expectError(await get(`/sync/delta?scope=${scope}&lastSyncId=0`, t), 410, 'reset_required');
    const ok = DeltaResponse.parse(await (await get(`/sync/delta?scope=${scope}&lastSyncId=1`, t)).json());
    expect(ok.events.map((e) => e.id)).toEqual([2]);
  });

  it('reads heads of many scopes by GET and POST', async () => {
    const res = await get(`/sync/heads?scope=${org}&scope=${agent}&scope=agent:nothing-here`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ heads: { [org]: 5, [agent]: 1, 'agent:nothing-here': 0 } });
    const scopes = [org, ...Array.from({ length: 999 }, () => `agent:${randomUUID()}`)];
    const post = await app.request('/sync/heads', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ scopes }),
    });
    expect(post.status).toBe(200);
    const heads = ((await post.json()) as { heads: Record<string, number> }).heads;
    expect(Object.keys(heads)).toHaveLength(1000);
    expect(heads[org]).toBe(5);
  });

  it('requires a valid, unexpired bearer token: 401', async () => {
    const paths = [
      `/sync/bootstrap?scope=${org}`,
      `/sync/delta?scope=${org}&lastSyncId=0`,
      `/sync/heads?scope=${org}`,
    ];
    const other = createAuth({ secret: 'another-secret-another-secret-0123456789' });
    const expired = await tokenFor([org], 'user-1', -60);
    const forged = await other.sign({ sub: 'u', scopes: ['*'] });
    const noneAlg = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ sub: 'u', scopes: ['*'], exp: 9_999_999_999 }),
    ).toString('base64url')}.`;
    for (const path of paths) {
      const missing = await get(path, null);
      await expectError(missing, 401, 'unauthorized');
      expect(missing.headers.get('www-authenticate')).toBe('Bearer');
      for (const bad of ['garbage', expired, forged, noneAlg, 'a.b.c', 'x'.repeat(5000)]) {
        await expectError(await get(path, bad), 401, 'unauthorized');
      }
      const basic = await app.request(path, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
      await expectError(basic, 401, 'unauthorized');
    }
    const body = await expectError(await get(`/sync/bootstrap?scope=${org}`, expired), 401, 'unauthorized');
    expect(body.error.message).toMatch(/expired/i);
  });

  it('refuses scopes the token does not cover: 403', async () => {
    const narrow = await tokenFor([`org:${randomUUID()}`]);
    await expectError(await get(`/sync/bootstrap?scope=${org}`, narrow), 403, 'forbidden');
    await expectError(await get(`/sync/delta?scope=${org}&lastSyncId=0`, narrow), 403, 'forbidden');
    await expectError(await get(`/sync/heads?scope=${org}`, narrow), 403, 'forbidden');
    // Every scope of a heads request must be covered, not just the first.
    await expectError(await get(`/sync/heads?scope=${org}&scope=team:secret`), 403, 'forbidden');
    const prefix = await tokenFor(['org:*']);
    expect((await get(`/sync/bootstrap?scope=${org}`, prefix)).status).toBe(200);
    await expectError(await get(`/sync/bootstrap?scope=${agent}`, prefix), 403, 'forbidden');
  });

  it('rejects malformed, oversized and hostile parameters with 400 naming the parameter', async () => {
    const cases: [string, string][] = [
      ['/sync/bootstrap', 'scope'],
      ['/sync/bootstrap?scope=', 'scope'],
      ['/sync/bootstrap?scope=org', 'scope'],
      ['/sync/bootstrap?scope=org:*', 'scope'],
      ['/sync/bootstrap?scope=*', 'scope'],
      ['/sync/bootstrap?scope=org:a%00b', 'scope'],
      ['/sync/bootstrap?scope=%E0%A4%A', 'scope'],
      ['/sync/bootstrap?scope=ORG:abc', 'scope'],
      [`/sync/bootstrap?scope=${encodeURIComponent("org:x' OR 1=1 --")}`, 'scope'],
      [`/sync/bootstrap?scope=${encodeURIComponent('org:x\nset-cookie: a=b')}`, 'scope'],
      [`/sync/bootstrap?scope=${encodeURIComponent('org:ü')}`, 'scope'],
      [`/sync/bootstrap?scope=org:${'a'.repeat(5000)}`, 'scope'],
      [`/sync/bootstrap?scope=${org}&scope=${org}`, 'scope'],
      [`/sync/bootstrap?scope=${org}&debug=1`, 'debug'],
      [`/sync/delta?scope=${org}`, 'lastSyncId'],
      [`/sync/delta?lastSyncId=0`, 'scope'],
      [`/sync/delta?scope=${org}&lastSyncId=-1`, 'lastSyncId'],
      [`/sync/delta?scope=${org}&lastSyncId=1.5`, 'lastSyncId'],
      [`/sync/delta?scope=${org}&lastSyncId=1e3`, 'lastSyncId'],
      [`/sync/delta?scope=${org}&lastSyncId=0x10`, 'lastSyncId'],
      [`/sync/delta?scope=${org}&lastSyncId=%201`, 'lastSyncId'],
      [`/sync/delta?scope=${org}&lastSyncId=`, 'lastSyncId'],
      [`/sync/delta?scope=${org}&lastSyncId=abc`, 'lastSyncId'],
      [`/sync/delta?scope=${org}&lastSyncId=9007199254740993`, 'lastSyncId'],
      [`/sync/delta?scope=${org}&lastSyncId=${'9'.repeat(400)}`, 'lastSyncId'],
      [`/sync/delta?scope=${org}&lastSyncId=0&lastSyncId=3`, 'lastSyncId'],
      [`/sync/delta?scope=${org}&lastSyncId=0&limit=0`, 'limit'],
      [`/sync/delta?scope=${org}&lastSyncId=0&limit=-5`, 'limit'],
      [`/sync/delta?scope=${org}&lastSyncId=0&limit=${MAX_DELTA_LIMIT + 1}`, 'limit'],
      [`/sync/delta?scope=${org}&lastSyncId=0&limit=10.5`, 'limit'],
      [`/sync/delta?scope=${org}&lastSyncId=0&limit=1&limit=2`, 'limit'],
      ['/sync/heads', 'scope'],
      [`/sync/heads?scope=nope`, 'scope'],
      [`/sync/heads?scope=${org}&x=1`, 'x'],
      [`/sync/heads?${Array.from({ length: 1001 }, (_, i) => `scope=agent:${i}`).join('&')}`, 'scope'],
    ];
    const before = await db.pool.query('SELECT count(*)::int AS n, max(last_id) AS m FROM sync_scopes');
    for (const [path, param] of cases) {
      const res = await get(path);
      const body = await expectError(res, 400, 'bad_request');
      expect(JSON.stringify(body.error.details), path).toContain(param);
    }
    const after = await db.pool.query('SELECT count(*)::int AS n, max(last_id) AS m FROM sync_scopes');
    expect(after.rows).toEqual(before.rows);
  });

  it('rejects bad POST /sync/heads bodies: 401, 415, 400, 413', async () => {
    const post = (body: string, headers: Record<string, string>) =>
      app.request('/sync/heads', { method: 'POST', headers, body });
    const auth = { authorization: `Bearer ${token}` };
    const json = { ...auth, 'content-type': 'application/json' };
    await expectError(
      await post('{"scopes":["org:x"]}', { 'content-type': 'application/json' }),
      401,
      'unauthorized',
    );
    await expectError(
      await post('scopes=org:x', { ...auth, 'content-type': 'text/plain' }),
      415,
      'unsupported_media_type',
    );
    await expectError(await post('{"scopes":', json), 400, 'bad_request');
    await expectError(await post('{"scopes":[]}', json), 400, 'bad_request');
    await expectError(await post('{"scopes":"org:x"}', json), 400, 'bad_request');
    await expectError(await post('{"scopes":["org:x"],"extra":1}', json), 400, 'bad_request');
    await expectError(await post('[1,2,3]', json), 400, 'bad_request');
    await expectError(
      await post(JSON.stringify({ scopes: [`org:${'a'.repeat(300)}`] }), json),
      400,
      'bad_request',
    );
    const big = JSON.stringify({ scopes: Array.from({ length: 1001 }, (_, i) => `agent:${i}`) });
    await expectError(await post(big, json), 400, 'bad_request');
    const huge = JSON.stringify({ scopes: ['org:x'], pad: 'x'.repeat(300 * 1024) });
    expect((await post(huge, json)).status).toBe(413);
  });

  it('answers unknown routes 404 and wrong methods without leaking anything', async () => {
    await expectError(await get('/sync/nothing'), 404, 'not_found');
    expect((await app.request('/sync/delta', { method: 'DELETE' })).status).toBe(404);
  });

  it('serves ops routes and bounded metrics without scopes in labels', async () => {
    expect((await app.request('/healthz')).status).toBe(200);
    expect((await app.request('/readyz')).status).toBe(200);
    const text = await (await app.request('/metrics')).text();
    expect(text).toMatch(/sync_delta_requests_total\{result="ok"/);
    expect(text).toMatch(/sync_delta_requests_total\{result="reset"/);
    expect(text).toMatch(/sync_delta_requests_total\{result="client_error"/);
    expect(text).toMatch(/sync_bootstrap_requests_total\{result="ok"/);
    expect(text).toMatch(/sync_bootstrap_records_bucket/);
    expect(text).toMatch(/sync_delta_events_returned_bucket/);
    expect(text).toMatch(/sync_heads_requests_total/);
    expect(text).toMatch(/sync_http_request_duration_seconds_bucket\{[^}]*route="\/sync\/delta"/);
    expect(text).not.toContain(orgId);
  });

  it('answers 503 unavailable when the database is down; readyz stays 200 and the metric says so', async () => {
    const deadPool = createPool({ url: `postgres://postgres@127.0.0.1:${await freePort()}/none`, max: 1 });
    const down = createDeltaApp({
      reader: createDeltaReader({ pool: deadPool }),
      auth: testAuth,
      log,
      registry: createRegistry('delta', { defaultMetrics: false }),
      dependencies: async () => ({ postgres: await pingDatabase(deadPool) }),
    });
    const req = (path: string) => down.request(path, { headers: { authorization: `Bearer ${token}` } });
    for (const path of [
      `/sync/bootstrap?scope=${org}`,
      `/sync/delta?scope=${org}&lastSyncId=0`,
      `/sync/heads?scope=${org}`,
    ]) {
      const res = await req(path);
      await expectError(res, 503, 'unavailable');
    }
    expect((await down.request('/readyz')).status).toBe(200);
    const metrics = await (await down.request('/metrics')).text();
    expect(metrics).toMatch(/^sync_dependency_up\{dependency="postgres"[^}]*\} 0$/m);
    expect(metrics).toMatch(/sync_delta_requests_total\{result="error"/);
    await deadPool.end();
  });
});
