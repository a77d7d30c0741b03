import { randomUUID } from 'node:crypto';
import {
  AppendBody,
  MODEL_REGISTRY,
  type ModelDef,
  type ModelName,
  type ModelRegistry,
  type MutationAction,
  MutationBatch,
  mutationBatchSchema,
  scopeOf,
  textProblem,
  unreachable,
} from '@openagents/sync-protocol';
import { AppError } from '@openagents/sync-server-kit';
import { z } from 'zod';
import { requestHash } from './request-hash';

/** One field-level problem: a dotted path into the request body and what is wrong there. */
export interface FieldIssue {
  path: string;
  message: string;
  [extra: string]: unknown;
}

/**
 * A validated write, ready for the commit path. `at` is the prefix of every field path an error
 * about this mutation names: `''` for the single-record endpoints, `mutations.3.data.` style for
 * a batch entry (`fieldPrefix`), so a client can point at the offending input.
 */
export type PlannedMutation = PlannedInsert | PlannedUpdate | PlannedDelete | PlannedAppend;

interface PlannedBase {
  /** The model's name; `def` is its declaration in the app's registry. */
  model: string;
  def: ModelDef;
  id: string;
  /** Idempotency key (header or batch entry mutationId); carried on the event as mutationId. */
  mutationId: string | null;
  /** Fingerprint of the request the key was first used with. */
  requestHash: string;
  /** Where this mutation sits in the request, for error paths. */
  at: MutationLocation;
  /**
   * The scope this write is expected to land in: of a create, from its (canonical) values; of an
   * update or delete, null until the commit pipeline knows the record's scope. A hint for lock
   * order and queueing only: the committed scope is always derived from the stored row.
   */
  scope: string | null;
}

export interface PlannedInsert extends PlannedBase {
  action: 'insert';
  values: Record<string, unknown>;
}
export interface PlannedUpdate extends PlannedBase {
  action: 'update';
  fields: Record<string, unknown>;
}
export interface PlannedDelete extends PlannedBase {
  action: 'delete';
}
/** Contract v1.1 append: `text` added to `field` at `offset` (UTF-16 code units). */
export interface PlannedAppend extends PlannedBase {
  action: 'append';
  append: AppendBody;
}

/** Error-path prefixes of a mutation: of its data fields, of its id, of its idempotency key. */
export interface MutationLocation {
  data: string;
  id: string;
  key: string;
}

const SINGLE: MutationLocation = { data: '', id: 'id', key: 'Idempotency-Key' };

function batchLocation(index: number): MutationLocation {
  return {
    data: `mutations.${index}.data.`,
    id: `mutations.${index}.id`,
    key: `mutations.${index}.mutationId`,
  };
}

/** Maps zod issues to field issues; unknown keys become one issue each, named by the key. */
export function fieldIssues(error: z.core.$ZodError, prefix = '', def?: ModelDef): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const issue of error.issues) {
    const base = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        issues.push({
          path: joinPath(prefix, base ? `${base}.${key}` : key),
          message: unknownKeyMessage(key, def),
        });
      }
    } else {
      issues.push({ path: joinPath(prefix, base), message: issue.message });
    }
  }
  return issues;
}

function joinPath(prefix: string, path: string): string {
  if (!prefix) return path || '(body)';
  if (!path) return prefix.endsWith('.') ? prefix.slice(0, -1) : prefix;
  return prefix.endsWith('.') ? prefix + path : `${prefix}.${path}`;
}

/** Field names that decide a scope in some model of any registry in use (error wording only). */
const scopeFields = new Set<string>(MODEL_REGISTRY.scopeFields);

function unknownKeyMessage(key: string, def: ModelDef | undefined): string {
  if (scopeFields.has(key) || def?.scope.field === key) {
    return `${key} decides the record's scope and cannot be changed`;
  }
  if (def?.fields[key]?.isImmutable) return `${key} cannot be changed`;
  if (key === 'id' || key === 'created_at' || key === 'updated_at' || key === 'created_sync_id') {
    return `${key} cannot be set`;
  }
  return `unknown field ${key}`;
}

export function invalidBody(issues: FieldIssue[]): AppError {
  return new AppError('invalid_body', 'The request body is invalid', { details: issues });
}

/**
 * Postgres text cannot hold NUL, and JSON with unpaired surrogates cannot become jsonb; both
 * would fail deep in the commit path as a 500, so they are rejected up front as a 400 (json
 * fields check their strings in their schema).
 */
function textIssues(values: Record<string, unknown>, prefix: string): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const [key, value] of Object.entries(values)) {
    if (typeof value !== 'string') continue;
    const problem = textProblem(value);
    if (problem) issues.push({ path: prefix + key, message: problem });
  }
  return issues;
}

const Uuid = z.uuid();

