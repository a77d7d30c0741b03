import * as z from 'zod/mini';

/**
 * The model registry: each synced model is declared once, with `defineModel`, and everything else
 * derives from the declaration — the zod schemas and TypeScript types of records and writes
 * (here), the API's validation and routes, the delta service's snapshot queries, and the SQL of
 * the tables and of the commit function (`@openagents/sync-server-kit`'s model-sql). Browser-safe:
 * nothing here touches Node or the database. docs/models.md walks through it.
 */

/** Upper bound for free-text fields (message content, diffs); the HTTP body limit is the hard cap. */
export const MAX_TEXT_LENGTH = 256 * 1024;
/** Deepest nesting a JSON field accepts (objects and arrays), so no reader recurses without bound. */
export const MAX_JSON_DEPTH = 32;

/** A JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** What a `json` field holds: any JSON value but null (a nullable json field adds null). */
export type Json = Exclude<JsonValue, null>;

export type FieldKind = 'uuid' | 'text' | 'enum' | 'bigint' | 'integer' | 'boolean' | 'json';

/**
 * One field of a model. `T` is its value's type (without null); the flags are carried in the type
 * so that records, inserts, updates and appends can be derived at compile time. Immutable: each
 * builder method returns a new field.
 */
export interface Field<
  T = unknown,
  Null extends boolean = boolean,
  Def extends boolean = boolean,
  Imm extends boolean = boolean,
  App extends boolean = boolean,
> {
  readonly kind: FieldKind;
  /** Validates a non-null value. */
  readonly schema: z.ZodMiniType<T>;
  /** The column may be NULL; a create may leave it out (null unless a default says otherwise). */
  readonly isNullable: Null;
  /** A create may leave it out and gets `defaultValue` (also the column's DEFAULT). */
  readonly hasDefault: Def;
  readonly defaultValue: T | null | undefined;
  /** Set by a create only; an update naming it is refused. Scope fields are always immutable. */
  readonly isImmutable: Imm;
  /** Text that `POST /api/<path>/<id>/append` can extend (contract v1.1). */
  readonly isAppendable: App;
  /** Allowed values of an `enum` field. */
  readonly values?: readonly string[] | undefined;
  /** Length bounds of a `text` field, in characters; a CHECK in SQL when declared with `check`. */
  readonly minLength?: number | undefined;
  readonly maxLength?: number | undefined;
  /** Whether the text bounds are also a CHECK constraint of the column. */
  readonly checkLength?: boolean | undefined;
  /** A regular expression a `text` field must match (also a CHECK in SQL). */
  readonly pattern?: string | undefined;
  /** A `uuid` field naming a record of another model (a foreign key, ON DELETE RESTRICT). */
  readonly ref?: { readonly model: string; readonly sameScope: boolean } | undefined;
  nullable(): Field<T, true, Def, Imm, App>;
  default(value: T | (Null extends true ? null : never)): Field<T, Null, true, Imm, App>;
  immutable(): Field<T, Null, Def, true, App>;
  /** Only for `text` fields: appends may extend it. */
  appendable(): Field<T, Null, Def, Imm, true>;
  /**
   * A `uuid` field that names a record of `model`. With `sameScope: true` the write path
   * checks that the referenced record lives in the same scope as the record written.
   */
  references(model: string, options?: { sameScope?: boolean }): Field<T, Null, Def, Imm, App>;
}

// biome-ignore lint/suspicious/noExplicitAny: the flags of any field, for constraints
export type AnyField = Field<any, boolean, boolean, boolean, boolean>;

type FieldData = Omit<AnyField, 'nullable' | 'default' | 'immutable' | 'appendable' | 'references'>;

function makeField(data: FieldData): AnyField {
  const built = {
    ...data,
    nullable: () => makeField({ ...data, isNullable: true }),
    default: (value: unknown) => makeField({ ...data, hasDefault: true, defaultValue: value }),
    immutable: () => makeField({ ...data, isImmutable: true }),
    appendable: () => {
      if (data.kind !== 'text') throw new Error('only text fields can be appendable');
      return makeField({ ...data, isAppendable: true });
    },
    references: (model: string, options: { sameScope?: boolean } = {}) =>
      makeField({ ...data, ref: { model, sameScope: options.sameScope ?? false } }),
  };
  return built as unknown as AnyField;
}

