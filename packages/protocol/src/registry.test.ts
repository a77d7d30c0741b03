import { describe, expect, expectTypeOf, it } from 'vitest';
import type * as z from 'zod/mini';
import {
  APPENDABLE_FIELDS,
  type AppendField,
  type CreateInput,
  createSchemas,
  MODEL_NAMES,
  MODEL_PATHS,
  MODEL_REGISTRY,
  type ModelRecords,
  modelForPath,
  recordSchemas,
  SCOPE_KEYS,
  type ToolCall,
  type UpdateInput,
  updateSchemas,
} from './models';
import { defineModel, defineRegistry, field, type Json, jsonProblem, MAX_JSON_DEPTH } from './registry';

/**
 * Typed writes as the client offers them: the data is checked against the model at compile time,
 * and here also at run time by the derived schemas (true when they accept it).
 */
function insert<M extends keyof ModelRecords>(model: M, data: CreateInput<M>): boolean {
  return (
    (createSchemas as Record<string, z.ZodMiniType | undefined>)[model]?.safeParse(data).success ?? false
  );
}
function update<M extends keyof ModelRecords>(model: M, _id: string, data: UpdateInput<M>): boolean {
  return (
    (updateSchemas as Record<string, z.ZodMiniType | undefined>)[model]?.safeParse(data).success ?? false
  );
}
const AG = '7f1c0a4e-8b1d-4c55-9a4f-1f6f0a7e9b10';

describe('types derived from the registry', () => {
  it('types records, inserts, updates and appends per model', () => {
    expectTypeOf<ToolCall>().toEqualTypeOf<{
      id: string;
      created_at: string;
      updated_at: string;
      created_sync_id?: number | null | undefined;
      agent_id: string;
      message_id: string | null;
      name: string;
      arguments: Json;
      result: Json | null;
      status: 'pending' | 'running' | 'succeeded' | 'failed';
    }>();
    expectTypeOf<CreateInput<'ToolCall'>>().toEqualTypeOf<{
      id?: string | undefined;
      agent_id: string;
      name: string;
      message_id?: string | null | undefined;
      arguments?: Json | undefined;
      result?: Json | null | undefined;
      status?: 'pending' | 'running' | 'succeeded' | 'failed' | undefined;
    }>();
    // Scope fields and immutable fields are not part of an update.
    expectTypeOf<UpdateInput<'ToolCall'>>().toEqualTypeOf<{
      name?: string | undefined;
      arguments?: Json | undefined;
      result?: Json | null | undefined;
      status?: 'pending' | 'running' | 'succeeded' | 'failed' | undefined;
    }>();
    expectTypeOf<keyof UpdateInput<'Payment'>>().toEqualTypeOf<'amount' | 'currency' | 'status'>();
    expectTypeOf<AppendField<'Message'>>().toEqualTypeOf<'content'>();
    expectTypeOf<AppendField<'ToolCall'>>().toBeNever();
    expectTypeOf(SCOPE_KEYS.Agent).toEqualTypeOf<{ prefix: 'org'; field: 'org_id' }>();
    expectTypeOf(APPENDABLE_FIELDS.Agent).toEqualTypeOf<readonly []>();
    expectTypeOf(MODEL_NAMES).toEqualTypeOf<
      readonly ['Agent', 'Message', 'Payment', 'CodeChange', 'ReasoningStep', 'ToolCall']
    >();

    expect(insert('Message', { agent_id: AG, role: 'user', content: 'hi' })).toBe(true);
    expect(insert('ToolCall', { agent_id: AG, name: 'search', arguments: { q: ['x', 1, null] } })).toBe(true);
    expect(update('ToolCall', AG, { status: 'succeeded', result: null })).toBe(true);
    // Compile-time failures (npm run typecheck fails if any of these starts to compile), which
    // the schemas refuse at run time as well:
    // @ts-expect-error — a field Message does not have
    expect(insert('Message', { agent_id: AG, role: 'user', content: 'hi', body: 'x' })).toBe(false);
    // @ts-expect-error — a required field missing
    expect(insert('Message', { agent_id: AG, role: 'user' })).toBe(false);
    // @ts-expect-error — a value outside the enum
    expect(insert('ToolCall', { agent_id: AG, name: 'x', status: 'done' })).toBe(false);
    // @ts-expect-error — a non-JSON value in a json field
    expect(insert('ToolCall', { agent_id: AG, name: 'x', arguments: new Date() })).toBe(false);
    // @ts-expect-error — null in a json field that is not nullable
    expect(insert('ToolCall', { agent_id: AG, name: 'x', arguments: null })).toBe(false);
    // @ts-expect-error — the scope field cannot be updated
    expect(update('Message', AG, { agent_id: AG })).toBe(false);
    // @ts-expect-error — nor an immutable one
    expect(update('ToolCall', AG, { message_id: AG })).toBe(false);
    // @ts-expect-error — no such model
    expect(insert('Tool', {})).toBe(false);
    expect(MODEL_NAMES).toContain('ToolCall');
  });

  it('types a custom model from its declaration alone', () => {
    const Note = defineModel({
      name: 'Note',
      table: 'notes',
      scope: { prefix: 'project', field: 'project_id' },
      fields: {
        project_id: field.uuid(),
        body: field.text().appendable(),
        pinned: field.boolean().default(false),
        rank: field.integer().nullable(),
      },
    });
    expectTypeOf<typeof Note.$types.insert>().toEqualTypeOf<{
      id?: string | undefined;
      project_id: string;
      body: string;
      pinned?: boolean | undefined;
      rank?: number | null | undefined;
    }>();
    expectTypeOf<typeof Note.$types.update>().toEqualTypeOf<{
      body?: string | undefined;
      pinned?: boolean | undefined;
      rank?: number | null | undefined;
    }>();
    expectTypeOf<typeof Note.$types.appendField>().toEqualTypeOf<'body'>();
    expect(Note.create.parse({ project_id: '7f1c0a4e-8b1d-4c55-9a4f-1f6f0a7e9b10', body: '' })).toEqual({
      project_id: '7f1c0a4e-8b1d-4c55-9a4f-1f6f0a7e9b10',
      body: '',
      pinned: false,
      rank: null,
    });
  });
});

