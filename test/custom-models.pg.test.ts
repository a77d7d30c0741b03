import { randomUUID } from 'node:crypto';
import { createApiApp } from '@openagents/sync-api-service';
import { createDeltaReader } from '@openagents/sync-delta-service';
import {
  defineModel,
  defineRegistry,
  field,
  MODEL_REGISTRY,
  type SyncEvent,
} from '@openagents/sync-protocol';
import {
  createLogger,
  createMemoryBus,
  createRegistry,
  createTableSql,
  schemaDifferences,
  syncCommitSql,
} from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/pg';
import { testAuth, tokenFor } from './support/tokens';

/**
 * A deployment's own model, without forking the services (docs/models.md, "Your own models"):
 * declared with defineModel, its SQL generated, and the API and delta factories given the
 * registry. Its routes, validation, appends, scope, snapshots and log all come from it.
 */
const Note = defineModel({
  name: 'Note',
  table: 'notes',
  scope: { prefix: 'project', field: 'project_id' },
  fields: {
    project_id: field.uuid(),
    title: field.text({ min: 1, max: 100, check: true }),
    body: field.text().appendable(),
    pinned: field.boolean().default(false),
    priority: field.integer().nullable(),
    tags: field.json<string[]>().default([]),
  },
  indexes: [{ name: 'notes_pinned_idx', columns: ['project_id', 'pinned'], where: 'pinned' }],
});
const models = defineRegistry([...MODEL_REGISTRY.models, Note]);

let db: TestDatabase;
let api: ReturnType<typeof createApiApp>;
let builtIn: ReturnType<typeof createApiApp>;
let token: string;

beforeAll(async () => {
  db = await createTestDatabase('custom_models');
  // The deployment's own migration: what model-sql generates for its registry.
  await db.pool.query(createTableSql(Note, models));
  await db.pool.query(syncCommitSql(models));
  const deps = {
    pool: db.pool,
    bus: createMemoryBus(),
    auth: testAuth,
    log: createLogger({ name: 'custom-models', level: 'silent' }),
    registry: createRegistry('custom-models', { defaultMetrics: false }),
    config: { RATE_LIMIT_PER_SECOND: 0 },
  };
  api = createApiApp({ ...deps, models });
  builtIn = createApiApp(deps);
  token = await tokenFor(['*']);
});
afterAll(async () => db?.drop());

function send(app: ReturnType<typeof createApiApp>, method: string, path: string, body?: unknown) {
  return app.request(path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

describe('a deployment-defined model', () => {
  it('has the table the registry declares', async () => {
    expect(await schemaDifferences(db.pool, models)).toEqual([]);
  });

  it('is written, validated, appended to and served through the factories given the registry', async () => {
    const project = randomUUID();
    const created = await send(api, 'POST', '/api/notes', {
      project_id: project,
      title: 'Plan',
      body: 'Step',
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const note = (await created.json()) as { data: Record<string, unknown>; scope: string };
    expect(note.scope).toBe(`project:${project}`);
    expect(note.data).toMatchObject({ title: 'Plan', body: 'Step', pinned: false, priority: null, tags: [] });

    const append = await send(api, 'POST', `/api/notes/${note.data.id}/append`, {
      field: 'body',
      offset: 4,
      text: ' one',
    });
    expect(append.status, await append.clone().text()).toBe(200);
    const batch = await send(api, 'POST', '/api/mutations', {
      mutations: [
        {
          model: 'Note',
          action: 'update',
          id: note.data.id,
          data: { pinned: true, priority: 2, tags: ['a'] },
        },
        { model: 'Note', action: 'insert', data: { project_id: project, title: 'Second', body: '' } },
      ],
    });
    expect(batch.status, await batch.clone().text()).toBe(200);

    for (const [body, path] of [
      [{ project_id: project, title: '', body: '' }, 'title'],
      [{ project_id: project, title: 'x', body: '', priority: 2 ** 31 }, 'priority'],
      [{ project_id: project, title: 'x', body: '', colour: 'red' }, 'colour'],
    ] as const) {
      const res = await send(api, 'POST', '/api/notes', body);
      expect(res.status).toBe(400);
      expect((await res.json()).error.details.map((d: { path: string }) => d.path)).toContain(path);
    }
    const moved = await send(api, 'PATCH', `/api/notes/${note.data.id}`, { project_id: randomUUID() });
    expect((await moved.json()).error.details[0].message).toBe(
      "project_id decides the record's scope and cannot be changed",
    );

    // The built-in models still work beside it; an app without the registry knows no notes.
    expect((await send(api, 'POST', '/api/agents', { org_id: randomUUID(), name: 'A' })).status).toBe(201);
    expect(
      (await send(builtIn, 'POST', '/api/notes', { project_id: project, title: 'x', body: '' })).status,
    ).toBe(404);

    const reader = createDeltaReader({ pool: db.pool, models });
    const snap = await reader.bootstrap(`project:${project}`);
    const notes = (snap.models as Record<string, Record<string, unknown>[]>).Note!;
    expect(notes.map((n) => n.title)).toEqual(['Plan', 'Second']);
    expect(notes[0]).toMatchObject({ body: 'Step one', pinned: true, priority: 2, tags: ['a'] });
    expect(Object.keys(snap.models)).toContain('Message');
    const log = await reader.delta(`project:${project}`, 0);
    expect(log.events.map((e: SyncEvent) => `${e.model}:${e.action}`)).toEqual([
      'Note:insert',
      'Note:append',
      'Note:update',
      'Note:insert',
    ]);
    // The built-in reader does not know the prefix: the scope owns no records there.
    const plain = await createDeltaReader({ pool: db.pool }).bootstrap(`project:${project}`);
    expect((plain.models as Record<string, unknown>).Note).toBeUndefined();
  });
});