function newField<T>(kind: FieldKind, schema: z.ZodMiniType<T>, extra: Partial<FieldData> = {}) {
  return makeField({
    kind,
    schema,
    isNullable: false,
    hasDefault: false,
    defaultValue: undefined,
    isImmutable: false,
    isAppendable: false,
    ...extra,
  }) as unknown as Field<T, false, false, false, false>;
}

/**
 * JSON problems a `json` field rejects, found without recursion (hostile nesting cannot overflow
 * the stack): values JSON cannot carry, nesting deeper than MAX_JSON_DEPTH, and strings (or keys)
 * Postgres jsonb cannot store — NUL characters and lone surrogates.
 */
export function jsonProblem(value: unknown): string | undefined {
  const stack: { v: unknown; depth: number }[] = [{ v: value, depth: 0 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (v === null || typeof v === 'boolean') continue;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return 'must be JSON (numbers are finite)';
      continue;
    }
    if (typeof v === 'string') {
      const problem = textProblem(v);
      if (problem) return problem;
      continue;
    }
    if (typeof v !== 'object') return 'must be JSON';
    if (depth >= MAX_JSON_DEPTH) return `must be JSON nested at most ${MAX_JSON_DEPTH} levels deep`;
    if (Array.isArray(v)) {
      for (const item of v) stack.push({ v: item, depth: depth + 1 });
      continue;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return 'must be JSON';
    for (const [key, item] of Object.entries(v)) {
      const problem = textProblem(key);
      if (problem) return problem;
      stack.push({ v: item, depth: depth + 1 });
    }
  }
  return undefined;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Postgres text cannot hold NUL, and JSON with unpaired surrogates cannot become jsonb; both
 * would fail deep in the commit path, so they are rejected with the rest of the validation.
 */
export function textProblem(value: string): string | undefined {
  if (value.includes('\u0000')) return 'must not contain NUL characters';
  if (LONE_SURROGATE.test(value)) return 'must be well-formed Unicode (no lone surrogates)';
  return undefined;
}

const JsonSchema = z.unknown().check(
  z.superRefine((value, ctx) => {
    // A top-level null is the field's null: accepted only by a nullable field (z.nullable).
    const problem =
      value === undefined ? 'must be JSON' : value === null ? 'must not be null' : jsonProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, input: value });
  }),
) as unknown as z.ZodMiniType<JsonValue>;

/** Field constructors: `field.text({ max: 200 })`, `field.enum(['a', 'b']).default('a')`, ... */
export const field = {
  uuid: () => newField('uuid', z.uuid()),
  /**
   * Text up to `max` characters (default MAX_TEXT_LENGTH). `check: true` makes the bounds and the
   * pattern a CHECK constraint of the column as well (the API enforces them either way).
   */
  text(
    options: { min?: number; max?: number; pattern?: RegExp; patternMessage?: string; check?: boolean } = {},
  ) {
    const max = options.max ?? MAX_TEXT_LENGTH;
    const checks = [
      ...(options.min !== undefined ? [z.minLength(options.min)] : []),
      z.maxLength(max),
      ...(options.pattern ? [z.regex(options.pattern, options.patternMessage)] : []),
    ];
    return newField('text', z.string().check(...checks), {
      minLength: options.min,
      maxLength: max,
      checkLength: options.check ?? false,
      pattern: options.pattern?.source,
    });
  },
  enum: <const V extends readonly [string, ...string[]]>(values: V) =>
    newField<V[number]>('enum', z.enum(values) as unknown as z.ZodMiniType<V[number]>, { values }),
  /** A whole number within JavaScript's safe range, stored as bigint. */
  bigint: () => newField('bigint', z.int().check(z.gte(-(2 ** 53 - 1)), z.lte(2 ** 53 - 1))),
  /** A 32-bit whole number, stored as integer. */
  integer: () => newField('integer', z.int32()),
  boolean: () => newField('boolean', z.boolean()),
  /**
   * Any JSON value but a top-level null, stored as jsonb; `.nullable()` accepts null too and
   * stores it as SQL NULL.
   */
  json: <T extends JsonValue = Json>() => newField<T>('json', JsonSchema as z.ZodMiniType<T>),
};

/** What decides a record's scope: `<prefix>:<value of field>`, e.g. `agent:<agent_id>`. */
export interface ScopeRule<Prefix extends string = string, FieldName extends string = string> {
  prefix: Prefix;
  field: FieldName;
}

