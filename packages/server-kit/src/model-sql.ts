import type { ModelDef, ModelRegistry, ResolvedField } from '@openagents/sync-protocol';

/**
 * The SQL a model registry implies: each model's table (`createTableSql`) and the commit function
 * `sync_commit` (`syncCommitSql`), whose per-model statements are generated so that they stay
 * static SQL (planned once per connection, as fast as hand-written). Migrations hold the output:
 * `model-sql-cli.ts` writes a new one, and model-sql.pg.test.ts fails when the newest definition
 * of sync_commit differs from what the registry generates or when the database's tables disagree
 * with the registry. docs/models.md walks through it.
 */

/** The SQL type of a field's column. */
export function columnType(f: ResolvedField): string {
  switch (f.kind) {
    case 'uuid':
      return 'uuid';
    case 'text':
    case 'enum':
      return 'text';
    case 'bigint':
      return 'bigint';
    case 'integer':
      return 'integer';
    case 'boolean':
      return 'boolean';
    case 'json':
      return 'jsonb';
  }
}

/** A SQL literal for a value of a field (defaults, enum values); never user input. */
export function sqlLiteral(value: unknown, f?: ResolvedField): string {
  if (value === null) return 'NULL';
  if (f?.kind === 'json') return `${quote(JSON.stringify(value))}::jsonb`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return quote(String(value));
}

function quote(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** The table's columns: id, the fields in order, the server's timestamps and created_sync_id. */
export function createTableSql(model: ModelDef, registry: ModelRegistry): string {
  const width = Math.max(11, ...model.columns.map((c) => c.length));
  const col = (name: string, rest: string) => `  ${name.padEnd(width)} ${rest}`;
  const lines = [col('id', 'uuid PRIMARY KEY')];
  for (const f of Object.values(model.fields)) {
    const parts = [columnType(f)];
    if (!f.isNullable) parts.push('NOT NULL');
    if (f.hasDefault) parts.push(`DEFAULT ${sqlLiteral(f.defaultValue, f)}`);
    if (f.ref) parts.push(`REFERENCES ${registry.get(f.ref.model)!.table} (id) ON DELETE RESTRICT`);
    const checks = checkSql(f);
    if (checks) parts.push(`CHECK (${checks})`);
    lines.push(col(f.name, parts.join(' ')));
  }
  lines.push(col('created_at', 'timestamptz NOT NULL DEFAULT now()'));
  lines.push(col('updated_at', 'timestamptz NOT NULL DEFAULT now()'));
  lines.push(col('created_sync_id', 'bigint'));
  const indexes = indexesOf(model).map(
    (i) =>
      `CREATE INDEX ${i.name} ON ${model.table} (${i.columns.join(', ')})${i.where ? ` WHERE ${i.where}` : ''};`,
  );
  const compression = appendableCompressionSql(model);
  return [`CREATE TABLE ${model.table} (`, `${lines.join(',\n')}`, ');', ...indexes, ...compression].join(
    '\n',
  );
}

/**
 * Appendable fields are rewritten whole on every append: lz4 compresses them several times faster
 * than the default pglz (docs/benchmarks.md, "The append path in Postgres"). A server built
 * without lz4 keeps pglz, with a notice. Empty for a model without appendable fields.
 */
export function appendableCompressionSql(model: ModelDef): string[] {
  if (model.appendableFields.length === 0) return [];
  return [
    'DO $$',
    'BEGIN',
    ...model.appendableFields.map(
      (f) => `  ALTER TABLE ${model.table} ALTER COLUMN ${f} SET COMPRESSION lz4;`,
    ),
    'EXCEPTION WHEN feature_not_supported THEN',
    `  RAISE NOTICE 'lz4 is not supported by this server: appendable fields of ${model.table} stay on pglz';`,
    'END',
    '$$;',
  ];
}

/** A column's CHECK: enum values, and declared text bounds and pattern. */
function checkSql(f: ResolvedField): string | undefined {
  if (f.kind === 'enum' && f.values) return `${f.name} IN (${f.values.map((v) => quote(v)).join(', ')})`;
  if (f.kind !== 'text' || !f.checkLength) return undefined;
  const checks: string[] = [];
  if (f.minLength !== undefined)
    checks.push(`char_length(${f.name}) BETWEEN ${f.minLength} AND ${f.maxLength}`);
  if (f.pattern !== undefined) checks.push(`${f.name} ~ ${quote(f.pattern)}`);
  return checks.length > 0 ? checks.join(' AND ') : undefined;
}

/** Every index of a model's table besides its primary key: the scope index, then the declared ones. */
export function indexesOf(model: ModelDef): { name: string; columns: readonly string[]; where?: string }[] {
  return [
    { name: `${model.table}_${model.scope.field}_idx`, columns: [model.scope.field, 'created_at'] },
    ...model.indexes,
  ];
}

/* sync_commit ---------------------------------------------------------------------------------- */

/** A field's value read from a jsonb document `src` (the write's values), cast to its column. */
function valueSql(f: ResolvedField, src: string): string {
  const text = `${src}->>'${f.name}'`;
  switch (f.kind) {
    case 'uuid':
      return `(${text})::uuid`;
    case 'text':
    case 'enum':
      return text;
    case 'bigint':
      return `(${text})::bigint`;
    case 'integer':
      return `(${text})::integer`;
    case 'boolean':
      return `(${text})::boolean`;
    case 'json':
      return f.isNullable ? `nullif(${src}->'${f.name}', 'null'::jsonb)` : `${src}->'${f.name}'`;
  }
}

/** `CASE WHEN _model IN (...) THEN '<prefix>:' || <field of src> ... END`, one branch per scope rule. */
function scopeCase(registry: ModelRegistry, field: (scopeField: string) => string): string {
  const groups = new Map<string, string[]>();
  for (const m of registry.models) {
    const key = `${m.scope.prefix}\u0000${m.scope.field}`;
    groups.set(key, [...(groups.get(key) ?? []), m.name]);
  }
  const branches = [...groups].map(([key, names]) => {
    const [prefix, scopeField] = key.split('\u0000') as [string, string];
    return `WHEN _model IN (${names.map(quote).join(', ')}) THEN ${quote(`${prefix}:`)} || ${field(scopeField)}`;
  });
  return `CASE ${branches.join(' ')} END`;
}

/** Error names of a same-scope reference: `<model>_missing`, `<model>_other_<prefix>`. */
function referenceErrors(target: ModelDef, prefix: string): { missing: string; other: string } {
  const snake = target.name.replace(/(?<!^)([A-Z])/g, '_$1').toLowerCase();
  return { missing: `${snake}_missing`, other: `${snake}_other_${prefix}` };
}

/** Same-scope references: (model, field, target model). */
function sameScopeRefs(registry: ModelRegistry): { m: ModelDef; f: ResolvedField; target: ModelDef }[] {
  const refs: { m: ModelDef; f: ResolvedField; target: ModelDef }[] = [];
  for (const m of registry.models) {
    for (const f of Object.values(m.fields)) {
      if (f.ref?.sameScope) refs.push({ m, f, target: registry.get(f.ref.model)! });
    }
  }
  return refs;
}

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .split('\n')
    .map((l) => (l ? pad + l : l))
    .join('\n');
}