/**
 * Lowercases every uuid field of the model in place. The schemas accept a uuid in either case;
 * Postgres stores it lowercase, and scopes (`org:<uuid>`) are compared as strings, so one spelling
 * must be chosen before a scope is derived, a hash is computed or a key is looked up.
 */
function canonicalUuids(def: ModelDef, values: Record<string, unknown>): Record<string, unknown> {
  for (const [name, value] of Object.entries(values)) {
    if (typeof value === 'string' && (name === 'id' || def.fields[name]?.kind === 'uuid')) {
      values[name] = value.toLowerCase();
    }
  }
  return values;
}

/** A model's declaration: given, or by name from the built-in registry. */
function defOf(model: ModelDef | ModelName): ModelDef {
  return typeof model === 'string' ? MODEL_REGISTRY.get(model)! : model;
}

/** Validates an id taken from the URL path. */
export function parsePathId(id: string): string {
  if (!Uuid.safeParse(id).success) {
    throw new AppError('bad_request', 'The id in the path must be a uuid', {
      details: [{ path: 'id', message: 'must be a uuid' }],
    });
  }
  return id.toLowerCase();
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `POST /api/<path>`: validates a create body; the id is the client's or a fresh uuid. */
export function planCreate(
  model: ModelDef | ModelName,
  body: unknown,
  options: { key: string | null; method: string; path: string },
): PlannedInsert {
  const def = defOf(model);
  const values = validateCreate(def, body, SINGLE);
  return {
    action: 'insert',
    model: def.name,
    def,
    id: values.id as string,
    values,
    scope: scopeOf(def, values),
    mutationId: options.key,
    requestHash: requestHash(options.method, options.path, body),
    at: SINGLE,
  };
}

/** `PATCH /api/<path>/:id`: validates the given fields (at least one; never a scope field). */
export function planUpdate(
  model: ModelDef | ModelName,
  id: string,
  body: unknown,
  options: { key: string | null; method: string; path: string },
): PlannedUpdate {
  const def = defOf(model);
  const fields = validateUpdate(def, body, SINGLE);
  return {
    action: 'update',
    model: def.name,
    def,
    id: id.toLowerCase(),
    fields,
    scope: null,
    mutationId: options.key,
    requestHash: requestHash(options.method, options.path, body),
    at: SINGLE,
  };
}

/** `POST /api/<path>/:id/append`: a piece of text for a field, at the offset the client saw. */
export function planAppend(
  model: ModelDef | ModelName,
  id: string,
  body: unknown,
  options: { key: string | null; method: string; path: string },
): PlannedAppend {
  const def = defOf(model);
  return {
    action: 'append',
    model: def.name,
    def,
    id: id.toLowerCase(),
    append: validateAppend(def, body, SINGLE),
    scope: null,
    mutationId: options.key,
    requestHash: requestHash(options.method, options.path, body),
    at: SINGLE,
  };
}

export function validateAppend(model: ModelDef | ModelName, body: unknown, at: MutationLocation): AppendBody {
  const def = defOf(model);
  const parsed = AppendBody.safeParse(body);
  if (!parsed.success) throw invalidBody(fieldIssues(parsed.error, at.data));
  const fields = def.appendableFields;
  if (!fields.includes(parsed.data.field)) {
    const message =
      fields.length === 0 ? `${def.name} has no field to append to` : `must be one of: ${fields.join(', ')}`;
    throw invalidBody([{ path: `${at.data}field`, message }]);
  }
  const issues = textIssues({ text: parsed.data.text }, at.data);
  if (issues.length > 0) throw invalidBody(issues);
  return parsed.data;
}

/** `DELETE /api/<path>/:id`. */
export function planDelete(
  model: ModelDef | ModelName,
  id: string,
  options: { key: string | null; method: string; path: string },
): PlannedDelete {
  const def = defOf(model);
  return {
    action: 'delete',
    model: def.name,
    def,
    id: id.toLowerCase(),
    scope: null,
    mutationId: options.key,
    requestHash: requestHash(options.method, options.path, undefined),
    at: SINGLE,
  };
}

function validateCreate(def: ModelDef, body: unknown, at: MutationLocation): Record<string, unknown> {
  const parsed = def.create.safeParse(body);
  if (!parsed.success) throw invalidBody(fieldIssues(parsed.error, at.data, def));
  const values = canonicalUuids(def, { ...(parsed.data as Record<string, unknown>) });
  const issues = textIssues(values, at.data);
  if (issues.length > 0) throw invalidBody(issues);
  values.id = typeof values.id === 'string' ? values.id.toLowerCase() : randomUUID();
  return values;
}

function validateUpdate(def: ModelDef, body: unknown, at: MutationLocation): Record<string, unknown> {
  const parsed = def.update.safeParse(body);
  if (!parsed.success) throw invalidBody(fieldIssues(parsed.error, at.data, def));
  const fields = canonicalUuids(
    def,
    Object.fromEntries(
      Object.entries(parsed.data as Record<string, unknown>).filter(([, v]) => v !== undefined),
    ),
  );
  if (Object.keys(fields).length === 0) {
    throw invalidBody([{ path: joinPath(at.data, ''), message: 'an update needs at least one field' }]);
  }
  const issues = textIssues(fields, at.data);
  if (issues.length > 0) throw invalidBody(issues);
  return fields;
}

/**
 * `POST /api/mutations`: validates the whole batch before anything touches the database, so a
 * bad entry anywhere rejects the batch with paths like `mutations.3.data.name`.
 */
export function planBatch(body: unknown, models: ModelRegistry = MODEL_REGISTRY): PlannedMutation[] {
  const parsed = batchSchemaOf(models).safeParse(body);
  if (!parsed.success) throw invalidBody(fieldIssues(parsed.error));
  const seen = new Map<string, number>();
  const issues: FieldIssue[] = [];
  const plans: PlannedMutation[] = [];
  parsed.data.mutations.forEach((entry, index) => {
    const at = batchLocation(index);
    if (entry.mutationId !== undefined) {
      const first = seen.get(entry.mutationId);
      if (first !== undefined) {
        issues.push({ path: at.key, message: `duplicate of mutations.${first}.mutationId` });
        return;
      }
      seen.set(entry.mutationId, index);
    }
    try {
      plans.push(planEntry(models.get(entry.model)!, entry, index, at));
    } catch (err) {
      if (err instanceof AppError && Array.isArray(err.details))
        issues.push(...(err.details as FieldIssue[]));
      else throw err;
    }
  });
  if (issues.length > 0) throw invalidBody(issues);
  return plans;
}

/** The batch schema of a registry: its model names (the built-in one for the built-in registry). */
const batchSchemas = new WeakMap<ModelRegistry, typeof MutationBatch>();
function batchSchemaOf(models: ModelRegistry): typeof MutationBatch {
  if (models === (MODEL_REGISTRY as ModelRegistry)) return MutationBatch;
  let schema = batchSchemas.get(models);
  if (!schema) {
    schema = mutationBatchSchema(models.ModelName).batch as unknown as typeof MutationBatch;
    batchSchemas.set(models, schema);
  }
  return schema;
}

interface BatchEntry {
  mutationId?: string | undefined;
  model: string;
  action: MutationAction;
  id?: string | undefined;
  data?: Record<string, unknown> | undefined;
}

function planEntry(def: ModelDef, entry: BatchEntry, index: number, at: MutationLocation): PlannedMutation {
  // Hashed only after validation: by then data is a flat record, never hostile nesting.
  const base = () => ({
    model: def.name,
    def,
    mutationId: entry.mutationId ?? null,
    requestHash: requestHash(
      'MUTATION',
      `${entry.model}/${entry.action}/${entry.id ?? ''}`,
      entry.data ?? null,
    ),
    at,
  });
  const action: MutationAction = entry.action;
  switch (action) {
    case 'insert': {
      if (!isPlainObject(entry.data)) {
        throw invalidBody([{ path: `mutations.${index}.data`, message: 'insert needs data' }]);
      }
      const dataId = entry.data.id;
      const sameId = typeof dataId === 'string' && dataId.toLowerCase() === entry.id?.toLowerCase();
      if (entry.id !== undefined && dataId !== undefined && !sameId) {
        throw invalidBody([{ path: `${at.data}id`, message: `differs from mutations.${index}.id` }]);
      }
      const input = entry.id === undefined ? entry.data : { ...entry.data, id: entry.id };
      const values = validateCreate(def, input, at);
      return {
        ...base(),
        action: 'insert',
        id: values.id as string,
        values,
        scope: scopeOf(def, values),
      };
    }
    case 'update': {
      if (entry.id === undefined) throw invalidBody([{ path: at.id, message: 'update needs an id' }]);
      if (!isPlainObject(entry.data)) {
        throw invalidBody([{ path: `mutations.${index}.data`, message: 'update needs data' }]);
      }
      const fields = validateUpdate(def, entry.data, at);
      return { ...base(), action: 'update', id: entry.id.toLowerCase(), fields, scope: null };
    }
    case 'delete': {
      if (entry.id === undefined) throw invalidBody([{ path: at.id, message: 'delete needs an id' }]);
      if (entry.data !== undefined) {
        throw invalidBody([{ path: `mutations.${index}.data`, message: 'delete takes no data' }]);
      }
      return { ...base(), action: 'delete', id: entry.id.toLowerCase(), scope: null };
    }
    case 'append': {
      if (entry.id === undefined) throw invalidBody([{ path: at.id, message: 'append needs an id' }]);
      const append = validateAppend(def, entry.data, at);
      return { ...base(), action: 'append', id: entry.id.toLowerCase(), append, scope: null };
    }
    default:
      return unreachable(action);
  }
}