/** A secondary index; `where` makes it partial. The scope index (scope field, created_at) is implicit. */
export interface IndexDef {
  name: string;
  columns: readonly string[];
  where?: string;
}

export interface ModelInit<
  Name extends string,
  Fields extends Record<string, AnyField>,
  Prefix extends string,
  ScopeField extends keyof Fields & string,
> {
  /** PascalCase, the `model` of events and batch entries. */
  name: Name;
  /** The Postgres table. */
  table: string;
  /** REST path segment, `/api/<path>`; default: the table with `_` as `-`. */
  path?: string;
  scope: ScopeRule<Prefix, ScopeField>;
  fields: Fields;
  indexes?: readonly IndexDef[];
}

/** A declared model: its declaration plus the schemas derived from it. */
export interface ModelDef<
  Name extends string = string,
  Fields extends Record<string, AnyField> = Record<string, AnyField>,
  Prefix extends string = string,
  ScopeField extends string = string,
> {
  readonly name: Name;
  readonly table: string;
  readonly path: string;
  readonly scope: ScopeRule<Prefix, ScopeField>;
  readonly fields: { readonly [K in keyof Fields]: ResolvedField };
  /** Field names in declaration order. */
  readonly fieldNames: readonly (keyof Fields & string)[];
  /** Fields an update may set. */
  readonly mutableFields: readonly string[];
  /** Text fields an append may extend. */
  readonly appendableFields: readonly string[];
  readonly indexes: readonly IndexDef[];
  /** Every column of the table, in order: id, the fields, the server's timestamps. */
  readonly columns: readonly string[];
  /** The record as the wire carries it (`.shape` reaches each field's schema). */
  readonly record: z.ZodMiniObject<RecordShape<Fields>>;
  readonly create: z.ZodMiniType<InsertOf<Fields>, InsertInputOf<Fields>>;
  readonly update: z.ZodMiniType<UpdateOf<Fields, ScopeField>, UpdateOf<Fields, ScopeField>>;
  /** Type carrier only (undefined at run time): `typeof Model.$types.insert`. */
  readonly $types: {
    record: RecordOf<Fields>;
    insert: InsertInputOf<Fields>;
    update: UpdateOf<Fields, ScopeField>;
    appendField: AppendFieldOf<Fields>;
  };
}

/** A field's declaration as plain data, once the model is defined (the scope field is immutable). */
export interface ResolvedField extends FieldData {
  readonly name: string;
}

/* Types derived from the fields --------------------------------------------------------------- */

/**
 * A field's flag as a type: `true`/`false` for a declared field, `boolean` for the generic
 * AnyField (then the derived types stay wide, so every model is assignable to ModelDef).
 */
type Flag<F, Name extends string> = F extends { [P in Name]: infer B } ? B : never;
/** A field's value: its schema's output, or null as well when it may be nullable. */
type ValueOf<F> = F extends { schema: z.ZodMiniType<infer T> }
  ? Flag<F, 'isNullable'> extends false
    ? T
    : T | null
  : never;
/** Fields a create may leave out: nullable ones and those with a default. */
type Optional<Fs> = {
  [K in keyof Fs]: Flag<Fs[K], 'isNullable'> extends false
    ? Flag<Fs[K], 'hasDefault'> extends false
      ? never
      : K
    : K;
}[keyof Fs];
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** Fields every record has. `created_sync_id`: the id of the event that inserted it (see models.ts). */
export interface BaseRecord {
  id: string;
  created_at: string;
  updated_at: string;
  created_sync_id?: number | null | undefined;
}

/** The zod shape of a record: the base fields plus one schema per declared field. */
export type RecordShape<Fs> = {
  id: z.ZodMiniUUID;
  created_at: z.ZodMiniString<string>;
  updated_at: z.ZodMiniString<string>;
  created_sync_id: z.ZodMiniOptional<z.ZodMiniNullable<z.ZodMiniInt>>;
} & { -readonly [K in keyof Fs]: z.ZodMiniType<ValueOf<Fs[K]>> };

export type RecordOf<Fs> = Simplify<BaseRecord & { -readonly [K in keyof Fs]: ValueOf<Fs[K]> }>;
/** A create body as a client writes it: optional id, defaults and nullable fields optional. */
export type InsertInputOf<Fs> = Simplify<
  { id?: string | undefined } & { -readonly [K in Exclude<keyof Fs, Optional<Fs>>]: ValueOf<Fs[K]> } & {
    -readonly [K in Optional<Fs>]?: ValueOf<Fs[K]> | undefined;
  }