/** The per-model parts of sync_commit, generated from the registry. */
function commitParts(registry: ModelRegistry) {
  const models = registry.models;
  const refs = sameScopeRefs(registry);
  const insertRefs = refs.map(({ m, f, target }, i) => {
    const { missing, other } = referenceErrors(target, m.scope.prefix);
    return [
      `${i === 0 ? 'IF' : 'ELSIF'} _model = ${quote(m.name)} AND v->>'${f.name}' IS NOT NULL THEN`,
      `  SELECT ${target.scope.field}::text INTO ref FROM ${target.table} WHERE id = (v->>'${f.name}')::uuid;`,
      `  IF NOT FOUND THEN RAISE EXCEPTION '${missing}' USING ERRCODE = 'SY404'; END IF;`,
      `  IF ref <> (v->>'${m.scope.field}')::uuid::text THEN RAISE EXCEPTION '${other}' USING ERRCODE = 'SY400'; END IF;`,
    ].join('\n');
  });
  const insertScope = [
    `sc := ${scopeCase(registry, (f) => `(v->>'${f}')::uuid`)};`,
    'IF NOT sync_scope_allowed(patterns, sc) THEN',
    "  RAISE EXCEPTION 'forbidden' USING ERRCODE = 'SY403', DETAIL = sc;",
    'END IF;',
    ...(insertRefs.length > 0 ? [...insertRefs, 'END IF;'] : []),
  ].join('\n');

  const updates = [
    'CASE _model',
    ...models.map((m) => {
      const sets = m.mutableFields.map((name) => {
        const f = m.fields[name]!;
        return `  ${name} = CASE WHEN v ? '${name}' THEN ${valueSql(f, 'v')} ELSE ${name} END,`;
      });
      return [
        `  WHEN ${quote(m.name)} THEN`,
        `    UPDATE ${m.table} SET`,
        ...sets.map((s) => `    ${s}`),
        '      updated_at = ts',
        `    WHERE id = rid RETURNING to_jsonb(${m.table}.*) INTO rec;`,
      ].join('\n');
    }),
    'END CASE;',
  ].join('\n');

  const deletes = [
    'CASE _model',
    ...models.map(
      (m) =>
        `  WHEN ${quote(m.name)} THEN DELETE FROM ${m.table} WHERE id = rid RETURNING to_jsonb(${m.table}.*) INTO rec;`,
    ),
    'END CASE;',
  ].join('\n');

  const appendable = models.filter((m) => m.appendableFields.length > 0);
  // An append reads only the scope and the field it grows (not the whole row as jsonb: the field
  // may be a long reply, and every copy of it is paid on every piece).
  const fieldOf = (m: ModelDef, row: string) =>
    m.appendableFields.length === 1
      ? `${row}.${m.appendableFields[0]}`
      : `CASE v->>'field' ${m.appendableFields.map((a) => `WHEN '${a}' THEN ${row}.${a}`).join(' ')} END`;
  const appendLocks = [
    'CASE _model',
    ...appendable.map((m) =>
      [
        `  WHEN ${quote(m.name)} THEN`,
        `    SELECT ${quote(`${m.scope.prefix}:`)} || r.${m.scope.field}, ${fieldOf(m, 'r')} INTO sc, cur`,
        `      FROM ${m.table} AS r WHERE id = rid FOR UPDATE;`,
      ].join('\n'),
    ),
    '  ELSE',
    "    RAISE EXCEPTION '% has no field to append to', _model USING ERRCODE = 'SY500';",
    'END CASE;',
  ].join('\n');

  const updateRefs = refs
    .filter(({ f }) => !f.isImmutable)
    .map(({ m, f, target }) => {
      const { missing, other } = referenceErrors(target, m.scope.prefix);
      return [
        `IF _action = 'update' AND _model = ${quote(m.name)} AND v ? '${f.name}' AND rec->>'${f.name}' IS NOT NULL THEN`,
        `  SELECT ${target.scope.field}::text INTO ref FROM ${target.table} WHERE id = (rec->>'${f.name}')::uuid;`,
        `  IF NOT FOUND THEN RAISE EXCEPTION '${missing}' USING ERRCODE = 'SY404'; END IF;`,
        `  IF ref <> rec->>'${m.scope.field}' THEN RAISE EXCEPTION '${other}' USING ERRCODE = 'SY400'; END IF;`,
        'END IF;',
      ].join('\n');
    });
  const existingScope = [
    `sc := ${scopeCase(registry, (f) => `(rec->>'${f}')`)};`,
    'IF NOT sync_scope_allowed(patterns, sc) THEN',
    "  RAISE EXCEPTION 'forbidden' USING ERRCODE = 'SY403', DETAIL = sc;",
    'END IF;',
    ...updateRefs,
  ].join('\n');

  const appendUpdates = [
    'CASE _model',
    ...appendable.map((m) => {
      const sets =
        m.appendableFields.length === 1
          ? [`${m.appendableFields[0]} = cur || a_text`]
          : m.appendableFields.map(
              (a) => `${a} = CASE WHEN v->>'field' = '${a}' THEN cur || a_text ELSE ${a} END`,
            );
      return [
        `  WHEN ${quote(m.name)} THEN`,
        `    UPDATE ${m.table} SET ${sets.join(', ')}, updated_at = ts WHERE id = rid;`,
      ].join('\n');
    }),
    '  ELSE',
    "    RAISE EXCEPTION '% has no field to append to', _model USING ERRCODE = 'SY500';",
    'END CASE;',
  ].join('\n');

  const inserts = [
    'CASE _model',
    ...models.map((m) => {
      const fields = Object.values(m.fields);
      const columns = ['id', ...fields.map((f) => f.name), 'created_at', 'updated_at', 'created_sync_id'];
      const values = ['rid', ...fields.map((f) => valueSql(f, 'v')), 'ts', 'ts', 'sid'];
      return [
        `  WHEN ${quote(m.name)} THEN`,
        `    INSERT INTO ${m.table} (${columns.join(', ')})`,
        `      VALUES (${values.join(', ')})`,
        `      ON CONFLICT (id) DO NOTHING RETURNING to_jsonb(${m.table}.*) INTO rec;`,
      ].join('\n');
    }),
    'END CASE;',
    "IF rec IS NULL THEN RAISE EXCEPTION 'conflict' USING ERRCODE = 'SY409'; END IF;",
    `IF sc <> (${scopeCase(registry, (f) => `(rec->>'${f}')`)}) THEN`,
    "  RAISE EXCEPTION 'scope of the stored % differs from %', _model, sc USING ERRCODE = 'SY500';",
    'END IF;',
  ].join('\n');

  // The set-based path for a member of appends (see syncCommitSql): models with one appendable
  // field and no CHECK on it (so the UPDATE cannot fail for one append where the loop would name it).
  const fastModels = appendable.filter((m) => {
    if (m.appendableFields.length !== 1) return false;
    const f = m.fields[m.appendableFields[0]!]!;
    return checkSql(f) === undefined;
  });
  const fastReads = [
    'CASE _model',
    ...fastModels.map((m) => {
      const a = m.appendableFields[0]!;
      return [
        `  WHEN ${quote(m.name)} THEN`,
        `    a_field := '${a}';`,
        '    SELECT array_agg(u.id ORDER BY u.n), array_agg(r.sc ORDER BY u.n), array_agg(u.off ORDER BY u.n),',
        '           array_agg(u.txt ORDER BY u.n),',
        `           bool_and(coalesce(r.id IS NOT NULL AND u.field = '${a}' AND u.txt <> '' AND sync_scope_allowed(patterns, r.sc)`,
        "                             AND u.off = r.cl + CASE WHEN r.ol - r.cl < 3 THEN 0 ELSE regexp_count(r.cur, '[\\U00010000-\\U0010FFFF]') END,",
        '                             false))',
        '      INTO f_id, f_sc, f_off, f_txt, fast',
        "      FROM (SELECT t.n, (t.x->>'id')::uuid AS id, t.x->'v'->>'field' AS field, (t.x->'v'->>'offset')::int AS off,",
        "                   t.x->'v'->>'text' AS txt",
        "              FROM jsonb_array_elements(member->'muts') WITH ORDINALITY AS t(x, n)) AS u",
        `      LEFT JOIN (SELECT r.id, ${quote(`${m.scope.prefix}:`)} || r.${m.scope.field} AS sc, r.${a} AS cur,`,
        `                        char_length(r.${a}) AS cl, octet_length(r.${a}) AS ol`,
        `                   FROM ${m.table} AS r`,
        "                  WHERE r.id = ANY (ARRAY(SELECT (x->>'id')::uuid FROM jsonb_array_elements(member->'muts') AS x))",
        '                    FOR UPDATE) AS r ON r.id = u.id;',
      ].join('\n');
    }),
    '  ELSE',
    '    fast := false;',
    'END CASE;',
  ].join('\n');
  const fastUpdates = [
    'CASE _model',
    ...fastModels.map((m) => {
      const a = m.appendableFields[0]!;
      return [
        `  WHEN ${quote(m.name)} THEN`,
        `    UPDATE ${m.table} AS r SET ${a} = r.${a} || u.txt, updated_at = u.ts`,
        '      FROM unnest(f_id, f_txt, f_ts) AS u(id, txt, ts) WHERE r.id = u.id;',
      ].join('\n');
    }),
    'END CASE;',
  ].join('\n');

  return {
    fastReads: indent(fastReads, 8),
    fastUpdates: indent(fastUpdates, 10),
    insertScope: indent(insertScope, 10),
    updates: indent(updates, 10),
    deletes: indent(deletes, 10),
    appendLocks: indent(appendLocks, 10),
    existingScope: indent(existingScope, 10),
    appendUpdates: indent(appendUpdates, 12),
    inserts: indent(inserts, 10),
  };
}

