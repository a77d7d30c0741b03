import type { ModelDef, ModelRegistry } from '@openagents/sync-protocol';
import { columnType, indexesOf } from './model-sql';
import type { Queryable } from './sync-log';

/**
 * Compares a database with a model registry: every table, column (type, nullability, default,
 * foreign key, lz4 for appendable fields) and index the registry declares, and no domain table or column it does not. The
 * test of the migrations uses it (model-sql.pg.test.ts); a deployment with its own models can run
 * it in its tests, or at start-up, against its own registry.
 */

const INFRA_TABLES = ['idempotency_keys', 'pgmigrations', 'sync_events', 'sync_scopes'];

interface ColumnFacts {
  type: string;
  nullable: boolean;
  hasDefault: boolean;
  references: string | null;
}

/** What the registry says a model's table looks like, column by column. */
function declaredColumns(model: ModelDef, registry: ModelRegistry): Record<string, ColumnFacts> {
  const out: Record<string, ColumnFacts> = {
    id: { type: 'uuid', nullable: false, hasDefault: false, references: null },
    created_at: { type: 'timestamptz', nullable: false, hasDefault: true, references: null },
    updated_at: { type: 'timestamptz', nullable: false, hasDefault: true, references: null },
    created_sync_id: { type: 'bigint', nullable: true, hasDefault: false, references: null },
  };
  for (const f of Object.values(model.fields)) {
    out[f.name] = {
      type: columnType(f),
      nullable: f.isNullable,
      hasDefault: f.hasDefault,
      references: f.ref ? registry.get(f.ref.model)!.table : null,
    };
  }
  return out;
}

/** What the database says, from information_schema and pg_catalog. */
async function actualColumns(db: Queryable, table: string): Promise<Record<string, ColumnFacts>> {
  const { rows } = await db.query<{
    column_name: string;
    udt_name: string;
    is_nullable: string;
    column_default: string | null;
    references: string | null;
  }>(
    `SELECT c.column_name, c.udt_name, c.is_nullable, c.column_default,
            (SELECT ccu.table_name FROM information_schema.key_column_usage k
               JOIN information_schema.table_constraints tc
                 ON tc.constraint_name = k.constraint_name AND tc.constraint_type = 'FOREIGN KEY'
               JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = k.constraint_name
              WHERE k.table_name = c.table_name AND k.column_name = c.column_name LIMIT 1) AS references
       FROM information_schema.columns c
      WHERE c.table_schema = 'public' AND c.table_name = $1`,
    [table],
  );
  const types: Record<string, string> = { int8: 'bigint', int4: 'integer', bool: 'boolean' };
  return Object.fromEntries(
    rows.map((r) => [
      r.column_name,
      {
        type: types[r.udt_name] ?? r.udt_name,
        nullable: r.is_nullable === 'YES',
        hasDefault: r.column_default !== null,
        references: r.references,
      },
    ]),
  );
}

async function actualIndexes(db: Queryable, table: string) {
  const { rows } = await db.query<{ name: string; columns: string[]; partial: boolean }>(
    `SELECT i.relname AS name,
            array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS columns,
            x.indpred IS NOT NULL AS partial
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
      WHERE t.relname = $1 AND NOT x.indisprimary ORDER BY i.relname`,
    [table],
  );
  return rows;
}

/**
 * Appendable fields are stored with lz4 where the server has it (model-sql's
 * `appendableCompressionSql`): a table created without it pays pglz on every append.
 */
async function compressionDifferences(db: Queryable, model: ModelDef): Promise<string[]> {
  if (model.appendableFields.length === 0) return [];
  const { rows } = await db.query<{ column: string; compression: string; lz4: boolean }>(
    `SELECT a.attname AS column,
            CASE a.attcompression WHEN 'l' THEN 'lz4' WHEN 'p' THEN 'pglz'
                 ELSE current_setting('default_toast_compression') END AS compression,
            EXISTS (SELECT 1 FROM pg_settings
                     WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) AS lz4
       FROM pg_attribute a
      WHERE a.attrelid = $1::regclass AND a.attname = ANY ($2::text[]) AND NOT a.attisdropped`,
    [model.table, model.appendableFields],
  );
  return rows
    .filter((r) => r.lz4 && r.compression !== 'lz4')
    .map(
      (r) =>
        `${model.name}.${r.column}: compression is ${r.compression} in the database, lz4 for an appendable field`,
    );
}

/** Every difference between the registry and the database, as readable lines (empty: they agree). */
export async function schemaDifferences(db: Queryable, registry: ModelRegistry): Promise<string[]> {
  const problems: string[] = [];
  const { rows: tables } = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name NOT LIKE 'sync_events_p%'`,
  );
  const domain = tables.map((t) => t.table_name).filter((t) => !INFRA_TABLES.includes(t));
  for (const t of domain) {
    if (!registry.models.some((m) => m.table === t)) problems.push(`table ${t} is not declared by any model`);
  }
  for (const model of registry.models) {
    if (!domain.includes(model.table)) {
      problems.push(`${model.name}: table ${model.table} does not exist`);
      continue;
    }
    const declared = declaredColumns(model, registry);
    const actual = await actualColumns(db, model.table);
    for (const [column, facts] of Object.entries(declared)) {
      const found = actual[column];
      if (!found) problems.push(`${model.name}.${column}: no column ${model.table}.${column}`);
      else {
        for (const key of Object.keys(facts) as (keyof ColumnFacts)[]) {
          if (found[key] !== facts[key]) {
            problems.push(
              `${model.name}.${column}: ${key} is ${found[key]} in the database, ${facts[key]} in the registry`,
            );
          }
        }
      }
    }
    for (const column of Object.keys(actual)) {
      if (!declared[column]) problems.push(`${model.name}: column ${model.table}.${column} is not declared`);
    }
    problems.push(...(await compressionDifferences(db, model)));
    const indexes = await actualIndexes(db, model.table);
    const expected = indexesOf(model).map((i) => ({
      name: i.name,
      columns: [...i.columns],
      partial: !!i.where,
    }));
    for (const i of expected) {
      const found = indexes.find((x) => x.name === i.name);
      if (!found) problems.push(`${model.name}: index ${i.name} does not exist`);
      else if (JSON.stringify(found) !== JSON.stringify(i)) {
        problems.push(
          `${model.name}: index ${i.name} is ${JSON.stringify(found)}, declared ${JSON.stringify(i)}`,
        );
      }
    }
    for (const i of indexes) {
      if (!expected.some((x) => x.name === i.name) && !i.name.endsWith('_pkey')) {
        problems.push(`${model.name}: index ${i.name} is not declared`);
      }
    }
  }
  return problems;
}