>;
/** A create body once validated: defaults filled in. */
export type InsertOf<Fs> = Simplify<
  { id?: string | undefined } & { -readonly [K in keyof Fs]: ValueOf<Fs[K]> }
>;
type MutableKeys<Fs, ScopeField> = {
  [K in keyof Fs]: K extends ScopeField ? never : Flag<Fs[K], 'isImmutable'> extends true ? never : K;
}[keyof Fs];
export type UpdateOf<Fs, ScopeField = never> = Simplify<{
  -readonly [K in MutableKeys<Fs, ScopeField>]?: ValueOf<Fs[K]> | undefined;
}>;
export type AppendFieldOf<Fs> = {
  [K in keyof Fs]: Flag<Fs[K], 'isAppendable'> extends false ? never : K;
}[keyof Fs] &
  string;

/* defineModel ----------------------------------------------------------------------------------- */

const MODEL_NAME = /^[A-Z][A-Za-z0-9]*$/;
const IDENTIFIER = /^[a-z][a-z0-9_]*$/;
const SERVER_FIELDS = new Set(['id', 'created_at', 'updated_at', 'created_sync_id']);

const uuid = z.uuid();
const timestamp = z.string();

/**
 * Declares a model. Checks the declaration (names are SQL identifiers, the scope field is a uuid
 * field, appendable fields are text) and derives its zod schemas.
 *
 * @example
 * export const Note = defineModel({
 *   name: 'Note', table: 'notes', scope: { prefix: 'agent', field: 'agent_id' },
 *   fields: { agent_id: field.uuid().references('Agent'), body: field.text().appendable() },
 * });
 */
export function defineModel<
  const Name extends string,
  const Fields extends Record<string, AnyField>,
  const Prefix extends string,
  const ScopeField extends keyof Fields & string,
>(init: ModelInit<Name, Fields, Prefix, ScopeField>): ModelDef<Name, Fields, Prefix, ScopeField> {
  const problems: string[] = [];
  if (!MODEL_NAME.test(init.name)) problems.push(`name ${init.name} must be PascalCase`);
  if (!IDENTIFIER.test(init.table)) problems.push(`table ${init.table} must be a lowercase SQL identifier`);
  if (!/^[a-z][a-z0-9]*$/.test(init.scope.prefix)) {
    problems.push('scope prefix must be lowercase letters and digits');
  }
  const fields: Record<string, ResolvedField> = {};
  for (const [name, f] of Object.entries(init.fields)) {
    if (!IDENTIFIER.test(name)) problems.push(`field ${name} must be a lowercase SQL identifier`);
    if (SERVER_FIELDS.has(name)) problems.push(`field ${name} is set by the server`);
    if (f.ref && f.kind !== 'uuid') problems.push(`field ${name} references a model but is not a uuid`);
    const { nullable: _n, default: _d, immutable: _i, appendable: _a, references: _r, ...data } = f;
    fields[name] = { ...data, name, isImmutable: f.isImmutable || name === init.scope.field };
  }
  const scopeField = fields[init.scope.field];
  if (scopeField?.kind !== 'uuid' || scopeField.isNullable) {
    problems.push(`scope field ${init.scope.field} must be a non-null uuid field`);
  }
  for (const index of init.indexes ?? []) {
    if (!IDENTIFIER.test(index.name)) problems.push(`index ${index.name} must be a lowercase SQL identifier`);
    for (const c of index.columns) {
      if (!fields[c] && !SERVER_FIELDS.has(c)) problems.push(`index ${index.name} names unknown column ${c}`);
    }
  }
  if (problems.length > 0) throw new Error(`defineModel(${init.name}): ${problems.join('; ')}`);

  const list = Object.values(fields);
  const valueSchema = (f: ResolvedField) => (f.isNullable ? z.nullable(f.schema) : f.schema);
  const record = z.object({
    id: uuid,
    ...Object.fromEntries(list.map((f) => [f.name, valueSchema(f)])),
    created_at: timestamp,
    updated_at: timestamp,
    created_sync_id: z.optional(z.nullable(z.int())),
  });
  const create = z.strictObject({
    id: z.optional(uuid),
    ...Object.fromEntries(
      list.map((f) => {
        if (f.hasDefault) return [f.name, z._default(valueSchema(f), f.defaultValue as never)];
        if (f.isNullable) return [f.name, z._default(valueSchema(f), null as never)];
        return [f.name, valueSchema(f)];
      }),
    ),
  });
  const mutable = list.filter((f) => !f.isImmutable);
  const update = z.strictObject(Object.fromEntries(mutable.map((f) => [f.name, z.optional(valueSchema(f))])));
  return {
    name: init.name,
    table: init.table,
    path: init.path ?? init.table.replaceAll('_', '-'),
    scope: init.scope,
    fields: fields as ModelDef<Name, Fields, Prefix, ScopeField>['fields'],
    fieldNames: Object.keys(fields) as (keyof Fields & string)[],
    mutableFields: mutable.map((f) => f.name),
    appendableFields: list.filter((f) => f.isAppendable).map((f) => f.name),
    indexes: init.indexes ?? [],
    columns: ['id', ...Object.keys(fields), 'created_at', 'updated_at', 'created_sync_id'],
    record: record as never,
    create: create as never,
    update: update as never,
    $types: undefined as never,
  };
}