/**
 * `CREATE OR REPLACE FUNCTION sync_commit(...)` for a registry: the commit pipeline's transaction
 * (see migration 1764590000000_commit-pipeline.sql for its contract), with one static statement
 * per model and action. It carries the settings of 1764600000000_commit-fast-path.sql (generic
 * plans, no sequential scans), which a CREATE OR REPLACE would otherwise drop.
 */
export function syncCommitSql(registry: ModelRegistry): string {
  const {
    fastReads,
    fastUpdates,
    insertScope,
    updates,
    deletes,
    appendLocks,
    existingScope,
    appendUpdates,
    inserts,
  } = commitParts(registry);
  return `CREATE OR REPLACE FUNCTION sync_commit(p_members jsonb, p_lock text[]) RETURNS jsonb
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
  h_scope text[] := '{}';
  h_last bigint[] := '{}';
  saved_scope text[];
  saved_last bigint[];
  e_scope text[] := '{}';
  e_id bigint[] := '{}';
  e_model text[] := '{}';
  e_model_id uuid[] := '{}';
  e_action text[] := '{}';
  e_data jsonb[] := '{}';
  e_mid text[] := '{}';
  e_actor text[] := '{}';
  n_events int;
  k_sub text[] := '{}';
  k_key text[] := '{}';
  k_resp jsonb[] := '{}';
  n_keys int;
  results jsonb[] := '{}';
  outs jsonb[];
  member jsonb;
  mut jsonb;
  sub text;
  patterns text[];
  i int;
  _model text;
  _action text;
  rid uuid;
  v jsonb;
  k text;
  rec jsonb;
  sc text;
  pos int;
  sid bigint;
  ts timestamptz;
  ref text;
  prior_hash text;
  prior_resp jsonb;
  _status int;
  _data jsonb;
  edata jsonb;
  resp jsonb;
  events jsonb;
  st text;
  cur text;
  cur_len int;
  a_off int;
  a_text text;
  a_len int;
  chars int;
  last int;
  saved_tail jsonb;
  msg text;
  det text;
  con text;
  fast boolean;
  a_field text;
  f_id uuid[];
  f_sc text[];
  f_off int[];
  f_txt text[];
  f_ts timestamptz[];
  f_sid bigint[];
  f_data jsonb[];
  f_out jsonb[];
BEGIN
  -- Lock the expected heads in sorted order; create the missing ones (a scope's first write).
  SELECT coalesce(array_agg(s.scope ORDER BY s.scope), '{}'), coalesce(array_agg(s.last_id ORDER BY s.scope), '{}')
    INTO h_scope, h_last
    FROM (SELECT scope, last_id FROM sync_scopes WHERE scope = ANY (p_lock) ORDER BY scope FOR UPDATE) s;
  FOR sc IN SELECT x FROM unnest(p_lock) AS x WHERE NOT (x = ANY (h_scope)) ORDER BY x LOOP
    INSERT INTO sync_scopes AS s (scope, last_id) VALUES (sc, 0)
      ON CONFLICT (scope) DO UPDATE SET last_id = s.last_id RETURNING s.last_id INTO sid;
    h_scope := h_scope || sc;
    h_last := h_last || sid;
  END LOOP;

  FOR member IN SELECT jsonb_array_elements(p_members) LOOP
    sub := member->>'sub';
    patterns := ARRAY(SELECT jsonb_array_elements_text(member->'scopes'));
    saved_scope := h_scope;
    saved_last := h_last;
    n_events := cardinality(e_id);
    n_keys := cardinality(k_key);
    saved_tail := e_data[n_events];
    outs := '{}';
    i := 0;
    BEGIN
      -- Appends only, without idempotency keys, to distinct records of one model (the append
      -- batcher's joined member: one piece of each of many replies): read, checked, written and
      -- logged by a few set-based statements instead of a dozen statements per append. A member
      -- whose appends would not all simply land (a record missing or not granted, an offset that
      -- is not the length, an empty piece or an exact retry, a scope head not locked yet, a piece
      -- that would merge into the event before) goes through the loop below, which answers each
      -- append exactly; the rows locked here stay locked for it.
      SELECT count(*) > 1 AND bool_and(x->>'a' = 'append' AND x->>'k' IS NULL)
             AND count(DISTINCT x->>'m') = 1 AND count(DISTINCT (x->>'id')::uuid) = count(*),
             min(x->>'m')
        INTO fast, _model
        FROM jsonb_array_elements(member->'muts') AS x;
      IF fast THEN
${fastReads}
        fast := coalesce(fast, false) AND f_sc <@ h_scope
                AND NOT (cardinality(e_id) > 0 AND e_model_id[cardinality(e_id)] = ANY (f_id));
        IF fast THEN
          f_ts := ARRAY(SELECT clock_timestamp() FROM generate_series(1, cardinality(f_id)));
${fastUpdates}
          -- Each append's event id: its scope's head plus its rank among this member's appends there.
          SELECT array_agg(a.sid ORDER BY a.n),
                 array_agg(jsonb_build_object('field', a_field, 'offset', a.off, 'text', a.txt,
                                              'updated_at', sync_wire_time(a.ts)) ORDER BY a.n),
                 array_agg(jsonb_build_object('status', 200, 'body', jsonb_build_object(
                             'data', jsonb_build_object('id', a.id, 'length', a.off + sync_utf16_length(a.txt)),
                             'scope', a.sc, 'syncId', a.sid), 'replayed', false) ORDER BY a.n)
            INTO f_sid, f_data, f_out
            FROM (SELECT u.*, h.l + row_number() OVER (PARTITION BY u.sc ORDER BY u.n) AS sid
                    FROM unnest(f_id, f_sc, f_off, f_txt, f_ts) WITH ORDINALITY AS u(id, sc, off, txt, ts, n)
                    JOIN unnest(h_scope, h_last) AS h(s, l) ON h.s = u.sc) AS a;
          h_last := ARRAY(SELECT h.l + coalesce(c.k, 0)
                            FROM unnest(h_scope, h_last) WITH ORDINALITY AS h(s, l, n)
                            LEFT JOIN (SELECT s, count(*) AS k FROM unnest(f_sc) AS s GROUP BY s) AS c ON c.s = h.s
                           ORDER BY h.n);
          e_scope := e_scope || f_sc;
          e_id := e_id || f_sid;
          e_model := e_model || array_fill(_model, ARRAY[cardinality(f_id)]);
          e_model_id := e_model_id || f_id;
          e_action := e_action || array_fill('append'::text, ARRAY[cardinality(f_id)]);
          e_data := e_data || f_data;
          e_mid := e_mid || array_fill(NULL::text, ARRAY[cardinality(f_id)]);
          e_actor := e_actor || array_fill(sub, ARRAY[cardinality(f_id)]);
          outs := f_out;
          i := cardinality(f_id);
        END IF;
      END IF;
      FOR mut IN SELECT jsonb_array_elements(member->'muts') LOOP
        EXIT WHEN fast;
        _model := mut->>'m';
        _action := mut->>'a';
        rid := (mut->>'id')::uuid;
        v := mut->'v';
        k := mut->>'k';

        -- Idempotency: claim the key, or answer from what it stored (same request, scope still
        -- granted). A concurrent uncommitted claim of the same key makes the INSERT wait for it.
        IF k IS NOT NULL THEN
          INSERT INTO idempotency_keys (principal, key, request_hash, response)
            VALUES (sub, k, mut->>'h', 'null') ON CONFLICT DO NOTHING;
          IF NOT FOUND THEN
            SELECT request_hash, response INTO prior_hash, prior_resp
              FROM idempotency_keys WHERE principal = sub AND key = k;
            IF prior_hash IS DISTINCT FROM mut->>'h' THEN
              RAISE EXCEPTION 'idempotency_conflict' USING ERRCODE = 'SY409';
            END IF;
            IF NOT sync_scope_allowed(patterns, prior_resp->'body'->>'scope') THEN
              RAISE EXCEPTION 'replay_forbidden' USING ERRCODE = 'SY403', DETAIL = prior_resp->'body'->>'scope';
            END IF;
            outs := outs || jsonb_build_object('status', prior_resp->'status', 'body', prior_resp->'body', 'replayed', true);
            i := i + 1;
            CONTINUE;
          END IF;
        END IF;

        ts := clock_timestamp();
        rec := NULL;
        IF _action = 'insert' THEN
${insertScope}
        ELSIF _action = 'update' THEN
${updates}
          IF rec IS NULL THEN RAISE EXCEPTION 'not_found' USING ERRCODE = 'SY404'; END IF;
        ELSIF _action = 'delete' THEN
${deletes}
          IF rec IS NULL THEN RAISE EXCEPTION 'not_found' USING ERRCODE = 'SY404'; END IF;
        ELSIF _action = 'append' THEN
${appendLocks}
          IF NOT FOUND THEN RAISE EXCEPTION 'not_found' USING ERRCODE = 'SY404'; END IF;
          IF NOT sync_scope_allowed(patterns, sc) THEN
            RAISE EXCEPTION 'forbidden' USING ERRCODE = 'SY403', DETAIL = sc;
          END IF;
        ELSE
          RAISE EXCEPTION 'unknown action %', _action USING ERRCODE = 'SY500';
        END IF;

        IF _action IN ('update', 'delete') THEN
          -- The scope of an existing record comes from the row itself (scope fields never change).
${existingScope}
        END IF;

        IF _action = 'append' THEN
          -- Contract v1.1: the piece lands only at the field's current length (UTF-16 units). An
          -- exact retry of a piece already there (same offset, same text) and an empty piece at a
          -- valid offset answer 200 and write nothing; any other offset is offset_mismatch.
          -- The length is sync_utf16_length(cur); the astral code points (UTF-16 pairs, 4 bytes
          -- in UTF-8) are counted only when the bytes leave room for one: the regular expression
          -- is the dearest pass over a long field.
          chars := char_length(cur);
          cur_len := chars + CASE WHEN octet_length(cur) - chars < 3 THEN 0
                                  ELSE regexp_count(cur, '[\\U00010000-\\U0010FFFF]') END;
          a_off := (v->>'offset')::int;
          a_text := v->>'text';
          a_len := sync_utf16_length(a_text);
          IF a_off <> cur_len OR a_len = 0 THEN
            chars := sync_utf16_chars(cur, a_off);
            IF chars IS NULL OR substr(cur, chars + 1, char_length(a_text)) <> a_text THEN
              RAISE EXCEPTION 'offset_mismatch' USING ERRCODE = 'SY409', DETAIL = cur_len::text;
            END IF;
            pos := array_position(h_scope, sc);
            IF pos IS NULL THEN
              SELECT last_id INTO sid FROM sync_scopes WHERE scope = sc;
            ELSE
              sid := h_last[pos];
            END IF;
            resp := jsonb_build_object('status', 200, 'body', jsonb_build_object(
                      'data', jsonb_build_object('id', rid, 'length', cur_len), 'scope', sc, 'syncId', sid));
          ELSE
${appendUpdates}
            last := cardinality(e_id);
            IF last > 0 AND e_action[last] = 'append' AND e_model_id[last] = rid AND e_model[last] = _model
               AND e_data[last]->>'field' = v->>'field'
               AND (e_data[last]->>'offset')::int + sync_utf16_length(e_data[last]->>'text') = a_off THEN
              -- Consecutive pieces of one record in one group travel as one event.
              sid := e_id[last];
              e_data[last] := e_data[last] || jsonb_build_object(
                'text', (e_data[last]->>'text') || a_text, 'updated_at', sync_wire_time(ts));
            ELSE
              pos := array_position(h_scope, sc);
              IF pos IS NULL THEN
                INSERT INTO sync_scopes AS s (scope, last_id) VALUES (sc, 0)
                  ON CONFLICT (scope) DO UPDATE SET last_id = s.last_id RETURNING s.last_id INTO sid;
                h_scope := h_scope || sc;
                h_last := h_last || sid;
                pos := cardinality(h_scope);
              END IF;
              h_last[pos] := h_last[pos] + 1;
              sid := h_last[pos];
              e_scope := e_scope || sc;
              e_id := e_id || sid;
              e_model := e_model || _model;
              e_model_id := e_model_id || rid;
              e_action := e_action || _action;
              e_data := e_data || jsonb_build_object('field', v->>'field', 'offset', a_off, 'text', a_text,
                                                     'updated_at', sync_wire_time(ts));
              e_mid := e_mid || k;
              e_actor := e_actor || sub;
            END IF;
            resp := jsonb_build_object('status', 200, 'body', jsonb_build_object(
                      'data', jsonb_build_object('id', rid, 'length', cur_len + a_len), 'scope', sc, 'syncId', sid));
          END IF;
          IF k IS NOT NULL THEN
            k_sub := k_sub || sub;
            k_key := k_key || k;
            k_resp := k_resp || resp;
          END IF;
          outs := outs || (resp || jsonb_build_object('replayed', false));
          i := i + 1;
          CONTINUE;
        END IF;

        -- The next id of the scope's log; a head the caller did not foresee is locked now.
        pos := array_position(h_scope, sc);
        IF pos IS NULL THEN
          INSERT INTO sync_scopes AS s (scope, last_id) VALUES (sc, 0)
            ON CONFLICT (scope) DO UPDATE SET last_id = s.last_id RETURNING s.last_id INTO sid;
          h_scope := h_scope || sc;
          h_last := h_last || sid;
          pos := cardinality(h_scope);
        END IF;
        h_last[pos] := h_last[pos] + 1;
        sid := h_last[pos];

        IF _action = 'insert' THEN
${inserts}
        END IF;

        rec := sync_wire_record(rec);
        IF _action = 'insert' THEN
          _status := 201; _data := rec; edata := rec;
        ELSIF _action = 'update' THEN
          _status := 200; _data := rec;
          edata := (SELECT jsonb_object_agg(f, rec->f) FROM jsonb_object_keys(v) AS f)
                   || jsonb_build_object('updated_at', rec->'updated_at');
        ELSE
          _status := 200; _data := jsonb_build_object('id', rid); edata := NULL;
        END IF;

        e_scope := e_scope || sc;
        e_id := e_id || sid;
        e_model := e_model || _model;
        e_model_id := e_model_id || rid;
        e_action := e_action || _action;
        e_data := e_data || edata;
        e_mid := e_mid || k;
        e_actor := e_actor || sub;
        resp := jsonb_build_object('status', _status,
                  'body', jsonb_build_object('data', _data, 'scope', sc, 'syncId', sid));
        IF k IS NOT NULL THEN
          k_sub := k_sub || sub;
          k_key := k_key || k;
          k_resp := k_resp || resp;
        END IF;
        outs := outs || (resp || jsonb_build_object('replayed', false));
        i := i + 1;
      END LOOP;
      results := results || jsonb_build_object('ok', to_jsonb(outs));
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                              con = CONSTRAINT_NAME;
      IF left(st, 2) IN ('40', '53', '54', '55', '57', '58', 'XX', '08') THEN
        RAISE;
      END IF;
      h_scope := saved_scope;
      h_last := saved_last;
      e_scope := e_scope[1:n_events];
      e_id := e_id[1:n_events];
      e_model := e_model[1:n_events];
      e_model_id := e_model_id[1:n_events];
      e_action := e_action[1:n_events];
      e_data := e_data[1:n_events];
      IF n_events > 0 THEN
        e_data[n_events] := saved_tail;  -- an append of this member may have merged into it
      END IF;
      e_mid := e_mid[1:n_events];
      e_actor := e_actor[1:n_events];
      k_sub := k_sub[1:n_keys];
      k_key := k_key[1:n_keys];
      k_resp := k_resp[1:n_keys];
      results := results || jsonb_build_object('at', i,
        'err', jsonb_build_object('state', st, 'message', msg, 'detail', det, 'constraint', con));
    END;
  END LOOP;

  events := '[]';
  IF cardinality(e_id) > 0 THEN
    UPDATE sync_scopes AS s SET last_id = u.last_id, updated_at = now()
      FROM unnest(h_scope, h_last) AS u(scope, last_id)
      WHERE s.scope = u.scope AND s.last_id <> u.last_id;
    WITH appended AS (
      INSERT INTO sync_events (scope, id, model, model_id, action, data, mutation_id, actor)
      SELECT * FROM unnest(e_scope, e_id, e_model, e_model_id, e_action, e_data, e_mid, e_actor) ORDER BY 1, 2
      RETURNING scope, id, model, model_id, action, data, mutation_id, created_at
    )
    SELECT jsonb_agg(jsonb_build_object('id', a.id, 'scope', a.scope, 'model', a.model, 'model_id', a.model_id,
             'action', a.action, 'data', a.data, 'mutationId', a.mutation_id,
             'created_at', sync_wire_time(a.created_at)) ORDER BY a.scope, a.id)
      INTO events FROM appended AS a;
  END IF;
  IF cardinality(k_key) > 0 THEN
    UPDATE idempotency_keys AS t SET response = u.resp
      FROM unnest(k_sub, k_key, k_resp) AS u(sub, key, resp)
      WHERE t.principal = u.sub AND t.key = u.key;
  END IF;
  RETURN jsonb_build_object('results', to_jsonb(results), 'events', events);
END
$$;`;
}