describe('schemas derived from the registry', () => {
  const uuid = '7f1c0a4e-8b1d-4c55-9a4f-1f6f0a7e9b10';

  it('fills the declared defaults and refuses unknown, scope and server fields', () => {
    expect(createSchemas.ToolCall.parse({ agent_id: uuid, name: 'x' })).toEqual({
      agent_id: uuid,
      name: 'x',
      message_id: null,
      arguments: {},
      result: null,
      status: 'pending',
    });
    expect(createSchemas.Agent.parse({ org_id: uuid, name: 'a' })).toMatchObject({ status: 'idle' });
    expect(createSchemas.Payment.parse({ org_id: uuid, amount: 1, currency: 'EUR' })).toMatchObject({
      agent_id: null,
      status: 'pending',
    });
    for (const key of ['agent_id', 'message_id', 'created_at', 'id', 'bogus']) {
      expect(updateSchemas.ToolCall.safeParse({ [key]: uuid }).success, key).toBe(false);
    }
    expect(
      createSchemas.Message.safeParse({ agent_id: uuid, role: 'user', content: 'x', bogus: 1 }).success,
    ).toBe(false);
    expect(recordSchemas.Agent.shape.id.safeParse(uuid).success).toBe(true);
  });

  it('derives paths, scopes and appendable fields from the declarations', () => {
    expect(MODEL_PATHS).toEqual({
      Agent: 'agents',
      Message: 'messages',
      Payment: 'payments',
      CodeChange: 'code-changes',
      ReasoningStep: 'reasoning-steps',
      ToolCall: 'tool-calls',
    });
    expect(modelForPath('tool-calls')).toBe('ToolCall');
    expect(modelForPath('__proto__')).toBeUndefined();
    expect(APPENDABLE_FIELDS).toMatchObject({
      Message: ['content'],
      ReasoningStep: ['content'],
      ToolCall: [],
    });
    expect(MODEL_REGISTRY.modelsOf('agent').map((m) => m.name)).toEqual([
      'Message',
      'CodeChange',
      'ReasoningStep',
      'ToolCall',
    ]);
    expect(MODEL_REGISTRY.models.find((m) => m.name === 'ToolCall')!.columns).toEqual([
      'id',
      'agent_id',
      'message_id',
      'name',
      'arguments',
      'result',
      'status',
      'created_at',
      'updated_at',
      'created_sync_id',
    ]);
  });

  it('refuses JSON Postgres cannot store or that nests without bound, without recursing', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(jsonProblem(deep)).toBe(`must be JSON nested at most ${MAX_JSON_DEPTH} levels deep`);
    expect(jsonProblem({ a: 'x\u0000' })).toBe('must not contain NUL characters');
    expect(jsonProblem({ '\udc00': 1 })).toBe('must be well-formed Unicode (no lone surrogates)');
    expect(jsonProblem({ a: Number.NaN })).toBe('must be JSON (numbers are finite)');
    expect(jsonProblem({ a: new Date() })).toBe('must be JSON');
    expect(jsonProblem({ a: [1, 'two', null, { b: true }] })).toBeUndefined();
    expect(createSchemas.ToolCall.safeParse({ agent_id: uuid, name: 'x', arguments: null }).success).toBe(
      false,
    );
    expect(createSchemas.ToolCall.safeParse({ agent_id: uuid, name: 'x', result: null }).success).toBe(true);
  });
});

describe('declaration checks', () => {
  const base = { name: 'Thing', table: 'things', scope: { prefix: 'org', field: 'org_id' } } as const;

  it('refuses declarations the SQL and the scopes could not follow', () => {
    expect(() => defineModel({ ...base, fields: { org_id: field.uuid().nullable() } })).toThrow(
      'scope field org_id must be a non-null uuid field',
    );
    expect(() => defineModel({ ...base, table: 'Things; DROP', fields: { org_id: field.uuid() } })).toThrow(
      'must be a lowercase SQL identifier',
    );
    expect(() =>
      defineModel({ ...base, fields: { org_id: field.uuid(), created_at: field.text() } }),
    ).toThrow('created_at is set by the server');
    expect(() => field.integer().appendable()).toThrow('only text fields can be appendable');
    expect(() =>
      defineModel({ ...base, fields: { org_id: field.uuid() }, indexes: [{ name: 'i', columns: ['nope'] }] }),
    ).toThrow('unknown column nope');
  });

  it('refuses registries with clashing names or dangling references', () => {
    const thing = defineModel({
      ...base,
      fields: { org_id: field.uuid(), ref: field.uuid().references('Ghost') },
    });
    expect(() => defineRegistry([thing])).toThrow('references unknown model Ghost');
    const agentRef = defineModel({
      ...base,
      scope: { prefix: 'team', field: 'team_id' },
      fields: { team_id: field.uuid(), agent_id: field.uuid().references('Agent', { sameScope: true }) },
    });
    expect(() => defineRegistry([...MODEL_REGISTRY.models, agentRef])).toThrow(
      'references Agent in the same scope',
    );
    expect(() => defineRegistry([...MODEL_REGISTRY.models, MODEL_REGISTRY.models[0]])).toThrow(
      'model Agent is declared twice',
    );
  });
});