/* defineRegistry -------------------------------------------------------------------------------- */

/** A set of models: what the services and clients of one deployment sync. */
export interface ModelRegistry<Ms extends readonly ModelDef[] = readonly ModelDef[]> {
  readonly models: Ms;
  /** The model names, in declaration order (a tuple for the built-in registry). */
  readonly names: { readonly [K in keyof Ms]: Ms[K]['name'] };
  /** The model names as a zod enum (batch entries, events). */
  readonly ModelName: z.ZodMiniType<Ms[number]['name']>;
  get(name: string): ModelDef | undefined;
  forPath(path: string): ModelDef | undefined;
  /** Scope prefixes that own records, in the order first declared. */
  readonly prefixes: readonly string[];
  /** The models whose records live in `<prefix>:…` scopes, in declaration order. */
  modelsOf(prefix: string): readonly ModelDef[];
  /** Every field that decides a scope in some model. */
  readonly scopeFields: readonly string[];
  /** Every uuid field of any model, and `id`: canonicalised (lowercased) before use. */
  readonly uuidFields: readonly string[];
}

/**
 * Collects models into a registry and checks them together: unique names, tables and paths, and
 * references that name a model of the registry (same-scope references a model of the same prefix).
 */
export function defineRegistry<const Ms extends readonly ModelDef[]>(models: Ms): ModelRegistry<Ms> {
  const problems: string[] = [];
  const byName = new Map<string, ModelDef>();
  const byPath = new Map<string, ModelDef>();
  const tables = new Set<string>();
  for (const m of models) {
    if (byName.has(m.name)) problems.push(`model ${m.name} is declared twice`);
    if (byPath.has(m.path)) problems.push(`path ${m.path} is used twice`);
    if (tables.has(m.table)) problems.push(`table ${m.table} is used twice`);
    byName.set(m.name, m);
    byPath.set(m.path, m);
    tables.add(m.table);
  }
  for (const m of models) {
    for (const f of Object.values(m.fields)) {
      if (!f.ref) continue;
      const target = byName.get(f.ref.model);
      if (!target) problems.push(`${m.name}.${f.name} references unknown model ${f.ref.model}`);
      else if (f.ref.sameScope && target.scope.prefix !== m.scope.prefix) {
        problems.push(
          `${m.name}.${f.name} references ${target.name} in the same scope, but its scope is ${target.scope.prefix}`,
        );
      }
    }
  }
  if (models.length === 0) problems.push('a registry needs at least one model');
  if (problems.length > 0) throw new Error(`defineRegistry: ${problems.join('; ')}`);
  const names = models.map((m) => m.name) as unknown as { readonly [K in keyof Ms]: Ms[K]['name'] };
  const prefixes = [...new Set(models.map((m) => m.scope.prefix))];
  const uuidFields = new Set(['id']);
  for (const m of models)
    for (const f of Object.values(m.fields)) if (f.kind === 'uuid') uuidFields.add(f.name);
  return {
    models,
    names,
    ModelName: z.enum(names as unknown as [string, ...string[]]) as unknown as z.ZodMiniType<
      Ms[number]['name']
    >,
    get: (name) => byName.get(name),
    forPath: (path) => byPath.get(path),
    prefixes,
    modelsOf: (prefix) => models.filter((m) => m.scope.prefix === prefix),
    scopeFields: [...new Set(models.map((m) => m.scope.field))],
    uuidFields: [...uuidFields],
  };
}