/* Migrations ----------------------------------------------------------------------------------- */

const SYNC_COMMIT_START = /CREATE (?:OR REPLACE )?FUNCTION sync_commit\(/;

/**
 * The `sync_commit` definition in the Up section of a migration (as `CREATE OR REPLACE`), or
 * undefined when it has none.
 */
export function syncCommitOf(migrationSql: string): string | undefined {
  const up = migrationSql.split('-- Down Migration')[0]!;
  const start = up.search(SYNC_COMMIT_START);
  if (start < 0) return undefined;
  const end = up.indexOf('\n$$;', start);
  if (end < 0) return undefined;
  return up.slice(start, end + 4).replace(/^CREATE FUNCTION/, 'CREATE OR REPLACE FUNCTION');
}

/** The definition of sync_commit the newest of these migrations (sorted by name) leaves in place. */
export function currentSyncCommit(migrations: readonly { name: string; sql: string }[]): string | undefined {
  const sorted = [...migrations].sort((a, b) => a.name.localeCompare(b.name));
  for (const m of sorted.reverse()) {
    const fn = syncCommitOf(m.sql);
    if (fn) return fn;
  }
  return undefined;
}

/**
 * A migration for a change of the registry: the tables of new models, a place for the
 * hand-written part (ALTER TABLE for a new field), and sync_commit regenerated; its Down puts the
 * previous sync_commit back and drops the new tables.
 */
export function modelMigrationSql(options: {
  registry: ModelRegistry;
  create: readonly ModelDef[];
  previousSyncCommit: string;
  /** Hand-written statements that go before sync_commit (e.g. ALTER TABLE ... ADD COLUMN). */
  upStatements?: string;
  downStatements?: string;
}): string {
  const { registry, create } = options;
  return [
    '-- Up Migration',
    '',
    '-- Generated from the model registry (packages/protocol/src/models.ts) by',
    '-- packages/server-kit/src/model-sql-cli.ts; model-sql.pg.test.ts fails when the newest sync_commit',
    '-- differs from what the registry generates, or the tables from what it declares.',
    '',
    ...create.map((m) => `${createTableSql(m, registry)}\n`),
    ...(options.upStatements ? [`${options.upStatements}\n`] : []),
    syncCommitSql(registry),
    '',
    '-- Down Migration',
    options.previousSyncCommit,
    '-- The settings of 1764600000000_commit-fast-path.sql, which CREATE OR REPLACE drops.',
    'ALTER FUNCTION sync_commit(jsonb, text[]) SET plan_cache_mode = force_generic_plan;',
    'ALTER FUNCTION sync_commit(jsonb, text[]) SET enable_seqscan = off;',
    ...(options.downStatements ? [options.downStatements] : []),
    ...[...create].reverse().map((m) => `DROP TABLE ${m.table};`),
    '',
  ].join('\n');
}
