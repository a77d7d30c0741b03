/**
 * Writes a migration for a change of the model registry:
 *
 *   node --import tsx packages/server-kit/src/model-sql-cli.ts <name> [--create <Model> ...]
 *
 * The migration creates the tables of the models named with --create, regenerates sync_commit
 * from the registry, and its Down restores the previous sync_commit. A new field of an existing
 * model needs one hand-written line in it: `ALTER TABLE <table> ADD COLUMN ...` (the marked place).
 * docs/models.md walks through both.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_REGISTRY } from '@openagents/sync-protocol';
import { MIGRATIONS_DIR } from './migrate';
import { currentSyncCommit, modelMigrationSql } from './model-sql';

const args = process.argv.slice(2);
const name = args[0];
if (!name || !/^[a-z0-9-]+$/.test(name)) {
  console.error('usage: model-sql-cli.ts <kebab-name> [--create <Model> ...]');
  process.exit(2);
}
const create = [];
for (let i = 1; i < args.length; i++) {
  if (args[i] !== '--create') {
    console.error(`unknown argument ${args[i]}`);
    process.exit(2);
  }
  const model = MODEL_REGISTRY.get(args[++i] ?? '');
  if (!model) {
    console.error(`no model ${args[i]} in packages/protocol/src/models.ts`);
    process.exit(2);
  }
  create.push(model);
}
const migrations = readdirSync(MIGRATIONS_DIR)
  .filter((f) => f.endsWith('.sql'))
  .map((f) => ({ name: f, sql: readFileSync(join(MIGRATIONS_DIR, f), 'utf8') }));
const previous = currentSyncCommit(migrations);
if (!previous) throw new Error('no migration defines sync_commit');
const file = join(MIGRATIONS_DIR, `${Date.now()}_${name}.sql`);
writeFileSync(
  file,
  modelMigrationSql({
    registry: MODEL_REGISTRY,
    create,
    previousSyncCommit: previous,
    ...(create.length === 0
      ? {
          upStatements:
            '-- ALTER TABLE <table> ADD COLUMN <field> <type> ...;  (the new field; then delete this line)',
          downStatements: '-- ALTER TABLE <table> DROP COLUMN <field>;',
        }
      : {}),
  }),
);
console.log(`wrote ${file}`);
